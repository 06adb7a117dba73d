"""A run killed (SIGKILL) in any stage and resumed ends exactly as the uninterrupted run: the same search
result and candidates, the same final student, the same test metrics and the same loss curves."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from engine.settings import Settings
from engine.store import Status, open_store
from tests.engine.stages.tiny import tiny_config
from tests.patience import REAL_WORK_S

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

# (stage, point) per kill: a stage's points are its steps, scored candidates and artifacts (kill_at.py).
KILLS = {
    "a checkpoint every step": (0.001, [("teacher", 3), ("supernet", 5), ("search", 3), ("finetune", 2),
                                      ("export", 2)]),
    "no checkpoint within a stage": (3600.0, [("teacher", 5), ("supernet", 2), ("search", 6), ("finetune", 4),
                                              ("export", 1)]),
}


def _cli(settings, *args: str, kill: tuple[str, int] | None = None) -> int:
    command = [sys.executable, "-m", "tests.faults.kill_at", kill[0], str(kill[1])] if kill else \
        [sys.executable, str(ROOT / "main.py")]
    env = {**os.environ, **settings.as_env()}
    return subprocess.run([*command, *args, "--json"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=REAL_WORK_S).returncode


def _outcome(store, settings, run_id: int) -> dict:
    folder = settings.runs_dir / f"{run_id:05d}"
    search = json.loads((folder / "search" / "result.json").read_text())
    finetune = json.loads((folder / "finetune" / "result.json").read_text())
    export = json.loads((folder / "export" / "result.json").read_text())
    table = store.candidate_table(run_id)
    series = {(stage, name): store.metric_series(run_id, stage, name)
              for stage in ("teacher", "supernet", "finetune") for name in store.metric_names(run_id, stage)}
    return {"search": (search["arch"], search["value"]),
            "candidates": dict(zip(table.archs, table.metrics[search["metric"]].tolist())),
            "student": torch.load(folder / finetune["weights"], weights_only=True)["G"],  # relative to the run
            "kept": finetune["kept"], "test_metrics": export["student"]["metrics"], "series": series}


def _assert_same(resumed: dict, uninterrupted: dict) -> None:
    assert resumed["search"] == uninterrupted["search"]
    assert resumed["candidates"] == uninterrupted["candidates"]
    assert resumed["kept"] == uninterrupted["kept"]
    assert resumed["student"].keys() == uninterrupted["student"].keys()
    for name, tensor in uninterrupted["student"].items():
        assert torch.equal(resumed["student"][name], tensor), name
    assert resumed["test_metrics"] == uninterrupted["test_metrics"]
    assert resumed["series"] == uninterrupted["series"]  # each step recorded once, with the same value


def _config(path: Path, interval: float) -> Path:
    # No ONNX variants: what is compared is the run's results, not the variants (tested in test_onnx_variants); the
    # export still writes its files one by one, the points a kill lands on.
    config = tiny_config("pix2pix", threads=1, checkpoint_interval_s=interval, search={"method": "exhaustive"},
                         export={"variants": []})
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return path


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference outcome: one run that nothing interrupts, in a workspace of its own."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    settings = Settings.from_env(workspace=folder / "workspace")
    store = open_store(settings.resolved_store_url)
    try:
        assert _cli(settings, "compress", "--config", str(_config(folder / "run.yaml", 60.0))) == 0
        return _outcome(store, settings, store.list_runs()[0].id)
    finally:
        store.close()


@pytest.mark.parametrize("schedule", list(KILLS))
def test_a_run_killed_in_every_stage_ends_as_the_uninterrupted_one(settings, tmp_path, schedule, uninterrupted):
    interval, kills = KILLS[schedule]
    path = _config(tmp_path / "run.yaml", interval)
    store = open_store(settings.resolved_store_url)
    try:
        assert _cli(settings, "compress", "--config", str(path), kill=kills[0]) == -9
        run_id = store.list_runs()[0].id
        for kill in kills[1:]:
            assert _cli(settings, "resume", str(run_id), kill=kill) == -9
            assert store.stage_status(run_id, kill[0]) is not Status.finished
        assert _cli(settings, "resume", str(run_id)) == 0
        assert store.get_run(run_id).status is Status.finished
        _assert_same(_outcome(store, settings, run_id), uninterrupted)
    finally:
        store.close()
