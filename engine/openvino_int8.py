"""The student in INT8 for OpenVINO, quantised by OpenVINO's own tool (NNCF, post-training): the activation
ranges calibrated on the run's search-split images, and, with accuracy control, the layers whose quantisation
costs most of the run's metric on that split kept in f32 until the metric's relative worsening is at most the
run's ``export.int8_max_drop``.

Why not the QDQ model made for ONNX Runtime: OpenVINO ran that one no faster than f32 on a CPU with integer
dot-product instructions (the README sample: 5.16 against 5.22 ms), where NNCF's model, made for OpenVINO's
kernels, ran 1.97x faster than f32 (a CycleGAN student at 256 px, AVX-512 VNNI: benchmarks/export_speed.py).

The activations are quantised asymmetrically by default (NNCF's ``mixed`` preset): a generator's activations are
far from symmetric around 0, and on the shipped trained generators at 256 px that gave 35.9 and 36.4 dB PSNR to
the float output against 34.4 and 32.4 dB with symmetric ones (``performance``), at 2.6x and 3.2x the speed of
OpenVINO f32 against 3.2x and 3.6x (benchmarks/int8_quality.py)."""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Imported before NNCF: importing it declines OpenVINO's and NNCF's telemetry for this process.
import engine.openvino_runtime  # noqa: F401

#: NNCF's presets: activations asymmetric (``mixed``) or symmetric (``performance``); weights symmetric in both.
PRESETS = ("mixed", "performance")

MISSING = "NNCF is not installed in this environment (pip install nncf): OpenVINO's INT8 variant is skipped"


def available() -> bool:
    try:
        import nncf  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class AccuracyControl:
    """What accuracy-controlled quantisation keeps: the run's metric on held-out images."""

    metric: str
    higher_is_better: bool
    #: The metric of a model's outputs (N, C, H, W in [-1, 1]) on ``inputs``.
    score: Callable[[np.ndarray], float]
    #: The held-out inputs, one array per model input (in the model's input order).
    inputs: tuple[np.ndarray, ...]
    #: The largest relative worsening of the metric allowed (0.01: 1%).
    max_drop: float
    #: At most this many groups of layers tried in f32, each tried group costing one evaluation of the metric
    #: (and, where it made the metric worse, a new ranking of the rest): NNCF's own default has no limit, and
    #: on a metric that cannot be met (FID on a few images moves by more than 1% for any change) it tries every
    #: group, quadratic in the layers (a MUNIT export still trying after 15 minutes).
    max_iterations: int = 8
    #: Accuracy control stops once it has run this long (checked before each evaluation of the metric; None: no
    #: limit), and plain post-training quantisation is kept instead, said so: every group NNCF ranks is one
    #: compile of the model, and a network of many layers (GauGAN's) ranked them for more than 15 minutes.
    time_cap_s: float | None = 300.0
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)
    #: Whether the user asked the run to stop (checked before each evaluation): NNCF cannot be interrupted
    #: otherwise, and a stop asked during its ranking waited for the whole of it.
    stop_requested: Callable[[], bool] = field(default=lambda: False, compare=False, repr=False)


class _OutOfTime(Exception):
    """Accuracy control ran past ``AccuracyControl.time_cap_s``."""


class QuantisationStopped(Exception):
    """The user asked the run to stop while accuracy control was running: nothing was written."""


@dataclass(frozen=True)
class Int8Model:
    """What the quantisation wrote and how it was made."""

    path: Path
    method: str
    #: The metric on the held-out images, float model and INT8 model (accuracy control only).
    metric: str | None = None
    metric_float: float | None = None
    metric_int8: float | None = None
    #: Whether the INT8 metric is within the allowed drop of the float one (accuracy control only): not where
    #: every group was tried, or ``max_iterations`` were, before it held.
    within_drop: bool | None = None
    max_drop: float | None = None
    #: Accuracy control was stopped at its time cap (these seconds): the model is plain post-training quantisation.
    stopped_after_s: float | None = None

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"quantizer": self.method}
        if self.metric is not None:
            data["control"] = {"metric": self.metric, "float": self.metric_float, "int8": self.metric_int8,
                               "split": "search", "within_drop": self.within_drop, "max_drop": self.max_drop,
                               "stopped_after_s": self.stopped_after_s}
        return data


