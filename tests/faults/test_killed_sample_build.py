"""A sample dataset build killed half-way leaves a temporary folder; the next build removes it."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from engine.data.samples import SampleParams, ensure_sample, sample_path

ROOT = Path(__file__).resolve().parents[2]
# Builds the sample and kills itself (SIGKILL) at its 5th image, as a crash would.
BUILD_AND_DIE = ("import os, signal, sys; from pathlib import Path; from engine.data.samples import SampleParams, "
                 "ensure_sample; from engine.events import StepProgress\n"
                 "def sink(e):\n    if isinstance(e, StepProgress) and e.step == 5: os.kill(os.getpid(), signal.SIGKILL)\n"
                 "ensure_sample('grass2gravel', Path(sys.argv[1]), SampleParams(size=32, n_train=6, n_test=2), sink)")


def test_a_killed_sample_build_leaves_nothing_after_the_next_build(tmp_path):
    params = SampleParams(size=32, n_train=6, n_test=2)
    result = subprocess.run([sys.executable, "-c", BUILD_AND_DIE, str(tmp_path)], cwd=ROOT, env=os.environ)
    assert result.returncode == -signal.SIGKILL
    target = sample_path("grass2gravel", tmp_path, params)
    assert list(tmp_path.glob(f".{target.name}-*")) and not target.exists()  # what the kill left

    sample = ensure_sample("grass2gravel", tmp_path, params)
    assert (sample.path / "sample.json").is_file()
    assert not list(tmp_path.glob(f".{target.name}-*"))
