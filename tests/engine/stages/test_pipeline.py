"""The whole pipeline on tiny models: end to end, killed and resumed, cancelled and resumed."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import main
from engine import openvino_runtime
from engine.events import CandidateScored, Message, StageStarted, StepProgress
from engine.pipeline import create_run, execute, fail_dead_runs
from engine.stages.context import Cancelled
from engine.store import Status
from tests.engine.models.reference_checkpoints import reference_resnet_state
from tests.engine.stages.tiny import tiny_config

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


def test_pix2pix_end_to_end_from_the_command_line(settings, store, tmp_path, capsys):
    config_path = tmp_path / "run.yaml"
    every_variant = ["optimized", "int8", "openvino", "openvino_bf16", "openvino_int8"]
    config = tiny_config("pix2pix", export={"variants": every_variant})
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    assert main.main(["compress", "--config", str(config_path), "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert "  int8: " in captured.err and "the speed of the float student.onnx in ONNX Runtime" in captured.err
    assert "speed-ups are per-round ratios" in captured.err
    assert set(summary) >= {"run_id", "teacher", "student", "macs_ratio", "onnx_path", "model_card_path"}
    for side in ("teacher", "student"):
        assert set(summary[side]) >= {"macs", "params", "metrics", "latency_ms"}
        assert set(summary[side]["latency_ms"]) == {"pytorch", "onnxruntime", "openvino"}
        assert {"psnr", "ssim"} <= set(summary[side]["metrics"])
    assert summary["macs_ratio"] >= 2 and summary["student"]["macs"] < summary["teacher"]["macs"]
    from engine.run_result import RunResult

    # Which weights, in words, not taken for a file of the run (it was once made an absolute path).
    assert RunResult.from_dict(summary).student.weights == summary["student"]["weights_used"]
    assert summary["student"]["weights_used"].startswith("final student")
    assert summary["onnx_max_abs_diff"] <= 1e-3
    variants = summary["onnx_variants"]
    from engine.openvino_runtime import bf16_supported

    bf16 = {"openvino_bf16"} if bf16_supported() else set()
    assert set(variants) == {"optimized", "int8", "openvino", "openvino_int8"} | bf16
    assert set(summary["onnx_variants_skipped"]) == {"openvino_bf16"} - bf16
    assert variants["optimized"]["usable"] and variants["openvino"]["usable"]
    assert {v["backend"] for v in variants.values()} == {"onnxruntime", "openvino"}
    assert set(variants["int8"]["metrics"]) >= {"psnr", "ssim"} and variants["int8"]["metrics_split"] == "test"
    # OpenVINO's INT8 by NNCF with accuracy control on the run's metric (psnr here) on the search split.
    control = variants["openvino_int8"]["control"]
    assert control["metric"] == "psnr" and control["split"] == "search"
    # Higher is better: within the drop means at most 1% lower; where the capped search did not get there, the
    # variant and the log say so.
    assert control["within_drop"] == (control["int8"] >= control["float"] * (1 - 0.01) - 1e-9)
    assert "psnr on the search split" in captured.err
    assert ("INT8 accuracy control did not bring psnr within 1%" in captured.err) == (not control["within_drop"])
    for variant in variants.values():
        assert Path(variant["path"]).is_file() and variant["latency_ms"] > 0 and variant["speedup_over_float"] > 0
    assert summary["latency"]["onnxruntime"]["timings"].keys() == {"teacher", "student", "optimized", "int8"}
    assert summary["latency"]["openvino"]["timings"].keys() == {"teacher", "student"}
    assert "teacher/student" in summary["latency"]["openvino"]["ratios"]
    card = json.loads(Path(summary["model_card_path"]).read_text())
    assert card["arch"] == summary["student"]["arch"] and card["source_run"]["id"] == summary["run_id"]
    assert card["onnx_variants"]["int8"]["path"] == Path(variants["int8"]["path"]).name
    assert card["onnx_variants"]["openvino"]["path"] == "student.xml" and "openvino" in card["latency"]

    run = store.get_run(summary["run_id"])
    assert run.status is Status.finished and all(s.status is Status.finished for s in run.stages)
    kinds = {a.kind for a in run.artifacts}
    assert {"teacher_weights", "supernet_weights", "student_weights", "onnx", "onnx_optimized", "onnx_int8",
            "openvino", "openvino_int8", "model_card", "comparison_grid"} <= kinds
    assert len({(a.kind, a.path) for a in run.artifacts}) == len(run.artifacts)  # each recorded once
    run_folder = settings.runs_dir / f"{run.id:05d}"
    assert not list(run_folder.rglob("checkpoint.pt"))  # finished stages keep their weights, not checkpoints
    assert store.metric_series(run.id, "supernet", "G_distill")
    candidates = store.candidates(run.id)
    assert len(candidates) == json.loads((settings.runs_dir / f"{run.id:05d}" / "search" / "result.json").read_text())["scored"]
    budget = summary["teacher"]["macs"] / 2
    assert all(c.macs <= budget for c in candidates)
    assert summary["search"]["method"] == "exhaustive"
    search_stage = next(s for s in run.stages if s.name == "search")
    assert search_stage.step == search_stage.total_steps == len(candidates)  # progress per scored candidate

    import onnxruntime as ort
    session = ort.InferenceSession(summary["onnx_path"], providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": torch.zeros(3, 3, 32, 32).numpy()})[0]
    assert out.shape == (3, 3, 32, 32)  # dynamic batch


def test_cyclegan_without_inception_weights_uses_the_labelled_fallback(settings, store, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-home"))
    events = []
    # Generation in OpenVINO where it is installed (asked for: a tiny run's eager split is too quick for ``auto``
    # to convert), so that the search's own path sets each next candidate up while one is scored.
    config = tiny_config("cyclegan", search={"method": "evolution", "population": 6, "generations": 2,
                                             "scoring_backend": "openvino" if openvino_runtime.available() else "auto"})
    summary = execute(create_run(config, store, settings), settings, store, events.append)
    assert summary["metric"] == "rfid"
    assert set(summary["student"]["metrics"]) == {"rfid", "psnr_to_teacher"}
    warnings = [e.text for e in events if isinstance(e, Message) and e.level == "warning"]
    assert len(warnings) == 1 and "Inception weights for FID not found" in warnings[0]
    assert list((settings.workspace / "stats").glob("random-32px-*.npz"))  # real statistics are cached
    # The feature network ran in OpenVINO where it is installed (checked against PyTorch first), and the
    # summary says so.
    if openvino_runtime.available():
        assert summary["search"]["scoring_backend"].startswith("features in OpenVINO")
    # And where the candidates' images were generated, decided on a probe as the search started.
    assert "images generated in " in summary["search"]["scoring_backend"]
    if openvino_runtime.available():
        assert "images generated in OpenVINO" in summary["search"]["scoring_backend"]
        # Each round's successor was set up while the round was scored, but across a generation's end.
        assert 0 < summary["search"]["set_up_ahead"] < summary["search"]["scored"]


def test_a_killed_run_is_marked_failed_and_resumes_without_redoing_finished_work(settings, store, tmp_path):
    # Every step a checkpoint; ONNX variants are not what is tested here (a resume's skipped work is).
    config = tiny_config("pix2pix", supernet={"steps": 20}, checkpoint_interval_s=0.001,
                         export={"variants": []})
    config_path = tmp_path / "run.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    env = {**os.environ, **settings.as_env(), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "compress", "--config", str(config_path),
                                "--json-events"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env=env, cwd=ROOT)
    run_id = None
    try:
        for line in process.stdout:
            event = json.loads(line)
            run_id = event.get("run_id") or run_id
            if event["event"] == "step" and event["stage"] == "supernet" and event["step"] >= 5:
                process.send_signal(signal.SIGKILL)
                break
    finally:
        process.wait(timeout=60)
    assert run_id is not None
    teacher_weights = settings.runs_dir / f"{run_id:05d}" / "teacher" / "teacher.pt"
    stamp = teacher_weights.stat().st_mtime_ns

    assert fail_dead_runs(store) == [run_id]
    run = store.get_run(run_id)
    assert run.status is Status.failed and "resume with" in run.error
    assert [s.status for s in run.stages][:2] == [Status.finished, Status.failed]

    events = []
    execute(run_id, settings, store, events.append)
    started = [e.stage for e in events if isinstance(e, StageStarted)]
    assert started == ["supernet", "search", "finetune", "export"]
    supernet_steps = [e.step for e in events if isinstance(e, StepProgress) and e.stage == "supernet"]
    # The first report is the stage's start at its checkpoint's step (near the kill), not 0; then on from there.
    assert supernet_steps[0] >= 4 and supernet_steps[1] == supernet_steps[0] + 1 and supernet_steps[-1] == 20
    assert any("resuming supernet from step" in e.text for e in events if isinstance(e, Message))
    assert teacher_weights.stat().st_mtime_ns == stamp
    assert store.get_run(run_id).status is Status.finished


def test_cancelled_search_keeps_its_candidates_and_a_resume_scores_only_the_rest(settings, store, tmp_path):
    state = reference_resnet_state(ngf=8, n_blocks=3)
    checkpoint = tmp_path / "latest_net_G.pth"
    torch.save({"G": {f"module.{k}": v for k, v in state.items()}}, checkpoint)  # a nested DataParallel save
    config = tiny_config("pix2pix", teacher={"checkpoint": str(checkpoint)}, search={"method": "exhaustive"})
    run_id = create_run(config, store, settings)
    scored_first = []

    def cancel_after_some_candidates() -> bool:
        return len(scored_first) >= 5

    def sink(event):
        if isinstance(event, CandidateScored):
            scored_first.append(event.arch)

    with pytest.raises(Cancelled, match="resume with"):
        execute(run_id, settings, store, sink, cancel_after_some_candidates)
    run = store.get_run(run_id)
    assert run.status is Status.cancelled
    assert [s.status for s in run.stages][:3] == [Status.finished, Status.finished, Status.cancelled]
    assert len(store.candidates(run_id)) == 5
    assert json.loads((settings.runs_dir / f"{run_id:05d}" / "teacher" / "result.json").read_text())["source"] == str(checkpoint)

    scored_again = []
    execute(run_id, settings, store, lambda e: scored_again.append(e.arch) if isinstance(e, CandidateScored) else None)
    assert not set(scored_again) & set(scored_first)
    result = json.loads((settings.runs_dir / f"{run_id:05d}" / "search" / "result.json").read_text())
    assert result["reused"] == 5 and result["scored"] == len(scored_again)
    assert len(store.candidates(run_id)) == 5 + len(scored_again)


def test_without_the_adversarial_loss_a_run_neither_runs_nor_schedules_a_discriminator(settings, store, recwarn):
    config = tiny_config("pix2pix", recipe={"lambda_gan": 0})
    run_id = create_run(config, store, settings)
    with pytest.raises(Cancelled, match="stopped after finetune"):  # the training stages are what is tested
        execute(run_id, settings, store, lambda event: None, stop_after="finetune")
    for stage in ("supernet", "finetune"):
        assert store.metric_series(run_id, stage, "G_distill")
        assert not any(store.metric_series(run_id, stage, name) for name in ("G_gan", "D_real", "D_fake"))
    assert not [w for w in recwarn if "lr_scheduler" in str(w.message)]
