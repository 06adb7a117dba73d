"""A real full disk, not a simulated one: a small tmpfs filled by each writer (checkpoint, store, ONNX export,
statistics cache) and by a run whose workspace and store live on it. torch's zip writer reports a full disk as
``RuntimeError("... unexpected pos ...")`` and SQLite as "database or disk is full", not ``OSError(ENOSPC)``:
each must still be said as a full disk, naming the disk, its free space and what needed it, leave no partial
file, and free the space it took so that the run's failure can still be recorded beside it.

Mounting needs root and a kernel that allows it (CI runs as root); elsewhere these tests are skipped with the
reason, and ``test_disk_full.py`` simulates the same failures."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from engine import checkpoints, cli
from engine.errors import UserError
from engine.store import Status, open_store
from tests.engine.stages.tiny import tiny_config
from tests.faults.small_disk import SmallDisk, mount

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path):
    folder = tmp_path / "disk"
    why = mount(folder, "4m")
    if why is not None:
        pytest.skip(f"no small filesystem to fill here (a tmpfs needs root and mount rights): {why}")
    try:
        yield SmallDisk(folder)
    finally:
        subprocess.run(["umount", "-l", str(folder)], timeout=30)


def _free(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def test_a_checkpoint_that_fills_the_disk_says_so_and_gives_the_space_back(small_disk):
    before = _free(small_disk.folder)
    state = {"weights": torch.zeros(2_000_000)}  # 8 MB on a 4 MB disk
    target = small_disk.folder / "run" / "checkpoint.pt"
    with pytest.raises(UserError) as caught:
        checkpoints.save(state, target)
    said = str(caught.value)
    assert f"the disk holding {target.parent} is full" in said and "MB free" in said
    assert str(target) in said and "(about 8.0 MB)" in said and "then resume the run" in said
    assert caught.value.__context__ is None and caught.value.__cause__ is None  # one message, not three tracebacks
    assert not target.exists() and not list(target.parent.glob("*.tmp"))
    assert _free(small_disk.folder) >= before - 64 * 1024  # the unfinished file's space is back at once


def test_an_onnx_export_and_a_statistics_cache_on_a_full_disk_say_so(small_disk):
    from engine.export import export_onnx
    from engine.metrics.frechet import save_stats

    net = torch.nn.Conv2d(3, 256, 3)
    small_disk.fill(leave_bytes=16 * 1024)
    with pytest.raises(UserError, match=r"is full \(\d.* MB free\) while writing .*student\.onnx"):
        export_onnx(net, small_disk.folder / "student.onnx", torch.zeros(1, 3, 16, 16))
    with pytest.raises(UserError, match=r"is full .* while writing .*stats\.npz"):
        save_stats(small_disk.folder / "stats.npz", np.zeros(2048), np.zeros((2048, 2048)), {"images": 1})
    assert not list(small_disk.folder.glob("*.tmp"))


def test_a_store_on_a_full_disk_is_said_to_be_on_a_full_disk(small_disk):
    from sqlalchemy.exc import SQLAlchemyError

    from engine.store.store import store_error

    url = f"sqlite:///{small_disk.folder / 'store.sqlite'}"
    store = open_store(url)
    try:
        run_id = store.create_run(name="r", family="pix2pix", dataset="d", config={}, stages=["teacher"])
        small_disk.fill(leave_bytes=0)
        with pytest.raises(SQLAlchemyError) as caught:
            for step in range(10_000):
                store.add_log_line(run_id, "info", "x" * 4000 + str(step))
        said = str(store_error(caught.value, url))
        assert f"the disk holding the store {url}" in said and "is full" in said and "MB free" in said
    finally:
        store.close()


def test_a_run_that_fills_its_disk_fails_plainly_is_recorded_as_failed_and_resumes_when_there_is_space(
        small_disk, capsys, monkeypatch):
    """Workspace and store on one small disk: the run's checkpoint fills it; the failure is said as a full disk
    (no traceback), recorded in the store on that same disk (the checkpoint's space is given back first), and
    once the disk is larger, ``resume`` finishes the run with nothing lost."""
    monkeypatch.setenv("GCW_WORKSPACE", str(small_disk.folder / "workspace"))
    config = small_disk.folder.parent / "run.yaml"
    # A discriminator of 8 filters: checkpoints of about 1.4 MB, so that a 4 MB disk fills in the first stages.
    config.write_text(yaml.safe_dump(tiny_config(checkpoint_interval_s=0.001, recipe={"ndf": 8},
                                                 export={"latency_time_cap_s": 1, "variants": []})
                                     .model_dump(mode="json")))
    small_disk.resize("1800k")
    assert cli.main(["compress", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "could not record" not in err
    assert "is full (" in err and "MB free) while writing" in err and "then resume the run" in err
    store = open_store(f"sqlite:///{small_disk.folder / 'workspace' / 'store.sqlite'}")
    try:
        run = store.get_run(1)
        assert run.status is Status.failed and "is full" in run.error
        assert not list((small_disk.folder / "workspace").rglob("*.tmp"))
        small_disk.resize("64m")  # space freed
        assert cli.main(["resume", "1"]) == 0
        assert store.get_run(1).status is Status.finished
    finally:
        store.close()
