"""The disk fills up while a run writes: the message names the disk and the file, no temporary file is
left, the store stays readable, and the run resumes once there is space again."""

import errno

import pytest
import torch
import yaml

from engine import cli
from engine.store import Status, open_store
from tests.engine.stages.tiny import tiny_config
from tests.faults.small_disk import cannot_mount

pytestmark = pytest.mark.slow


def _full_disk_for(monkeypatch, matches):
    """``torch.save`` writes part of the file, then fails as a full disk does, for paths that match."""
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        if matches(str(f)):
            with open(f, "wb") as handle:
                handle.write(b"PK\x03\x04" + b"\0" * 512)
            raise OSError(errno.ENOSPC, "No space left on device", str(f))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    return real_save


def test_a_full_disk_while_checkpointing_is_named_and_the_run_resumes(settings, tmp_path, capsys, monkeypatch):
    if cannot_mount() is None:  # the same run on a real full disk is in test_real_full_disk.py: one of them runs
        pytest.skip("run on a real full disk instead (tests/faults/test_real_full_disk.py)")
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_config(checkpoint_interval_s=0.001).model_dump(mode="json")))
    real_save = _full_disk_for(monkeypatch, lambda path: "supernet" in path and "checkpoint" in path)
    assert cli.main(["compress", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    run_folder = settings.runs_dir / "00001"
    assert "Traceback" not in err
    assert f"the disk holding {run_folder / 'supernet'} is full" in err
    assert str(run_folder / "supernet" / "checkpoint.pt") in err and "then resume the run" in err
    assert not list(run_folder.rglob("*.tmp"))

    store = open_store(settings.resolved_store_url)
    try:
        run = store.get_run(1)
        assert run.status is Status.failed and "is full" in run.error
        assert [s.status for s in run.stages][:2] == [Status.finished, Status.failed]
        monkeypatch.setattr(torch, "save", real_save)  # space freed
        assert cli.main(["resume", "1"]) == 0
        assert store.get_run(1).status is Status.finished
    finally:
        store.close()


def test_a_full_disk_while_exporting_onnx_is_named(settings, tmp_path, capsys, monkeypatch):
    import engine.stages.export as export_stage

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_config().model_dump(mode="json")))
    real_export = export_stage.export_checked

    def full(model, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(export_stage, "export_checked", full)
    assert cli.main(["compress", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "is full" in err and "student.onnx" in err and "Traceback" not in err
    monkeypatch.setattr(export_stage, "export_checked", real_export)
    assert cli.main(["resume", "1"]) == 0


def test_every_atomic_write_removes_its_temporary_file_and_names_a_full_disk(tmp_path, monkeypatch):
    """Checkpoints, ONNX files, statistics and results share one write path (``engine.files.write_atomic``)."""
    from engine.errors import UserError
    from engine.export import export_onnx

    def full(model, args, f, *rest, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(f))

    monkeypatch.setattr(torch.onnx, "export", full)
    target = tmp_path / "student.onnx"
    target.write_bytes(b"the previous, good file")
    with pytest.raises(UserError, match=f"is full .* while writing {target}"):
        export_onnx(torch.nn.Conv2d(3, 3, 1), target, torch.zeros(1, 3, 8, 8))
    assert target.read_bytes() == b"the previous, good file" and not list(tmp_path.glob("*.tmp"))
