"""Faster forms of an exported ONNX student, each checked before it is offered:

- ``optimized``: ONNX Runtime's graph optimisations (constant folding, convolution + normalisation /
  activation fusions, redundant node removal) applied once and saved with the model, so a deployment
  does not redo them at every start. Exact: it must match PyTorch within the export tolerance. The saved
  graph may use ONNX Runtime's own fused operators, so it runs in ONNX Runtime (CPU) only.
- ``int8``: static INT8 quantisation (QDQ, weights per channel), its activation ranges calibrated on
  training images. Not exact: its difference from the float student is measured (PSNR) and reported
  beside its speed-up, and it is flagged when below ``INT8_MIN_PSNR_DB``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

VARIANTS = ("optimized", "int8")
#: The INT8 student's output within this PSNR (dB) of the float student's counts as a usable variant.
INT8_MIN_PSNR_DB = 25.0


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


def build_variants(student_onnx: Path, names: tuple[str, ...], calibration: Arrays, test_inputs: Arrays,
                   float_outputs: np.ndarray, threads: int | None = None,
                   input_name: str | tuple[str, ...] = "input") -> dict[str, dict[str, Any]]:
    """Each variant of ``student_onnx`` (of ``names``) written beside it and checked on ``test_inputs``
    against the float student's ``float_outputs``: ``{name: {"path", "exact", "check", "usable"}}``. A model
    of several inputs gets a tuple of arrays (one per input, as ``input_name`` names them) for both."""
    test_arrays, input_names = _feeds(test_inputs, input_name)
    test_feed = dict(zip(input_names, test_arrays))
    from engine.export import PARITY_TOLERANCE, onnx_session

    variants: dict[str, dict[str, Any]] = {}
    for name in names:
        target = student_onnx.with_name(f"{student_onnx.stem}.{name}.onnx")
        if name == "optimized":
            optimize(student_onnx, target, threads)
        elif name == "int8":
            quantize_int8(student_onnx, target, calibration, input_name)
        else:
            raise ValueError(f"unknown ONNX variant {name!r}; choose from {', '.join(VARIANTS)}")
        outputs = onnx_session(target, threads).run(None, test_feed)[0]
        check = compare_outputs(float_outputs, outputs)
        exact = name == "optimized"
        usable = bool(check.max_abs_diff <= PARITY_TOLERANCE if exact else check.psnr_db >= INT8_MIN_PSNR_DB)
        if not usable:
            log.warning("ONNX variant %s of %s is off (max |diff| %.3g, %.1f dB)", name, student_onnx.name,
                        check.max_abs_diff, check.psnr_db)
        variants[name] = {"path": str(target), "exact": exact, "check": check.as_dict(), "usable": usable,
                          "tolerance": (f"max |diff| <= {PARITY_TOLERANCE}" if exact
                                        else f"PSNR to the float student >= {INT8_MIN_PSNR_DB:g} dB")}
    return variants


def card_variants(variants: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The variants as a model card lists them: their files by name, beside the card."""
    return {name: {**variant, "path": Path(variant["path"]).name} for name, variant in variants.items()}


def describe_variant(name: str, variant: dict[str, Any]) -> str:
    """One line for people: the file, its speed beside the float student, its quality, and a flag."""
    check = variant["check"]
    quality = (f"max |diff| {check['max_abs_diff']:.2g}" if variant["exact"]
               else f"{check['psnr_to_float_db']:.1f} dB PSNR to the float student"
               + "".join(f", {k} {v:.4g} ({variant.get('metrics_split', 'test')} split)"
                         for k, v in variant.get("metrics", {}).items()))
    speed = ""
    if "latency_ms" in variant:
        spread = variant.get("speedup_p10_p90")
        how = (f"median of per-round ratios, p10-p90 {spread[0]:.2f}-{spread[1]:.2f}" if spread
               else "median of per-round ratios")
        if variant.get("ratio_of_medians") is not None:
            how += f"; ratio of the medians {variant['ratio_of_medians']:.2f}x"
        busy = ", machine busy (wide spread)" if variant.get("busy") else ""
        speed = (f"{variant['latency_ms']:.2f} ms, {variant['speedup_over_float']:.2f}x the float student's speed "
                 f"in ONNX Runtime ({how}{busy}); ")
    flag = "" if variant["usable"] else f"; OUTSIDE its tolerance ({variant['tolerance']})"
    return f"{name}: {variant['path']} ({speed}{quality}{flag})"
