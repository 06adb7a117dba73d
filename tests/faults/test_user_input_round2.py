"""Reliability, second round (a user's own data, configs and folders): each cause fixed at its root, with the
user's case and our own of the same cause. Every refusal names what to fix, exits 2, prints no traceback and
changes no finished run."""

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from engine import cli
from engine.errors import ConfigError, TrainingDiverged
from tests.engine.stages.tiny import tiny_config


def _run(capsys, *args: str) -> tuple[int, str]:
    code = cli.main(list(args))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def _config_file(tmp_path, config) -> str:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return str(path)


def _runs(settings) -> list:
    from engine.store import open_store

    store = open_store(settings.resolved_store_url)
    try:
        return store.list_runs()
    finally:
        store.close()


# --- 1. Non-finite numbers are named as what they are, never as a store error ---------------------------------

@pytest.mark.parametrize("text, field", [
    ("supernet: {lr: .inf}", "supernet.lr: Input should be a finite number"),
    ("teacher: {lr: .nan}", "teacher.lr: Input should be a finite number"),
    ("recipe: {lambda_gan: .inf}", "recipe.lambda_gan: Input should be a finite number"),
    ("search: {macs_budget: .inf}", "search.macs_budget: Input should be a finite number"),
    ("checkpoint_interval_s: .inf", "checkpoint_interval_s: Input should be a finite number"),
])
def test_non_finite_config_values_are_refused_by_field(tmp_path, capsys, settings, text, field):
    config = tmp_path / "run.yaml"
    config.write_text(f"preset: pix2pix-sample\n{text}\n")
    code, err = _run(capsys, "compress", "--config", str(config))
    assert code == 2 and field in err and "store" not in err
    assert _runs(settings) == []


def test_a_teacher_checkpoint_holding_nan_is_refused_at_import_naming_the_file(tmp_path, capsys, settings):
    base = tiny_config("pix2pix")
    state = base.family_impl.new_generator(base.options, "normal").state_dict()
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first][0] = float("nan")
    teacher = tmp_path / "diverged_net_G.pth"
    torch.save(state, teacher)
    config = tiny_config("pix2pix", teacher={"checkpoint": str(teacher)})
    code, err = _run(capsys, "compress", "--config", _config_file(tmp_path, config))
    assert code == 2
    assert f"{teacher} holds non-finite weights (nan or inf in 1 tensor(s): {first})" in err
    assert "NOT NULL" not in err and "store" not in err


@pytest.mark.slow
def test_a_diverging_training_names_the_stage_step_loss_and_what_to_change(tmp_path, capsys, settings):
    # A learning rate so large that the first steps blow the weights up: the losses become inf, then nan.
    config = tiny_config("pix2pix", teacher={"steps": 6, "lr": 1e30})
    code, err = _run(capsys, "compress", "--config", _config_file(tmp_path, config))
    assert code == 2
    assert "the teacher stage diverged at step " in err and (" is nan" in err or " is inf" in err)
    assert "lower the learning rate (teacher.lr, now 1e+30)" in err and "start a new run" in err
    assert "NOT NULL" not in err
    run = _runs(settings)[0]
    assert run.status == "failed" and "diverged" in run.error


def test_progress_with_a_non_finite_loss_raises_before_the_step_can_be_checkpointed(settings):
    from engine.stages.context import StageContext

    events = []
    ctx = StageContext(run_id=1, stage="supernet", config=tiny_config("pix2pix"), settings=settings, store=None,
                       run_dir=settings.workspace, events=events.append, cancel_requested=lambda: False,
                       device=torch.device("cpu"))
    ctx.progress(1, 8, {"G_recon": 0.5})
    with pytest.raises(TrainingDiverged, match=r"the supernet stage diverged at step 2: G_distill is inf; lower the "
                                               r"learning rate \(supernet.lr, now 0.0002\)"):
        ctx.progress(2, 8, {"G_recon": 0.5, "G_distill": float("inf")})
    assert len(events) == 1  # the diverged step reached no one


# --- 4. One image check for `datasets check` and a run; 16-bit images read as they are ---------------------------