def relative_drop(before: float, after: float, higher_is_better: bool) -> float:
    """How much worse ``after`` is than ``before``, relative to ``before`` (0 where it is no worse)."""
    worse = (before - after) if higher_is_better else (after - before)
    return max(worse, 0.0) / max(abs(before), 1e-12)


def _items(arrays: tuple[np.ndarray, ...], names: tuple[str, ...]) -> list[dict[str, np.ndarray]]:
    """One feed per image: NNCF calibrates and validates image by image, as a deployment runs."""
    return [{name: array[i:i + 1] for name, array in zip(names, arrays)} for i in range(len(arrays[0]))]


def quantize(source: Path, target: Path, calibration: tuple[np.ndarray, ...], input_names: tuple[str, ...],
             control: AccuracyControl | None = None, threads: int | None = None, preset: str = "mixed") -> Int8Model:
    """The model at ``source`` (ONNX or IR) quantised to INT8 and written to ``target`` (``.xml`` + ``.bin``)."""
    from nncf.common.logging import nncf_logger

    from engine.openvino_runtime import read_model, save_ir

    nncf_logger.setLevel(logging.WARNING)  # its INFO lines are not this program's log
    model = read_model(source)
    with contextlib.redirect_stdout(io.StringIO()):  # nor its progress bars this program's progress
        quantized, result = _quantize(model, target, calibration, input_names, control, threads, preset)
    save_ir(quantized, target)
    return result


def _quantize(model, target: Path, calibration: tuple[np.ndarray, ...], input_names: tuple[str, ...],
              control: AccuracyControl | None, threads: int | None, preset: str):
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    from engine.openvino_runtime import compile_model_object, first_outputs

    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, not {preset!r}")
    kind = nncf.QuantizationPreset.MIXED if preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE
    activations = "asymmetric" if preset == "mixed" else "symmetric"

    calibrate = nncf.Dataset(_items(calibration, input_names))
    count = len(calibration[0])
    plain = f"{activations} activations, ranges from {count} search-split images"
    if control is None:
        quantized = nncf.quantize(model, calibrate, subset_size=count, preset=kind)
        return quantized, Int8Model(target, f"NNCF post-training quantisation, {plain}")
    held_out = _items(control.inputs, input_names)
    started = control.clock()

    def validate(compiled, items) -> float:
        if control.stop_requested():
            raise QuantisationStopped("stopped during INT8 accuracy control, as asked")
        if control.time_cap_s is not None and control.clock() - started > control.time_cap_s:
            raise _OutOfTime
        value = float(control.score(first_outputs(compiled, list(items))))
        # NNCF takes a larger value for better; a lower-is-better metric (FID) is given negated, so that
        # its relative drop is the metric's relative rise.
        return value if control.higher_is_better else -value

    stopped = None
    try:
        quantized = nncf.quantize_with_accuracy_control(
            model, calibrate, nncf.Dataset(held_out), validate, max_drop=control.max_drop,
            drop_type=nncf.DropType.RELATIVE, subset_size=count, preset=kind,
            advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
                max_num_iterations=control.max_iterations))
        method = (f"NNCF with accuracy control: {control.metric} on {len(held_out)} search-split images may worsen "
                  f"by {100 * control.max_drop:g}% at most (at most {control.max_iterations} groups of layers "
                  f"tried in f32); {plain}")
    except _OutOfTime:
        stopped = control.time_cap_s
        quantized = nncf.quantize(model, calibrate, subset_size=count, preset=kind)
        method = (f"NNCF post-training quantisation: accuracy control stopped at its time cap of {stopped:g} s "
                  f"(export.int8_time_cap_s) before {control.metric} was brought within "
                  f"{100 * control.max_drop:g}%; {plain}")
    before = float(control.score(first_outputs(compile_model_object(model, threads), held_out)))
    after = float(control.score(first_outputs(compile_model_object(quantized, threads), held_out)))
    # A rounding's margin: NNCF's own test of the drop is on the same two numbers.
    within = relative_drop(before, after, control.higher_is_better) <= control.max_drop + 1e-9
    return quantized, Int8Model(target, method, control.metric, before, after, within, control.max_drop, stopped)
