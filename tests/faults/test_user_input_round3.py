"""Reliability, third round (issue 44): config files in other encodings, keys given twice, names that would leave
their folder, a seed no generator takes. Every refusal names the file or field and what to do, exits 2, prints no
traceback and makes no run."""

import pytest

from engine import cli
from engine.errors import ConfigError
from engine.store import open_store
from tests.faults.test_user_input_round2 import _runs

TEXT = "preset: pix2pix-sample\nname: from-windows\n"


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-32"])
def test_a_config_with_a_byte_order_mark_is_read_in_the_encoding_it_names(tmp_path, capsys, encoding):
    # Windows PowerShell's ">" writes UTF-16 with a byte-order mark.
    path = tmp_path / "run.yaml"
    path.write_bytes(TEXT.encode(encoding))
    code, out, _ = _run(capsys, "config", "--config", str(path))
    assert code == 0 and "from-windows" in out


@pytest.mark.parametrize("command", [["config"], ["compress"], ["launch-script", "--out", "launch"]])
def test_a_latin1_config_is_refused_in_one_line_naming_the_file_and_the_encoding_to_use(tmp_path, capsys, settings,
                                                                                       command, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "run.yaml"
    path.write_bytes("preset: pix2pix-sample\nname: café\n".encode("latin-1"))
    code, _, err = _run(capsys, command[0], "--config", str(path), *command[1:])
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1
    assert str(path) in lines[0] and "is not UTF-8 text" in lines[0] and "save it as UTF-8" in lines[0]
    assert _runs(settings) == [] and not (tmp_path / "launch").exists()


def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path, capsys, settings):
    path = tmp_path / "run.yaml"
    path.write_text("preset: pix2pix-sample\nteacher:\n  steps: 5\nname: a\nteacher:\n  steps: 6\n")
    code, _, err = _run(capsys, "compress", "--config", str(path))
    assert code == 2 and f"{path}: 'teacher' is given twice (lines 2 and 5)" in err
    assert _runs(settings) == []
    # Keys of different blocks may share a name.
    path.write_text("preset: pix2pix-sample\nteacher:\n  steps: 5\nsupernet:\n  steps: 5\n")
    assert _run(capsys, "config", "--config", str(path))[0] == 0


@pytest.mark.parametrize("name", ["../outside", "/tmp/absolute", "a/b", "..", "c:evil", "a\\b"])
def test_a_name_that_would_leave_its_folder_is_refused_and_nothing_is_written(tmp_path, capsys, name):
    out = tmp_path / "deep" / "launch"
    code, _, err = _run(capsys, "launch-script", "--preset", "pix2pix-sample", "--name", name, "--out", str(out))
    assert code == 2 and "a run's name is a plain name" in err
    assert not (tmp_path / "deep").exists() and not (tmp_path / "outside.yaml").exists()


def test_a_seed_no_generator_takes_is_refused_by_its_field_before_a_run(tmp_path, capsys, settings):
    path = tmp_path / "run.yaml"
    path.write_text("preset: pix2pix-sample\nseed: 99999999999999999999\n")
    code, _, err = _run(capsys, "compress", "--config", str(path))
    assert code == 2 and "seed: Input should be less than or equal to 4294967295" in err and "resume" not in err
    assert _runs(settings) == []