def _aligned_folder(root, count: int = 4):
    train = root / "train"
    train.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (32, 64, 3), dtype=np.uint8)).save(train / f"{i}.png")
    return train


def test_a_16_bit_photograph_is_scaled_to_8_bits_not_read_as_white(tmp_path):
    from engine.data.images import load_image

    ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode == "I;16"  # what PIL makes of a 16-bit grayscale PNG
    pixels = np.asarray(load_image(path)).astype(int)
    assert pixels.shape == (32, 32, 3) and pixels.min() == 0 and pixels.max() == 255
    np.testing.assert_array_equal(pixels[..., 0], np.round(ramp / 257).astype(int))
    assert abs(pixels.mean() - 127.5) < 1  # before: 254.4, nearly every pixel clipped to white


def test_a_float_image_is_refused_by_name(tmp_path):
    from engine.data.images import load_image
    from engine.errors import DatasetError

    path = tmp_path / "float.tif"
    Image.fromarray(np.ones((16, 16), dtype=np.float32)).save(path)
    with pytest.raises(DatasetError, match="32-bit floating-point samples"):
        load_image(path)


def test_datasets_check_decodes_every_image_and_lists_what_a_run_would_skip(tmp_path, capsys):
    train = _aligned_folder(tmp_path / "pairs")
    shutil.copytree(train, train.parent / "test")  # a run reads the test split too (datasets check says so)
    whole = (train / "0.png").read_bytes()
    (train / "cut.png").write_bytes(whole[: len(whole) // 2])  # its header reads; its pixels do not
    code = cli.main(["datasets", "check", str(tmp_path / "pairs"), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    import json

    report = json.loads(out)
    assert report["items"] == 4 and [item["path"] for item in report["skipped"]] == [str(train / "cut.png")]
    # A run opening the same folder (headers only, as it starts) takes the file and skips it when it fails to
    # decode: the check named it first.
    from engine.data.layouts import DatasetConfig, open_dataset

    assert open_dataset(DatasetConfig(root=tmp_path / "pairs", layout="aligned")).unreadable == []
    code = cli.main(["datasets", "check", str(tmp_path / "pairs")])
    out = capsys.readouterr().out
    assert "a run skips these 1 file(s)" in out and "cut.png" in out


# --- 5. Every value checked before anything runs, the field named -------------------------------------------

def test_an_unknown_device_is_refused_naming_the_field(tmp_path, capsys, settings):
    config = tmp_path / "run.yaml"
    config.write_text("preset: pix2pix-sample\ndevice: tpu\n")
    code, err = _run(capsys, "compress", "--config", str(config))
    assert code == 2 and "device: must be auto, cpu, cuda or cuda:N" in err and "resume" not in err
    assert _runs(settings) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a GPU")
def test_cuda_without_a_gpu_is_refused_before_a_run_is_made(tmp_path, capsys, settings):
    code, err = _run(capsys, "compress", "--config", _config_file(tmp_path, tiny_config("pix2pix", device="cuda")))
    assert code == 2 and "device is cuda, but this machine has" in err and "set device to cpu" in err
    assert "resume" not in err and _runs(settings) == []


@pytest.mark.parametrize("command", ["compress", "profile"])
def test_a_model_too_large_for_memory_is_refused_before_allocating(tmp_path, capsys, settings, command):
    if command == "compress":
        args = ["compress", "--config", _config_file(tmp_path, tiny_config("pix2pix", model={"ngf": 100000}))]
    else:
        args = ["profile", "--family", "cyclegan", "--image-size", "64", "--model", '{"ngf": 100000}']
    code, err = _run(capsys, *args)
    assert code == 2 and "billion parameters" in err and "GiB of memory (this machine has" in err
    assert ("model.ngf" in err) if command == "compress" else ("--model" in err)


# --- 6. A search bounded by its space ---------------------------------------------------------------------

def test_an_evolution_larger_than_its_space_is_exhaustive_and_bounded():
    from engine.arch import Arch
    from engine.search import SearchProblem, evolutionary_search
    from engine.search import choose_method

    spec = tiny_config("pix2pix", search={"method": "evolution", "population": 1_000_000_000}).search
    assert choose_method(spec, 256) == "exhaustive"
    assert choose_method(spec.model_copy(update={"population": 10, "generations": 3}), 256) == "evolution"
    space = [(4, 2)] * 8  # 256 sub-networks
    problem = SearchProblem(space=space, macs=lambda a: sum(a.values), score=lambda a: float(sum(a.values)),
                            budget=100)
    best, _ = evolutionary_search(problem, population=1_000_000_000, generations=1, parent_ratio=0.25,
                                  mutation_ratio=0.5, mutation_prob=0.3, rng=random.Random(0))
    assert best == Arch((2,) * 8) and problem.evaluated <= 256


# --- 7. No tracebacks: export's --out ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["a file", "under a file"])
def test_export_out_that_cannot_be_a_folder_is_refused_before_any_work(tmp_path, capsys, kind):
    blocker = tmp_path / "model.onnx"
    blocker.write_text("x")
    out = blocker if kind == "a file" else blocker / "exports"
    code, err = _run(capsys, "export", "1", "--out", str(out))  # checked before the run is even looked up
    assert code == 2
    assert (f"--out {out} is a file; give a folder" in err if kind == "a file"
            else f"--out {out} cannot be written ({blocker} is a file)" in err)


def test_a_non_finite_target_ratio_is_refused_by_field():
    with pytest.raises(ConfigError, match="search.target_ratio: Input should be a finite number"):
        tiny_config("pix2pix", search={"target_ratio": float("inf")})


# --- 2. A moved or copied workspace works as it did ----------------------------------------------------------

@pytest.mark.slow
def test_a_copied_workspace_exports_and_redoes_only_what_is_asked(tmp_path, capsys, monkeypatch, finished_munit):
    import json
    import shutil

    from engine.api import run_result
    from engine.settings import Settings
    from engine.store import open_store

    original, _, run_id, _ = finished_munit
    new = tmp_path / "elsewhere" / "workspace"
    shutil.copytree(original.workspace, new)  # a copy (or a move: the full-disk message suggests one)
    monkeypatch.setenv("GCW_WORKSPACE", str(new))
    run, old_run = new / "runs" / f"{run_id:05d}", original.runs_dir / f"{run_id:05d}"
    store = open_store(Settings.from_env().resolved_store_url)
    try:
        recorded = [a.path for stage in ("teacher", "supernet", "export") for a in store.stage_artifacts(run_id, stage)]
    finally:
        store.close()
    assert recorded and not any(path.startswith("/") for path in recorded)  # relative to the run's folder
    weights = {stage: json.loads((run / stage / "result.json").read_text())["weights"]
               for stage in ("teacher", "supernet", "finetune")}
    assert all(path.startswith(f"{stage}/") for stage, path in weights.items()), weights
    stamps = {stage: (run / path).stat().st_mtime_ns for stage, path in weights.items()}
    old_onnx = (old_run / "export" / "student.onnx").stat().st_mtime_ns

    code = cli.main(["export", str(run_id), "--json"])
    out = capsys.readouterr().out
    assert code == 0 and Path(json.loads(out.strip().splitlines()[-1])["onnx_path"]).is_relative_to(new)
    code, err = _run(capsys, "resume", str(run_id), "--redo", "export")
    assert code == 0, err
    # Only the export was redone, in the copy: nothing retrained, the original's files untouched.
    assert {stage: (run / path).stat().st_mtime_ns for stage, path in weights.items()} == stamps
    assert (old_run / "export" / "student.onnx").stat().st_mtime_ns == old_onnx
    assert json.loads((run / "export" / "result.json").read_text())["onnx_path"] == "export/student.onnx"
    located = run_result(Settings.from_env(), run_id)
    assert located.onnx_path == str(run / "export" / "student.onnx") and Path(located.grid_path).is_file()


def test_files_recorded_by_an_earlier_version_are_found_where_the_workspace_went(tmp_path):
    from engine.files import from_run, in_run

    run = tmp_path / "moved" / "runs" / "00007"
    (run / "teacher").mkdir(parents=True)
    (run / "teacher" / "teacher.pt").write_bytes(b"w")
    assert in_run(run / "teacher" / "teacher.pt", run) == "teacher/teacher.pt"
    assert from_run("teacher/teacher.pt", run) == run / "teacher" / "teacher.pt"
    # Absolute, as runs recorded their files before: re-rooted when the old place is gone.
    assert from_run("/gone/workspace/runs/00007/teacher/teacher.pt", run) == run / "teacher" / "teacher.pt"
    assert from_run(str(tmp_path / "mine.onnx"), run) == tmp_path / "mine.onnx"  # outside any run: as it is
    assert in_run(tmp_path / "mine.onnx", run) == str((tmp_path / "mine.onnx").resolve())


# --- 3. Resume checks the files it depends on; a command that cannot start changes nothing ---------------------

@pytest.mark.slow
def test_resume_says_what_changed_in_the_dataset_and_a_command_that_cannot_start_changes_nothing(
        tmp_path, capsys, monkeypatch, finished_munit):
    import shutil
    import sqlite3

    from engine.config import RunConfig
    from engine.settings import Settings
    from engine.stages.data import resolve_dataset
    from engine.store import Status, open_store

    original, original_store, run_id, _ = finished_munit
    config = original_store.get_run(run_id).config
    sample_root, layout = resolve_dataset(RunConfig.model_validate(config), original, lambda event: None)
    workspace, mine = tmp_path / "workspace", tmp_path / "my-dataset"
    shutil.copytree(original.workspace, workspace)
    shutil.copytree(sample_root, mine)  # the user's own folder (times kept: the same fingerprint)
    config["dataset"] = {**config["dataset"], "sample": None, "path": str(mine), "layout": layout}
    with sqlite3.connect(workspace / "store.sqlite") as db:
        db.execute("update runs set config = ? where id = ?", (json.dumps(config), run_id))
    monkeypatch.setenv("GCW_WORKSPACE", str(workspace))

    def status():
        store = open_store(Settings.from_env().resolved_store_url)
        try:
            run = store.get_run(run_id)
            return run.status, run.error
        finally:
            store.close()

    shutil.rmtree(mine)  # deleted after the run finished
    code = cli.main(["resume", str(run_id)])
    assert code == 0 and "has finished and its files are whole; nothing to do" in capsys.readouterr().err
    code, err = _run(capsys, "resume", str(run_id), "--redo", "export")
    assert code == 2 and str(mine) in err and f"run {run_id} is unchanged (finished)" in err
    assert status() == (Status.finished, None)

    shutil.copytree(sample_root, mine)
    folder = next(p for p in sorted(mine.iterdir()) if p.is_dir() and any(p.iterdir()))
    image = next(p for p in sorted(folder.rglob("*")) if p.is_file())
    count = sum(1 for p in folder.rglob("*") if p.is_file())
    shutil.copy(image, image.with_name("added-" + image.name))
    code, err = _run(capsys, "resume", str(run_id), "--redo", "export")
    assert code == 0, err
    assert (f"[teacher] the dataset changed since this stage read it: {folder.name}/ has {count + 1} files ({count} "
            f"before); its results are kept") in err and f"resume {run_id} --redo teacher" in err
    assert "[export] the dataset changed since this stage read it" in err and "it is redone (--redo)" in err
    assert status() == (Status.finished, None)


def test_a_dataset_fingerprint_names_what_changed(tmp_path):
    from engine.data.fingerprint import dataset_fingerprint, describe_changes

    for folder in ("trainA", "trainB", "testA"):
        (tmp_path / folder).mkdir()
        for i in range(3):
            Image.new("RGB", (4, 4)).save(tmp_path / folder / f"{i}.png")
    before = dataset_fingerprint(tmp_path)
    assert before["trainA"]["files"] == 3 and describe_changes(before, dataset_fingerprint(tmp_path)) == []
    (tmp_path / "trainA" / "0.png").unlink()
    Image.new("RGB", (4, 4), "red").save(tmp_path / "trainB" / "1.png")
    import shutil

    shutil.rmtree(tmp_path / "testA")
    assert describe_changes(before, dataset_fingerprint(tmp_path)) == [
        "testA/ is gone (3 files before)", "trainA/ has 2 files (3 before)",
        "trainB/ has files changed or replaced (3 files, as before)"]
