"""Faster forms of an exported ONNX student, each checked before it is offered, each with its backend and
precision:

- ``optimized`` (ONNX Runtime, f32): ONNX Runtime's graph optimisations (constant folding, convolution +
  normalisation / activation fusions, redundant node removal) applied once and saved with the model, so a
  deployment does not redo them at every start. Exact: it must match PyTorch within the export tolerance. The
  saved graph may use ONNX Runtime's own fused operators, so it runs in ONNX Runtime (CPU) only.
- ``int8`` (ONNX Runtime): static INT8 quantisation (QDQ, weights per channel), its activation ranges
  calibrated on training images.
- ``openvino`` (OpenVINO, f32): the student in OpenVINO's own format (``student.xml`` + ``.bin``). Exact.
- ``openvino_bf16`` (OpenVINO): that model compiled with the bf16 precision hint, on CPUs with bf16
  instructions (elsewhere OpenVINO would run it in f32, so the variant is skipped and says why).
- ``openvino_int8`` (OpenVINO): quantised for OpenVINO by NNCF (``engine.openvino_int8``), calibrated on the
  same images, with accuracy control on the run's metric where the export gives it one.

A reduced-precision variant is not exact: its difference from the float student is measured (PSNR) and
reported beside its speed-up, and it is flagged when below ``REDUCED_MIN_PSNR_DB``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.openvino_int8 import AccuracyControl, Int8Model

log = logging.getLogger(__name__)

VARIANTS = ("optimized", "int8", "openvino", "openvino_bf16", "openvino_int8")
#: Each variant's backend and precision.
KINDS = {"optimized": ("onnxruntime", "f32"), "int8": ("onnxruntime", "int8"), "openvino": ("openvino", "f32"),
         "openvino_bf16": ("openvino", "bf16"), "openvino_int8": ("openvino", "int8")}
EXACT = ("optimized", "openvino")
#: A reduced-precision student's output within this PSNR (dB) of the float student's counts as a usable variant.
REDUCED_MIN_PSNR_DB = 25.0
BACKEND_TITLES = {"pytorch": "PyTorch", "pytorch-compiled": "PyTorch (torch.compile)", "onnxruntime": "ONNX Runtime",
                  "openvino": "OpenVINO"}


@dataclass(frozen=True)
class VariantCheck:
    """How a variant's outputs compare with the float student's on real test inputs."""

    max_abs_diff: float
    psnr_db: float

    def as_dict(self) -> dict[str, float]:
        return {"max_abs_diff": self.max_abs_diff, "psnr_to_float_db": self.psnr_db}


def optimize(source: Path, target: Path, threads: int | None = None) -> Path:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # EXTENDED, not ALL: the layout transformations of ALL are specific to the machine that saved them.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(target)
    if threads:
        options.intra_op_num_threads = threads
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    return target


Arrays = np.ndarray | tuple[np.ndarray, ...]


def _feeds(arrays: Arrays, names: str | tuple[str, ...]) -> tuple[tuple[np.ndarray, ...], tuple[str, ...]]:
    """One array per model input (a single array for a one-input model), with their names."""
    names = (names,) if isinstance(names, str) else tuple(names)
    arrays = (arrays,) if isinstance(arrays, np.ndarray) else tuple(arrays)
    if len(arrays) != len(names):
        raise ValueError(f"{len(arrays)} input arrays for {len(names)} inputs ({', '.join(names)})")
    return tuple(a.astype(np.float32) for a in arrays), names


def quantize_int8(source: Path, target: Path, calibration: Arrays, input_name: str | tuple[str, ...]) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Calibration(CalibrationDataReader):
        """Feeds the calibration images one at a time, as ONNX Runtime's calibrator asks for them."""

        def __init__(self) -> None:
            arrays, names = _feeds(calibration, input_name)
            self.batches = iter([{name: array[i:i + 1] for name, array in zip(names, arrays)}
                                 for i in range(len(arrays[0]))])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    prepared = target.with_name(target.stem + ".prepared.onnx")
    root = logging.getLogger()
    level = root.level
    # The quantiser warns on the root logger for every 1-D constant (normalisation scales) that it keeps
    # per tensor rather than per channel; that is the intended result, not a problem.
    root.setLevel(logging.ERROR)
    try:
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(target), Calibration(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
        prepared.unlink(missing_ok=True)
    return target


def compare_outputs(reference: np.ndarray, other: np.ndarray) -> VariantCheck:
    """Both in [-1, 1]; PSNR on the [0, 1] scale images are shown in."""
    mse = float(np.mean(((reference - other) / 2) ** 2))
    psnr = float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)
    return VariantCheck(float(np.abs(reference - other).max()), float(psnr))


