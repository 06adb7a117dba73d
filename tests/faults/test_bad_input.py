"""Bad input a user can give: a clear error naming what to fix, exit code 2, no traceback."""

import pytest
import yaml

from engine import cli


@pytest.mark.parametrize("text, expected", [
    ("preset: [a, b]\n", "preset must be one name, not ['a', 'b']"),
    ("preset: pix2pix-sample\nteacher: {checkpoint: 5}\n", "teacher.checkpoint must be a path (text), not 5"),
])
def test_config_values_of_the_wrong_kind(tmp_path, capsys, text, expected):
    config = tmp_path / "run.yaml"
    config.write_text(text)
    assert cli.main(["compress", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_a_text_file_given_as_the_teacher_checkpoint(tmp_path, capsys):
    teacher = tmp_path / "latest_net_G.pth"
    teacher.write_text("not weights\n")
    config = tmp_path / "run.yaml"
    config.write_text(f"preset: pix2pix-sample\nteacher: {{checkpoint: {teacher}}}\n")
    assert cli.main(["compress", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{teacher} is not a PyTorch checkpoint" in err and "Traceback" not in err


def test_a_budget_no_sub_network_meets_is_refused_before_any_training(settings, tmp_path, capsys):
    from engine.store import open_store
    from tests.engine.stages.tiny import tiny_config

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_config(search={"target_ratio": 400}).model_dump(mode="json")))
    assert cli.main(["compress", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "search.target_ratio 400 asks for at most" in err and "choose a ratio of at most 4.2" in err
    store = open_store(settings.resolved_store_url)
    try:
        assert store.list_runs() == []  # refused before a run (or a sample dataset) was made
    finally:
        store.close()
    assert not (settings.workspace / "runs").exists()


@pytest.mark.parametrize("args, expected", [
    (["--input-nc", "0"], "model.input_nc: Input should be greater than or equal to 1"),
    (["--image-size", "250"], "image sides must be multiples of 4"),
    (["--image-size", "512x250"], "image sides must be multiples of 4"),
    (["--image-size", "12"], "at least 16"),
    (["--image-size", "65536"], "would need about"),
])
def test_profile_refuses_what_compress_would_and_sizes_too_large_for_memory(capsys, args, expected):
    try:
        code = cli.main(["profile", "--family", "cyclegan", *args])
    except SystemExit as exc:  # argparse's own usage error (exit code 2)
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and expected in err and "Traceback" not in err


def test_export_of_an_arch_outside_the_runs_search_space_is_refused(settings, capsys):
    from engine.pipeline import create_run, execute
    from engine.store import open_store
    from tests.engine.stages.tiny import tiny_config

    from engine.stages.context import Cancelled

    store = open_store(settings.resolved_store_url)
    try:
        run_id = create_run(tiny_config(), store, settings)  # space: 8 or 4 at each position
        with pytest.raises(Cancelled, match="stopped after supernet"):
            execute(run_id, settings, store, lambda e: None, stop_after="supernet")
    finally:
        store.close()
    assert cli.main(["export", str(run_id), "--arch", "6_8_8_8_8_8_8_8"]) == 2
    err = capsys.readouterr().err
    assert "outside the run's search space" in err and "stem 6 (choices 8, 4)" in err and "Traceback" not in err