def test_a_run_another_command_works_on_is_not_deleted_or_marked_failed_meanwhile(tmp_path, capsys, settings):
    import subprocess
    import sys
    import textwrap

    from engine.pipeline import create_run, run_dir
    from tests.engine.stages.tiny import tiny_config

    store = open_store(settings.resolved_store_url)
    try:
        run_id = create_run(tiny_config(), store, settings)
    finally:
        store.close()
    folder = run_dir(settings, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    release = tmp_path / "release"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pathlib import Path
        from engine.liveness import hold_run
        with hold_run(Path({str(folder)!r}), "export"):
            print("holding", flush=True)
            while not Path({str(release)!r}).exists():
                time.sleep(0.01)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        workspace = ["--workspace", str(settings.workspace)]
        code, _, err = _run(capsys, *workspace, "runs", "delete", str(run_id))
        assert code == 2 and f"run {run_id} is in use by export (pid {holder.pid}): delete it once that has ended" in err
        code, _, err = _run(capsys, *workspace, "runs", "mark-failed", str(run_id))
        assert code == 2 and "in use by export" in err
        assert folder.is_dir() and [r.id for r in _runs(settings)] == [run_id]
    finally:
        release.touch()
        holder.wait(timeout=60)
    code, out, _ = _run(capsys, "--workspace", str(settings.workspace), "runs", "delete", str(run_id))
    assert code == 0 and f"deleted run {run_id}" in out and not folder.exists()


def test_one_damaged_run_record_is_listed_as_damaged_and_the_others_as_usual(tmp_path, capsys, settings):
    import json
    import sqlite3

    from engine.pipeline import create_run
    from tests.engine.stages.tiny import tiny_config

    store = open_store(settings.resolved_store_url)
    try:
        damaged, sound = (create_run(tiny_config(name=f"run-{i}"), store, settings) for i in range(2))
    finally:
        store.close()
    with sqlite3.connect(settings.workspace / "store.sqlite") as db:  # a config edited by hand, badly
        db.execute("update runs set config = '{not json' where id = ?", (damaged,))
    code, out, _ = _run(capsys, "--workspace", str(settings.workspace), "runs")
    assert code == 0 and "run-1" in out
    assert f"run {damaged} is damaged: its stored config is not valid JSON" in out
    assert f"python main.py runs delete {damaged}" in out
    code, out, _ = _run(capsys, "--workspace", str(settings.workspace), "runs", "--json")
    listed = {row["id"]: row for row in json.loads(out)}
    assert listed[damaged]["damaged"] and listed[sound]["damaged"] is None
    code, out, _ = _run(capsys, "--workspace", str(settings.workspace), "runs", "delete", str(damaged))
    assert code == 0 and [r.id for r in _runs(settings)] == [sound]


def test_resume_asked_to_stop_after_a_stage_that_had_finished_runs_nothing_after_it(settings):
    from engine.pipeline import create_run, execute
    from engine.stages.context import Cancelled
    from engine.store import Status
    from tests.engine.stages.tiny import tiny_config

    store = open_store(settings.resolved_store_url)
    try:
        run_id = create_run(tiny_config(), store, settings)
        with pytest.raises(Cancelled, match="stopped after teacher"):
            execute(run_id, settings, store, lambda e: None, stop_after="teacher")
        # `resume RUN --stop-after teacher` once the teacher has finished: nothing more runs.
        with pytest.raises(Cancelled, match="teacher had already finished: stopped after it as asked"):
            execute(run_id, settings, store, lambda e: None, stop_after="teacher")
        stages = {stage.name: stage.status for stage in store.get_run(run_id).stages}
        assert stages["teacher"] is Status.finished and stages["supernet"] is Status.pending
        assert store.get_run(run_id).status is Status.cancelled
    finally:
        store.close()


@pytest.mark.parametrize("section, text", [("dataset", "dataset:\n  sample: null\n  path: ''\n"),
                                           ("teacher", "teacher:\n  checkpoint: '  '\n")])
def test_an_empty_path_is_refused_not_read_as_the_current_folder(tmp_path, capsys, settings, section, text):
    path = tmp_path / "run.yaml"
    path.write_text("preset: pix2pix-sample\n" + text)
    code, _, err = _run(capsys, "compress", "--config", str(path))
    assert code == 2 and f"{section}: " in err and "is an empty path: give the file or folder" in err
    assert _runs(settings) == []


def test_a_file_where_a_folder_is_expected_or_the_reverse_is_said_as_such(tmp_path, capsys, settings):
    from engine.checkpoints import load
    from engine.errors import UserError

    a_file, a_folder = tmp_path / "notes.txt", tmp_path / "folder"
    a_file.write_text("x")
    a_folder.mkdir()
    code, _, err = _run(capsys, "config", "--config", str(a_folder))
    assert code == 2 and f"config file {a_folder} is a folder, not a file" in err
    code, _, err = _run(capsys, "datasets", "check", str(a_file))
    assert code == 2 and f"dataset folder {a_file} is a file, not a folder: give the folder that holds it" in err
    with pytest.raises(UserError, match="checkpoint .* is a folder, not a file"):
        load(a_folder)
    code, _, err = _run(capsys, "config", "--config", str(tmp_path / "absent.yaml"))
    assert code == 2 and "config file not found" in err  # absent is still said as such


def test_a_whole_pickled_model_is_refused_with_how_to_save_its_weights_not_torchs_advice_to_run_it(tmp_path):
    import torch

    from engine.checkpoints import load
    from engine.errors import UserError

    path = tmp_path / "latest_net_G.pth"
    torch.save(torch.nn.Linear(2, 2), path)  # torch.save(model), as some projects write their generators
    with pytest.raises(UserError) as refused:
        load(path)
    said = str(refused.value)
    assert "holds a whole pickled object (torch.nn.modules.linear.Linear), not a state dict" in said
    assert "torch.save(model.state_dict(), PATH)" in said and "weights_only" not in said and "\n" not in said


def test_weights_a_run_saved_that_no_longer_fit_its_changed_configuration_say_so_naming_the_file(tmp_path):
    from engine.errors import UserError
    from engine.families.weights import load_saved
    from engine.models import MobileResnetSupernet

    saved = MobileResnetSupernet(3, 3, max_arch="8_8_8_8_8_8_8_8", n_blocks=3).state_dict()
    widened = MobileResnetSupernet(3, 3, max_arch="16_16_16_16_16_16_16_16", n_blocks=3)
    path = tmp_path / "supernet" / "supernet.pt"
    with pytest.raises(UserError) as refused:
        load_saved(widened, saved, path, "run's supernet")
    said = str(refused.value)
    assert said.startswith(f"{path} does not fit the run's supernet: shape of ")
    assert "configuration no longer matches what it saved" in said and "start a new run" in said
    deeper = MobileResnetSupernet(3, 3, max_arch="8_8_8_8_8_8_8_8", n_blocks=6)
    with pytest.raises(UserError, match="missing blocks"):
        load_saved(deeper, saved, path, "run's supernet")
    # Files a run writes now say what they were made with: the message names the setting that changed.
    with pytest.raises(UserError) as named:
        load_saved(deeper, saved, path, "run's supernet", made_with={"model.n_blocks": 3, "model.ngf": 8},
                   now={"model.n_blocks": 6, "model.ngf": 8})
    assert str(named.value) == (f"{path} was made with other settings than the run has now (model.n_blocks 3 then, "
                                "6 now), so it does not fit the run's supernet: put those settings back, or start a "
                                "new run with the new ones")


def test_datasets_check_makes_the_runs_checks_of_every_split(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    def images(folder, count, width, height):
        folder.mkdir(parents=True)
        for i in range(count):
            Image.fromarray(np.full((height, width, 3), i * 40, dtype=np.uint8)).save(folder / f"{i}.png")

    images(tmp_path / "no-test" / "train", 4, 64, 32)
    code, out, _ = _run(capsys, "datasets", "check", str(tmp_path / "no-test"))
    assert code == 1 and "problem: no usable test split, which a run scores its student on" in out
    assert "it can be used as it is" not in out
    images(tmp_path / "one" / "train", 1, 64, 32)
    images(tmp_path / "one" / "test", 2, 64, 32)
    code, out, _ = _run(capsys, "datasets", "check", str(tmp_path / "one"))
    assert code == 1 and "only 1 training image(s)" in out
    images(tmp_path / "square" / "train", 4, 32, 32)
    images(tmp_path / "square" / "test", 2, 32, 32)
    code, out, _ = _run(capsys, "datasets", "check", str(tmp_path / "square"), "--layout", "aligned")
    assert code == 1 and "not twice as wide as tall" in out
    images(tmp_path / "good" / "train", 4, 64, 32)
    images(tmp_path / "good" / "test", 2, 64, 32)
    code, out, _ = _run(capsys, "datasets", "check", str(tmp_path / "good"))
    assert code == 0 and "it can be used as it is" in out


def test_an_interrupted_search_resumed_on_other_held_out_images_drops_its_stale_scores(tmp_path):
    from types import SimpleNamespace

    import torch

    from engine.stages.search import forget_stale_scores
    from engine.store import open_store
    from engine.store.records import CandidateRecord

    store = open_store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    run_id = store.create_run(name="r", family="pix2pix", dataset="d", config={}, stages=["search"])
    messages = []
    ctx = SimpleNamespace(stage_dir=tmp_path, store=store, run_id=run_id,
                          message=lambda text, level="info": messages.append((level, text)))
    images = torch.zeros(4, 3, 8, 8)
    data = SimpleNamespace(search_inputs=images, search_targets=images, search_conditioning=())
    forget_stale_scores(ctx, data)  # the search starts: its split is recorded
    store.add_candidates(run_id, [CandidateRecord("8_8", 10, 5, {"fid": 3.0}), CandidateRecord("4_4", 5, 2, {"fid": 4.0})])
    forget_stale_scores(ctx, data)  # resumed on the same images: the scores stay
    assert len(store.candidates(run_id)) == 2 and messages == []
    edited = SimpleNamespace(search_inputs=images + 1, search_targets=images, search_conditioning=())
    forget_stale_scores(ctx, edited)  # resumed after the held-out images changed
    assert store.candidates(run_id) == []
    assert messages == [("warning", "search: the held-out images changed since the interrupted search scored 2 "
                                    "candidate(s); their scores are dropped and every candidate is scored on the "
                                    "images as they are now")]
    store.close()


def test_an_export_of_a_run_whose_folder_was_deleted_says_so_not_that_a_stage_is_unfinished(capsys, settings):
    import shutil

    from engine.pipeline import create_run, run_dir
    from tests.engine.stages.tiny import tiny_config

    store = open_store(settings.resolved_store_url)
    try:
        run_id = create_run(tiny_config(), store, settings)
    finally:
        store.close()
    shutil.rmtree(run_dir(settings, run_id))  # the folder removed by hand; the store still lists the run
    code, _, err = _run(capsys, "export", str(run_id), "--arch", "8_8_8_8_8_8_8_8")
    assert code == 2 and f"run {run_id}'s folder {run_dir(settings, run_id)} is gone (deleted or moved)" in err
    assert f"python main.py runs delete {run_id}" in err and "no finished" not in err


def test_names_that_become_paths_in_exports_and_presets_cannot_leave_their_folder(capsys):
    """An export's folder is named after the run and the arch (only widths: '../x' is no arch), and a preset is
    chosen from the list of presets, never read as a path."""
    from engine.arch import Arch

    for name in ("../../x", "/tmp/x", "8_8/../x"):
        with pytest.raises(ConfigError, match="an arch is whole numbers joined by '_'"):
            Arch.parse(name)
    with pytest.raises(SystemExit) as stopped:
        cli.main(["config", "--preset", "../paper-cyclegan-horse2zebra"])
    assert stopped.value.code == 2 and "invalid choice: '../paper-cyclegan-horse2zebra'" in capsys.readouterr().err