def skipped_variants(names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """The variants of ``names`` this machine cannot build, each with the reason in one line."""
    from engine import openvino_int8, openvino_runtime

    skipped = {}
    for name in names:
        if KINDS[name][0] == "openvino" and not openvino_runtime.available():
            skipped[name] = openvino_runtime.MISSING
        elif name == "openvino_int8" and not openvino_int8.available():
            skipped[name] = openvino_int8.MISSING
        elif name == "openvino_bf16" and not openvino_runtime.bf16_supported():
            skipped[name] = ("this CPU has no bf16 instructions OpenVINO uses (AVX512-BF16 or AMX): a bf16 hint "
                             "would run in f32 here")
    return skipped


def variant_outputs(variant: dict[str, Any], feed: dict[str, np.ndarray], threads: int | None = None) -> np.ndarray:
    """The first output of a built variant (``build_variants``) on ``feed`` (inputs by name), in its backend."""
    if variant["backend"] == "openvino":
        from engine.openvino_runtime import infer

        return infer(Path(variant["path"]), feed, threads, variant.get("precision_hint", "f32"))
    from engine.export import onnx_session

    return onnx_session(Path(variant["path"]), threads).run(None, feed)[0]


def _write(name: str, student_onnx: Path, calibration: Arrays, input_name: str | tuple[str, ...],
           threads: int | None, built: dict[str, Path], control: AccuracyControl | None = None,
           made: dict[str, Int8Model] | None = None, preset: str = "mixed") -> Path:
    """The file of variant ``name`` (what it needs built first: the IR for bf16), recorded in ``built``; how
    OpenVINO's INT8 model was made in ``made``."""
    from engine.openvino_int8 import quantize
    from engine.openvino_runtime import write_ir

    stem = student_onnx.stem
    if name in built:
        return built[name]
    if name == "optimized":
        path = optimize(student_onnx, student_onnx.with_name(f"{stem}.optimized.onnx"), threads)
    elif name == "int8":
        path = quantize_int8(student_onnx, student_onnx.with_name(f"{stem}.int8.onnx"), calibration, input_name)
    elif name == "openvino":
        path = write_ir(student_onnx, student_onnx.with_name(f"{stem}.xml"))
    elif name == "openvino_bf16":
        path = _write("openvino", student_onnx, calibration, input_name, threads, built)
    elif name == "openvino_int8":
        arrays, names = _feeds(calibration, input_name)
        int8 = quantize(student_onnx, student_onnx.with_name(f"{stem}.int8.xml"), arrays, names, control, threads,
                        preset)
        if made is not None:
            made[name] = int8
        path = int8.path
    else:
        raise ValueError(f"unknown ONNX variant {name!r}; choose from {', '.join(VARIANTS)}")
    built[name] = path
    return path


def build_variants(student_onnx: Path, names: tuple[str, ...], calibration: Arrays, test_inputs: Arrays,
                   float_outputs: np.ndarray, threads: int | None = None,
                   input_name: str | tuple[str, ...] = "input",
                   control: AccuracyControl | None = None, int8_preset: str = "mixed") -> dict[str, dict[str, Any]]:
    """Each variant of ``student_onnx`` (of ``names``, less those this machine cannot build:
    ``skipped_variants``) written beside it and checked on ``test_inputs`` against the float student's
    ``float_outputs``: ``{name: {"path", "backend", "precision", "exact", "check", "usable"}}``. A model of
    several inputs gets a tuple of arrays (one per input, as ``input_name`` names them) for both. OpenVINO's
    INT8 model is quantised with ``control`` (the run's metric on held-out images) where it is given, and says
    how (``quantizer``, and ``control``: the metric before and after), with NNCF's ``int8_preset``."""
    test_arrays, input_names = _feeds(test_inputs, input_name)
    test_feed = dict(zip(input_names, test_arrays))
    from engine.export import PARITY_TOLERANCE

    unknown = [name for name in names if name not in KINDS]
    if unknown:
        raise ValueError(f"unknown ONNX variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    skipped = skipped_variants(names)
    built: dict[str, Path] = {}
    made: dict[str, Int8Model] = {}
    variants: dict[str, dict[str, Any]] = {}
    for name in names:
        if name in skipped:
            continue
        backend, precision = KINDS[name]
        path = _write(name, student_onnx, calibration, input_name, threads, built, control, made, int8_preset)
        variant: dict[str, Any] = {"path": str(path), "backend": backend, "precision": precision,
                                   "exact": name in EXACT, **(made[name].as_dict() if name in made else {})}
        if name == "openvino_bf16":
            variant["precision_hint"] = "bf16"
        check = compare_outputs(float_outputs, variant_outputs(variant, test_feed, threads))
        usable = bool(check.max_abs_diff <= PARITY_TOLERANCE if variant["exact"]
                      else check.psnr_db >= REDUCED_MIN_PSNR_DB)
        if not usable:
            log.warning("ONNX variant %s of %s is off (max |diff| %.3g, %.1f dB)", name, student_onnx.name,
                        check.max_abs_diff, check.psnr_db)
        variants[name] = {**variant, "check": check.as_dict(), "usable": usable,
                          "tolerance": (f"max |diff| <= {PARITY_TOLERANCE}" if variant["exact"]
                                        else f"PSNR to the float student >= {REDUCED_MIN_PSNR_DB:g} dB")}
    return variants


def card_variants(variants: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The variants as a model card lists them: their files by name, beside the card."""
    return {name: {**variant, "path": Path(variant["path"]).name} for name, variant in variants.items()}


def describe_variant(name: str, variant: dict[str, Any]) -> str:
    """One line for people: the file, its backend and precision, its speed beside the float student in ONNX
    Runtime (the one reference every variant is timed with), its quality, and a flag."""
    check = variant["check"]
    backend, precision = variant.get("backend"), variant.get("precision")
    if backend is None:  # written before variants named their backend
        backend, precision = KINDS.get(name, ("onnxruntime", "f32"))
    hint = " hint" if variant.get("precision_hint") else ""
    kind = f"{BACKEND_TITLES.get(backend, backend)}, {precision}{hint}"
    quality = (f"max |diff| {check['max_abs_diff']:.2g}" if variant["exact"]
               else f"{check['psnr_to_float_db']:.1f} dB PSNR to the float student"
               + "".join(f", {k} {v:.4g} ({variant.get('metrics_split', 'test')} split)"
                         for k, v in variant.get("metrics", {}).items()))
    control = variant.get("control")
    if control:
        held = control.get("within_drop")
        verdict = ("" if held is None else f", within the {100 * control['max_drop']:g}% allowed" if held
                   else f", NOT within the {100 * control['max_drop']:g}% allowed")
        stopped = (f", stopped at its time cap of {control['stopped_after_s']:g} s: plain quantisation kept"
                   if control.get("stopped_after_s") else "")
        quality += (f"; {control['metric']} on the search split {control['float']:.4g} float, {control['int8']:.4g} "
                    f"INT8 (NNCF accuracy control{stopped}{verdict})")
    speed = ""
    if "latency_ms" in variant:
        spread = variant.get("speedup_p10_p90")
        how = (f"median of per-round ratios, p10-p90 {spread[0]:.2f}-{spread[1]:.2f}" if spread
               else "median of per-round ratios")
        if variant.get("ratio_of_medians") is not None:
            how += f"; ratio of the medians {variant['ratio_of_medians']:.2f}x"
        busy = ", machine busy (wide spread)" if variant.get("busy") else ""
        speed = (f"{variant['latency_ms']:.2f} ms, {variant['speedup_over_float']:.2f}x the speed of the float "
                 f"student.onnx in ONNX Runtime ({how}{busy}); ")
    flag = "" if variant["usable"] else f"; OUTSIDE its tolerance ({variant['tolerance']})"
    flag += slower_note(variant)
    return f"{name}: {Path(variant['path']).name} ({kind}; {speed}{quality}{flag})"


def slower_note(variant: dict[str, Any]) -> str:
    """"; NOT RECOMMENDED here: ..." for a reduced-precision variant slower than the exact model of its backend on
    the machine that measured it (bf16 hints on a CPU without AMX, say); empty otherwise."""
    if not variant.get("slower_than_exact"):
        return ""
    return (f"; NOT RECOMMENDED on this machine: {variant['speedup_over_exact']:.2f}x the speed of the exact "
            f"{variant['exact_reference']} here (slower in every measured round's p90)")
