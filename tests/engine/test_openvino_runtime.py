"""OpenVINO as this program uses it: nothing it or NNCF would send anywhere leaves the process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine import openvino_int8, openvino_runtime

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not (openvino_runtime.available() and openvino_int8.available()), reason="needs OpenVINO and NNCF")
def test_openvino_and_nncf_send_no_usage_statistics():
    """Both send them unless the user opted out, from processes forked off a thread, which hung a run's exit where
    there was no network. In a process of its own: NNCF stubs its telemetry whenever pytest is imported."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import engine.openvino_int8\n"
            "import nncf\n"
            "from nncf.telemetry.wrapper import telemetry\n"
            "from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker\n"
            "print(telemetry._impl.consent, OptInChecker().check(False) is ConsentCheckResult.DECLINED)\n")
    result = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, timeout=120,
                            cwd=ROOT)
    assert result.stdout.split() == ["False", "True"], result.stderr[-2000:]
