import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import main
from engine.settings import Settings
from engine.store import Status, open_store
from tests.patience import REAL_WORK_S

ROOT = Path(__file__).resolve().parents[2]


def _run(capsys, *argv):
    code = main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("datasets", "profile", "runs", "gui"):
        assert command in out


def test_profile_json_prints_the_teacher_and_a_subnetwork(capsys):
    code, out, _ = _run(capsys, "profile", "--family", "cyclegan", "--image-size", "256", "--json")
    assert code == 0
    teacher = json.loads(out)
    assert set(teacher) == {"macs", "params"}
    assert teacher["macs"] == pytest.approx(56.8e9, rel=0.01) and teacher["params"] == pytest.approx(11.4e6, rel=0.01)
    code, out, _ = _run(capsys, "profile", "--family", "cyclegan", "--arch", "16_16_24_16_32_64_16_24", "--json")
    student = json.loads(out)
    assert student["macs"] == pytest.approx(2.64e9, rel=0.03)


def test_profile_accepts_width_by_height(capsys):
    code, out, _ = _run(capsys, "profile", "--family", "pix2pix", "--image-size", "128x64", "--json")
    half = json.loads(out)["macs"]
    code, out, _ = _run(capsys, "profile", "--family", "pix2pix", "--image-size", "128", "--json")
    assert json.loads(out)["macs"] == pytest.approx(2 * half, rel=1e-3)


def test_bad_arch_is_a_one_line_error_with_exit_code_2(capsys):
    code, out, err = _run(capsys, "profile", "--family", "cyclegan", "--arch", "16_16")
    assert code == 2 and err.startswith("error: a cyclegan arch has 8 widths (stem, down1") and "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (("--model", "{not json"), "--model must be a JSON object"),
    (("--model", "[1, 2]"), "--model must be a JSON object"),
    (("--input-nc", "0"), "model.input_nc"),
    (("--model", '{"ngf": 32, "typo": 1}'), "model.typo"),
])
def test_bad_model_options_are_one_line_errors(capsys, args, message):
    code, _, err = _run(capsys, "profile", "--family", "pix2pix", *args)
    assert code == 2 and message in err and "Traceback" not in err


def test_profile_takes_the_familys_model_options(capsys):
    _, out, _ = _run(capsys, "profile", "--family", "cyclegan", "--model", '{"ngf": 32}', "--image-size", "64", "--json")
    _, full, _ = _run(capsys, "profile", "--family", "cyclegan", "--image-size", "64", "--json")
    assert json.loads(out)["params"] < json.loads(full)["params"] / 3


def test_datasets_lists_builds_and_checks(capsys, settings):
    code, out, _ = _run(capsys, "datasets", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert {"edges2photos", "grass2gravel", "labels2photos"} <= set(rows)
    assert rows["grass2gravel"]["layout"] == "unaligned"
    code, out, _ = _run(capsys, "datasets", "build", "grass2gravel", "--size", "32", "--train", "4", "--test", "2",
                        "--json")
    built = json.loads(out)
    assert Path(built["path"]).is_relative_to(settings.datasets_dir)
    code, out, _ = _run(capsys, "datasets", "check", built["path"], "--json")
    assert code == 0 and json.loads(out) == {"path": built["path"], "layout": "unaligned", "phase": "train", "items": 4,
                                             "skipped": []}
    code, out, err = _run(capsys, "datasets", "check", str(settings.workspace / "missing"))
    assert code == 2 and "dataset folder not found" in err


def test_runs_lists_what_the_store_holds(capsys, settings):
    code, out, _ = _run(capsys, "runs")
    assert code == 0 and "no runs yet" in out
    store = open_store(settings.resolved_store_url)
    run_id = store.create_run(name="sample", family="cyclegan", dataset="grass2gravel", config={},
                              stages=["teacher", "supernet"])
    store.mark_run(run_id, Status.running)
    store.update_stage(run_id, "teacher", status=Status.running, step=3, total_steps=12)
    store.close()
    code, out, _ = _run(capsys, "runs")
    assert "sample" in out and "running" in out and "3/12" in out
    code, out, _ = _run(capsys, "runs", "--json")
    [row] = json.loads(out)
    assert (row["id"], row["status"], row["stage"]) == (run_id, "running", "teacher")


def test_store_url_option_wins_over_the_workspace(capsys, tmp_path):
    url = f"sqlite:///{tmp_path / 'other.sqlite'}"
    code, out, _ = _run(capsys, "--store-url", url, "runs")
    assert code == 0 and "other.sqlite" in out


def test_main_py_runs_as_a_program(tmp_path):
    env = {**os.environ, **Settings(workspace=tmp_path).as_env()}
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "profile", "--family", "cyclegan",
                             "--arch", "16_16_24_16_32_64_16_24", "--json"],
                            capture_output=True, text=True, env=env, timeout=REAL_WORK_S)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["params"] == 355_235


def test_the_closing_summary_is_a_table_that_fits_the_terminal_and_stays_plain_on_a_pipe():
    from engine.cli import format_summary
    from engine.run_result import RunResult

    side = {"macs": 56_830_000_000, "params": 11_378_179, "metrics": {"fid": 61.5},
            "latency_ms": {"pytorch": 648.6, "openvino": 527.2}}
    summary = RunResult.from_dict({
        "run_id": 4, "teacher": side, "macs_ratio": 21.5, "metric": "fid", "image_size": 256,
        "student": {**side, "macs": 2_641_000_000, "params": 342_000, "metrics": {"fid": 65.2, "psnr_to_teacher": 27.1},
                    "latency_ms": {"pytorch": 107.1, "openvino": 43.6}, "weights_used": "final student (fine-tuned)"},
        "onnx_path": "student.onnx", "onnx_max_abs_diff": 1e-6, "model_card_path": "card.json", "grid_path": "g.png",
        "search": {"scored": 18, "scoring_backend": "images generated in OpenVINO", "set_up_ahead": 17}})
    plain = format_summary(summary)
    assert "search scoring: 17 of 18 candidates set up in OpenVINO while the one before was scored" in plain
    assert "\x1b[" not in plain and not any(c in plain for c in "─━│┃")  # no colours, no box on a pipe
    table = plain.split("\nrun 4")[0].splitlines()
    assert table[0].split() == ["teacher", "student", "student", "vs", "teacher"]
    assert any(line.split()[:4] == ["MACs", "(G)", "56.8300", "2.6410"] for line in table)
    assert any("latency openvino (ms)" in line and "12.09x faster" in line for line in table)
    assert "student weights: final student (fine-tuned)" in plain
    narrow = format_summary(summary, terminal=True, width=60)
    import re

    shown = re.sub(r"\x1b\[[0-9;]*m", "", narrow).split("\nrun 4")[0]
    assert all(len(line) <= 60 for line in shown.splitlines())  # the table fits the terminal's width


def test_set_overrides_any_setting_over_the_preset_and_says_what_is_wrong(capsys):
    from engine.cli import main as cli_main

    assert cli_main(["config", "--preset", "pix2pix-sample", "--set", "supernet.steps=123", "--set",
                     "search.population=7", "--json"]) == 0
    resolved = json.loads(capsys.readouterr().out)["config"]
    assert resolved["supernet"]["steps"] == 123 and resolved["search"]["population"] == 7
    assert cli_main(["config", "--preset", "pix2pix-sample", "--set", "supernet.steps"]) == 2
    assert "give KEY=VALUE with a dotted key" in capsys.readouterr().err
