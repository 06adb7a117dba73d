"""Faster forms of an exported student: the optimised graph and the OpenVINO model are exact, the INT8 and bf16
ones are measured against the float student and flagged when outside their tolerance; a variant this machine
cannot build is skipped with its reason."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from engine.export import PARITY_TOLERANCE, export_onnx, measure_onnx
from engine.families import get_family
from engine.onnx_variants import REDUCED_MIN_PSNR_DB, build_variants, compare_outputs


@pytest.fixture
def student(tmp_path):
    family = get_family("cyclegan")
    options = family.options({"ngf": 16, "n_blocks": 3})
    torch.manual_seed(0)
    net = family.build_student(options, family.parse_arch("16_16_16_16_16_16_16_16")).eval()
    inputs = torch.rand(4, 3, 32, 32) * 2 - 1
    path = export_onnx(net, tmp_path / "student.onnx", inputs[:1])
    with torch.no_grad():
        outputs = net(inputs).numpy()
    return path, inputs, outputs


def test_the_optimised_graph_is_exact_and_saved_beside_the_student(student):
    path, inputs, outputs = student
    variants = build_variants(path, ("optimized",), inputs.numpy(), inputs.numpy(), outputs)
    optimized = variants["optimized"]
    assert optimized["exact"] and optimized["usable"] and optimized["check"]["max_abs_diff"] <= PARITY_TOLERANCE
    assert optimized["path"] == str(path.with_name("student.optimized.onnx"))
    session = ort.InferenceSession(optimized["path"], providers=["CPUExecutionProvider"])
    assert np.allclose(session.run(None, {"input": inputs.numpy()})[0], outputs, atol=PARITY_TOLERANCE)


def test_the_int8_variant_is_quantised_and_its_difference_measured(student):
    import onnx

    path, inputs, outputs = student
    calibration = (torch.rand(8, 3, 32, 32) * 2 - 1).numpy()
    int8 = build_variants(path, ("int8",), calibration, inputs.numpy(), outputs)["int8"]
    model = onnx.load(int8["path"])
    assert any(node.op_type == "QuantizeLinear" for node in model.graph.node)
    session = ort.InferenceSession(int8["path"], providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": inputs.numpy()})[0]
    assert int8["check"] == compare_outputs(outputs, got).as_dict() and not int8["exact"]
    assert int8["usable"] == (int8["check"]["psnr_to_float_db"] >= REDUCED_MIN_PSNR_DB)
    assert "PSNR to the float student" in int8["tolerance"]
    reading = measure_onnx({"float": path, "int8": int8["path"]}, inputs[:1], min_rounds=3, time_cap_s=1)
    assert set(reading.timings) == {"float", "int8"} and "float/int8" in reading.ratios


def test_compare_outputs_on_the_shown_scale():
    a = np.zeros((1, 3, 4, 4), dtype=np.float32)
    assert compare_outputs(a, a).psnr_db == float("inf")
    assert compare_outputs(a, a + 0.2).psnr_db == pytest.approx(20.0)  # 0.1 on the [0, 1] scale


def test_a_variants_speed_says_how_its_ratio_is_computed_and_whether_the_machine_was_busy():
    from engine.onnx_variants import describe_variant

    variant = {"path": "student.int8.onnx", "exact": False, "usable": True, "tolerance": "25 dB",
               "check": {"psnr_to_float_db": 31.0, "max_abs_diff": 0.1}, "latency_ms": 11.17,
               "speedup_over_float": 0.88, "speedup_p10_p90": [0.12, 1.4], "ratio_of_medians": 0.15, "busy": True}
    line = describe_variant("int8", variant)
    assert ("11.17 ms, 0.88x the speed of the float student.onnx in ONNX Runtime (median of per-round ratios, "
            "p10-p90 0.12-1.40; ratio of the medians 0.15x, machine busy (wide spread))") in line
    assert line.startswith("int8: student.int8.onnx (ONNX Runtime, int8;")
    quiet = describe_variant("int8", {**variant, "busy": False})
    assert "machine busy" not in quiet and "NOT RECOMMENDED" not in quiet
    # A reduced precision slower than its backend's exact model here is said not to be recommended.
    bf16 = {**variant, "path": "student.xml", "backend": "openvino", "precision": "bf16", "precision_hint": "bf16",
            "speedup_over_exact": 0.72, "exact_reference": "openvino", "slower_than_exact": True}
    assert describe_variant("openvino_bf16", bf16).endswith(
        "; NOT RECOMMENDED on this machine: 0.72x the speed of the exact openvino here (slower in every measured "
        "round's p90))")
    assert "NOT RECOMMENDED" not in describe_variant("openvino_bf16", {**bf16, "slower_than_exact": False})


def test_the_openvino_model_is_written_beside_the_student_and_exact(student):
    from engine.openvino_runtime import infer

    path, inputs, outputs = student
    openvino = build_variants(path, ("openvino",), inputs.numpy(), inputs.numpy(), outputs)["openvino"]
    xml = path.with_name("student.xml")
    assert openvino["path"] == str(xml) and xml.with_suffix(".bin").is_file()
    assert (openvino["backend"], openvino["precision"], openvino["exact"]) == ("openvino", "f32", True)
    assert openvino["usable"] and openvino["check"]["max_abs_diff"] <= PARITY_TOLERANCE
    # Read back from the IR files alone, as a deployment would.
    assert np.allclose(infer(xml, {"input": inputs.numpy()}), outputs, atol=PARITY_TOLERANCE)
    assert not list(path.parent.glob("*.tmp*"))


def _quantised_layers(xml: str) -> int:
    from engine.openvino_runtime import read_model

    return sum(op.get_type_name() == "FakeQuantize" for op in read_model(xml).get_ops())


def test_openvino_int8_is_quantised_by_nncf_for_openvino_and_leaves_only_its_own_files(student):
    path, inputs, outputs = student
    calibration = (torch.rand(8, 3, 32, 32) * 2 - 1).numpy()
    variants = build_variants(path, ("openvino_int8",), calibration, inputs.numpy(), outputs)
    int8 = variants["openvino_int8"]
    assert (int8["backend"], int8["precision"], int8["exact"]) == ("openvino", "int8", False)
    assert int8["path"] == str(path.with_name("student.int8.xml"))
    assert int8["quantizer"] == ("NNCF post-training quantisation, asymmetric activations, ranges from 8 "
                                 "search-split images")
    assert "control" not in int8
    assert _quantised_layers(int8["path"]) > 0  # OpenVINO runs these with its integer kernels
    assert int8["usable"] == (int8["check"]["psnr_to_float_db"] >= REDUCED_MIN_PSNR_DB)
    # No QDQ model for ONNX Runtime on the way, no temporary file.
    assert sorted(p.name for p in path.parent.iterdir()) == ["student.int8.bin", "student.int8.xml", "student.onnx"]


def test_accuracy_control_keeps_the_metric_within_the_drop_the_user_allows(student):
    from engine.openvino_int8 import AccuracyControl

    path, inputs, outputs = student
    calibration = (torch.rand(8, 3, 32, 32) * 2 - 1).numpy()
    held_out = (torch.rand(3, 3, 32, 32) * 2 - 1).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    float_held_out = session.run(None, {"input": held_out})[0]

    def error(out: np.ndarray) -> float:
        """Lower is better (as FID): 1 for the float student exactly, more for any difference from it."""
        return 1.0 + 10.0 * float(np.mean((out - float_held_out) ** 2))

    calls = []

    def counted(out: np.ndarray) -> float:
        calls.append(1)
        return error(out)

    def quantised(max_drop: float, iterations: int = 1000, **cap) -> dict:
        calls.clear()
        control = AccuracyControl("error", False, counted, (held_out,), max_drop, iterations, **cap)
        return build_variants(path, ("openvino_int8",), calibration, inputs.numpy(), outputs,
                              control=control)["openvino_int8"]

    loose = quantised(0.5)
    assert loose["control"]["float"] == pytest.approx(1.0, abs=1e-6)
    assert 1.0 < loose["control"]["int8"] <= 1.5
    loose_layers = _quantised_layers(loose["path"])
    assert loose_layers > 0
    assert loose["quantizer"].startswith("NNCF with accuracy control: error on 3 search-split images may worsen "
                                         "by 50% at most")
    # No worsening allowed: the layers that cost the metric are kept in f32 until it holds.
    strict = quantised(0.0)
    assert strict["control"]["int8"] <= 1.0 + 1e-6
    assert strict["control"]["within_drop"] is True and loose["control"]["within_drop"] is True
    assert _quantised_layers(strict["path"]) < loose_layers
    unlimited_calls = len(calls)
    # Capped at one group tried in f32: it stops there, with fewer evaluations of the metric, and says whether
    # the drop was met (the metric before and after decide it, not what NNCF logged).
    capped = quantised(0.0, iterations=1)
    assert len(calls) < unlimited_calls
    assert _quantised_layers(capped["path"]) >= _quantised_layers(strict["path"])
    assert capped["control"]["within_drop"] == (capped["control"]["int8"] <= 1.0 + 1e-9)
    assert "(at most 1 groups of layers tried in f32)" in capped["quantizer"]
    # Past its time cap (a fake clock: each reading a second later), it stops and keeps plain post-training
    # quantisation, said in the variant and its control; the drop is judged on that model.
    ticks = iter(range(10**6))
    timed_out = quantised(0.0, time_cap_s=0.5, clock=lambda: float(next(ticks)))
    assert timed_out["control"]["stopped_after_s"] == 0.5 and strict["control"]["stopped_after_s"] is None
    assert "accuracy control stopped at its time cap of 0.5 s (export.int8_time_cap_s)" in timed_out["quantizer"]
    assert len(calls) == 2  # the float and the INT8 model's metric, for the record: nothing was ranked
    timed_out_layers = _quantised_layers(timed_out["path"])
    plain = build_variants(path, ("openvino_int8",), calibration, inputs.numpy(), outputs)["openvino_int8"]
    assert timed_out_layers == _quantised_layers(plain["path"]) >= loose_layers  # nothing kept in f32
    assert timed_out["control"]["within_drop"] == (timed_out["control"]["int8"] <= 1.0 + 1e-9)
    from engine.onnx_variants import describe_variant

    assert "(NNCF accuracy control, stopped at its time cap of 0.5 s: plain quantisation kept, " in \
        describe_variant("openvino_int8", timed_out)


def test_bf16_is_built_where_the_cpu_has_it_and_skipped_with_a_reason_elsewhere(student, monkeypatch):
    from engine import openvino_runtime
    from engine.onnx_variants import skipped_variants

    path, inputs, outputs = student
    monkeypatch.setattr(openvino_runtime, "bf16_supported", lambda: False)
    assert "no bf16 instructions" in skipped_variants(("openvino_bf16",))["openvino_bf16"]
    assert build_variants(path, ("openvino_bf16",), inputs.numpy(), inputs.numpy(), outputs) == {}
    monkeypatch.setattr(openvino_runtime, "bf16_supported", lambda: True)
    bf16 = build_variants(path, ("openvino_bf16",), inputs.numpy(), inputs.numpy(), outputs)["openvino_bf16"]
    # The hint is on the OpenVINO model, not a file of its own (on a CPU without bf16 it runs in f32).
    assert bf16["path"] == str(path.with_name("student.xml")) and bf16["precision_hint"] == "bf16"
    assert bf16["check"]["psnr_to_float_db"] > REDUCED_MIN_PSNR_DB


def test_without_openvino_its_variants_are_skipped_in_one_line(student, monkeypatch):
    from engine import openvino_runtime
    from engine.export import backend_unavailable
    from engine.onnx_variants import skipped_variants

    path, inputs, outputs = student
    monkeypatch.setattr(openvino_runtime, "available", lambda: False)
    skipped = skipped_variants(("optimized", "openvino", "openvino_int8"))
    assert set(skipped) == {"openvino", "openvino_int8"} and skipped["openvino"] == openvino_runtime.MISSING
    assert "\n" not in openvino_runtime.MISSING and backend_unavailable("openvino") == openvino_runtime.MISSING
    variants = build_variants(path, ("optimized", "openvino"), inputs.numpy(), inputs.numpy(), outputs)
    assert set(variants) == {"optimized"}
