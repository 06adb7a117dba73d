"""Exported files timed in each backend: every file in one interleaved measurement, read per backend, and each
variant's speed from the same rounds."""

from pathlib import Path

import pytest
import torch

from engine.export import export_onnx, measure_models, measure_teacher_and_student
from engine.latency import LatencyReading, Timing
from engine.onnx_variants import build_variants


def _nets():
    torch.manual_seed(0)
    big = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(32, 3, 3, padding=1))
    small = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 3, 3, padding=1))
    return big.eval(), small.eval()


def test_a_reading_of_some_of_its_models_keeps_their_timings_and_ratios():
    t = lambda ms: Timing(ms, ms, ms, 10)  # noqa: E731
    reading = LatencyReading("cpu", "onnx files", 2, 1, (32, 32),
                             {"teacher": t(4), "student": t(2), "ov teacher": t(3), "ov": t(1)},
                             {"teacher/student": t(2), "ov teacher/ov": t(3), "student/ov": t(2)})
    openvino = reading.select({"teacher": "ov teacher", "student": "ov"}, "openvino")
    assert openvino.backend == "openvino" and openvino.timings == {"teacher": t(3), "student": t(1)}
    assert openvino.ratios == {"teacher/student": t(3)}  # student/ov names a model left out
    assert LatencyReading.from_dict(openvino.as_dict()) == openvino


def test_openvino_is_a_backend_of_the_one_protocol(tmp_path):
    big, small = _nets()
    example = torch.rand(1, 3, 32, 32)
    paths = {name: export_onnx(net, tmp_path / f"{name}.onnx", example) for name, net in
             (("teacher", big), ("student", small))}
    reading = measure_models({"teacher": big, "student": small}, example, "openvino", onnx_paths=paths, threads=1,
                             min_rounds=3, time_cap_s=2)
    assert reading.backend == "openvino" and reading.threads == 1 and reading.precision == "f32"
    assert set(reading.timings) == {"teacher", "student"} and "teacher/student" in reading.ratios
    assert reading.conditions().startswith("openvino on cpu, 1 thread, batch 1, 32x32, f32 precision hint")


def test_without_openvino_its_latency_is_refused_in_one_line(tmp_path, monkeypatch):
    from engine import openvino_runtime
    from engine.errors import UserError

    monkeypatch.setattr(openvino_runtime, "available", lambda: False)
    big, small = _nets()
    with pytest.raises(UserError, match="^OpenVINO is not installed"):
        measure_models({"teacher": big, "student": small}, torch.rand(1, 3, 8, 8), "openvino", onnx_paths={})


@pytest.mark.slow
def test_teacher_student_and_variants_are_timed_together_and_read_per_backend(tmp_path):
    big, small = _nets()
    example = torch.rand(1, 3, 32, 32)
    inputs = torch.rand(4, 3, 32, 32)
    teacher_onnx = export_onnx(big, tmp_path / "teacher.onnx", example)
    student_onnx = export_onnx(small, tmp_path / "student.onnx", example)
    with torch.no_grad():
        outputs = small(inputs).numpy()
    variants = build_variants(student_onnx, ("optimized", "openvino", "openvino_int8"), inputs.numpy(),
                              inputs.numpy(), outputs, threads=1)
    readings = measure_teacher_and_student(big, small, teacher_onnx, student_onnx, example, variants=variants,
                                           threads=1)
    assert set(readings) == {"pytorch", "onnxruntime", "openvino"}
    assert set(readings["onnxruntime"].timings) == {"teacher", "student", "optimized"}
    assert set(readings["openvino"].timings) == {"teacher", "student"}
    assert readings["openvino"].threads == readings["onnxruntime"].threads == 1
    # One measurement: the OpenVINO student and its variant were timed in the same rounds as the ONNX Runtime ones.
    runs = {readings["onnxruntime"].timings["student"].runs, readings["openvino"].timings["student"].runs}
    assert len(runs) == 1
    for name, variant in variants.items():
        assert variant["latency_ms"] > 0 and variant["speedup_over_float"] > 0 and "busy" in variant
    assert Path(variants["openvino"]["path"]).name == "student.xml"
    # A reduced precision is judged against the exact model of its own backend too, from the same rounds.
    reduced = variants["openvino_int8"]
    assert reduced["exact_reference"] == "openvino" and reduced["speedup_over_exact"] > 0
    assert reduced["slower_than_exact"] in (True, False)
    assert "speedup_over_exact" not in variants["openvino"] and "speedup_over_exact" not in variants["optimized"]


def test_torch_compile_is_an_option_of_the_protocol_and_leaves_the_models_as_they_are(monkeypatch):
    from engine.export import COMPILED

    compiled = []

    def compile_(net):  # inductor's minutes of C++ compiling are the benchmark's (export_speed.py), not a test's
        compiled.append(net)
        return lambda *inputs: net(*inputs)

    monkeypatch.setattr(torch, "compile", compile_)
    big, small = _nets()
    reading = measure_models({"teacher": big, "student": small}, torch.rand(1, 3, 16, 16), COMPILED, min_rounds=3,
                             time_cap_s=1)
    assert reading.backend == COMPILED and "teacher/student" in reading.ratios
    assert compiled == [big, small] and reading.timings["student"].runs >= 3
    assert type(small) is torch.nn.Sequential  # the caller's modules are timed through compiled wrappers, not replaced
