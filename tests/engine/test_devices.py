"""``device: auto`` (the default): CUDA where this machine has a usable GPU, else the CPU, said in the run's log
and summary; and the GPU check script says plainly when there is no GPU to check."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.config import load_config
from engine.devices import describe_resolved, resolve_device
from engine.errors import ConfigError
from engine.launch import Launch, slurm_script
from engine.settings import Settings
from tests.engine.stages.tiny import tiny_config

ROOT = Path(__file__).resolve().parents[2]


def test_runs_default_to_auto_and_auto_resolves_to_what_the_machine_has(monkeypatch):
    assert load_config("pix2pix-sample").device == "auto"
    assert resolve_device("cpu") == "cpu" and resolve_device("cuda:1") == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    assert describe_resolved("auto", "cpu").startswith("device auto: cpu (this machine has ")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: "Test GPU")
    assert describe_resolved("auto", "cuda") == "device auto: cuda (Test GPU)"
    with pytest.raises(ConfigError, match="auto, cpu, cuda or cuda:N"):
        load_config("pix2pix-sample", overrides={"device": "gpu"})
    with pytest.raises(ConfigError, match="latency_device"):  # a latency table is measured on a named device
        load_config("pix2pix-sample", overrides={"search": {"latency_device": "auto"}})


def test_a_run_says_where_auto_took_it_in_its_log_and_summary(tmp_path, finished_munit):
    from engine.pipeline import create_run, execute
    from engine.stages.context import Cancelled
    from engine.store import open_store

    settings = Settings(workspace=tmp_path, device="auto")  # the setting defers to the run's own device
    store = open_store(settings.resolved_store_url)
    try:
        run_id = create_run(tiny_config(), store, settings)
        with pytest.raises(Cancelled):
            execute(run_id, settings, store, lambda event: None, stop_after="teacher")
        log = [text for _, _, _, text in store.log_lines(run_id)]
    finally:
        store.close()
    assert any(line.startswith(f"device auto: {resolve_device('auto')}") for line in log), log[:5]
    assert finished_munit[3]["run_device"] == "cpu"  # the summary names it (there the setting chose the CPU)


def test_the_slurm_file_of_an_auto_run_offers_gpus_commented_out(tmp_path):
    config = tiny_config()
    text = slurm_script(config, tmp_path / "run.yaml", Launch(2, 1), Settings(workspace=tmp_path))
    assert "##SBATCH --gpus-per-node=2   # device auto" in text
    gpu = slurm_script(tiny_config(device="cuda"), tmp_path / "run.yaml", Launch(2, 1), Settings(workspace=tmp_path))
    assert "\n#SBATCH --gpus-per-node=2\n" in gpu


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the check would run")
def test_gpu_check_says_there_is_no_gpu_to_check():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2
    assert done.stdout.startswith("gpu_check: no GPU to check: this machine has ") and not done.stderr
