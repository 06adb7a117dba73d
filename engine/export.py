"""Export to ONNX, the parity check against PyTorch in ONNX Runtime, latency of the exported file, and
the model card written beside it."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.errors import UserError
from engine.files import write_atomic
from engine.latency import BUSY_SPREAD, LatencyReading, measure
from engine.onnx_variants import EXACT
from engine.profile import Inputs, as_inputs

OPSET = 17
PARITY_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Parity:
    max_abs_diff: float
    images: int

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= PARITY_TOLERANCE


def _feed(inputs: Inputs, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {name: t.detach().cpu().numpy().astype(np.float32) for name, t in zip(names, as_inputs(inputs))}


def write_onnx(model: nn.Module, example: tuple[torch.Tensor, ...], target: Path | io.BytesIO,
               input_names: tuple[str, ...], output_names: tuple[str, ...] = ("output",),
               axes: dict[str, dict[int, str]] | None = None) -> None:
    """``model`` (in eval mode, on the CPU) traced on ``example`` and written as ONNX to ``target`` (a file, or a
    buffer in memory): every input's and output's batch dimension free, and ``axes`` (by name: dimension ->
    label) free besides."""
    free = {name: {0: "batch", **(axes or {}).get(name, {})} for name in (*input_names, *output_names)}
    with warnings.catch_warnings():
        # The TorchScript-based exporter warns about its deprecation and about constant folding of slices; a
        # parity check against PyTorch is what tells whether the graph is right.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(t.cpu() for t in example), target if isinstance(target, io.BytesIO)
                          else str(target), input_names=list(input_names), output_names=list(output_names),
                          dynamic_axes=free, opset_version=OPSET, dynamo=False)


def export_onnx(model: nn.Module, path: Path, example: Inputs, input_names: tuple[str, ...] = ("input",),
                output_names: tuple[str, ...] = ("output",)) -> Path:
    """Write ``model`` as ONNX with a dynamic batch dimension on every input and output (the family's
    export signature names them); the parity check below tells whether the file is right."""
    model = model.eval().cpu()
    return write_atomic(path, lambda tmp: write_onnx(model, as_inputs(example), tmp, input_names, output_names))


def onnx_session(path: Path, threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    # By default ONNX Runtime's threads spin-wait after each run; on a machine with few cores the spinning takes the
    # CPU from whatever runs next, a model of another backend in the protocol's interleaved rounds as much as the
    # application's own work: measured on 2 cores, the released student took 96 ms in ONNX Runtime with spinning
    # and 63 ms without, and OpenVINO's run after it 52 ms against 39 (benchmarks/export_speed.py).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_parity(model: nn.Module, path: Path, inputs: Inputs, threads: int | None = None,
                 input_names: tuple[str, ...] = ("input",)) -> Parity:
    """Run the ONNX file in ONNX Runtime on real inputs and compare with PyTorch (max |difference|)."""
    session = onnx_session(path, threads)
    inputs = as_inputs(inputs)
    with torch.no_grad():
        expected = model.eval().cpu()(*(t.cpu() for t in inputs)).numpy()
    got = session.run(None, _feed(inputs, input_names))[0]
    return Parity(float(np.abs(got - expected).max()), len(inputs[0]))


def export_checked(model: nn.Module, path: Path, inputs: Inputs, threads: int | None = None,
                   input_names: tuple[str, ...] = ("input",), output_names: tuple[str, ...] = ("output",)
                   ) -> tuple[Path, Parity]:
    """Export, then run the file in ONNX Runtime on ``inputs``; above the tolerance it is an error (the file
    stays for inspection)."""
    inputs = as_inputs(inputs)
    path = export_onnx(model, path, tuple(t[:1] for t in inputs), input_names, output_names)
    parity = check_parity(model, path, inputs, threads, input_names)
    if not parity.ok:
        raise UserError(f"the ONNX export differs from PyTorch by {parity.max_abs_diff:.3g} (more than "
                        f"{PARITY_TOLERANCE}) on {parity.images} images; the file is kept at {path} for inspection")
    return path, parity


BACKENDS = ("pytorch", "onnxruntime", "openvino")
#: PyTorch with ``torch.compile`` (inductor): an option of the protocol where compiling once pays (the export's
#: readings, ``export: {torch_compile: true}``), not a choice of the compare view, where every candidate would
#: compile anew for minutes.
COMPILED = "pytorch-compiled"


def backend_unavailable(backend: str) -> str | None:
    """Why ``backend`` cannot be timed on this machine, in one line, or None."""
    if backend == "openvino":
        from engine import openvino_runtime

        return None if openvino_runtime.available() else openvino_runtime.MISSING
    return None


class KeptCompiled:
    """Compiled models kept from one measurement to the next, for the files ``paths`` that do not change between
    them (a search's reference network, timed beside every candidate on the same input): compiling it was a
    quarter of a candidate's measurement (about 0.2 of 0.85 s in OpenVINO)."""

    def __init__(self, *paths: Path) -> None:
        self.paths = {Path(p) for p in paths}
        self.compiled: dict[Path, Any] = {}

    def get(self, path: Path, make: Callable[[], Any]) -> Any:
        """The compiled model of ``path``: kept where it is one of ``paths``, made anew otherwise."""
        path = Path(path)
        if path not in self.paths:
            return make()
        if path not in self.compiled:
            self.compiled[path] = make()
        return self.compiled[path]


def measure_models(models: dict[str, nn.Module], example: Inputs, backend: str, *,
                   onnx_paths: dict[str, Path] | None = None, device: str | torch.device = "cpu",
                   threads: int | None = None, input_names: tuple[str, ...] = ("input",),
                   kept: KeptCompiled | None = None, **protocol: Any) -> LatencyReading:
    """Latency of ``models`` (e.g. teacher and student) with one backend, measured together with the one
    protocol (``engine.latency``): interleaved rounds, medians with spread, per-round ratios."""
    inputs = as_inputs(example)
    if backend in ("pytorch", COMPILED):
        device = torch.device(device)
        on_device = tuple(t.to(device) for t in inputs)
        nets = {name: net.eval().to(device) for name, net in models.items()}
        if backend == COMPILED:
            # Compiled on the first (warm-up) run; the models themselves stay as they are.
            nets = {name: torch.compile(net) for name, net in nets.items()}

        def runner(net: nn.Module):
            def run_once() -> None:
                with torch.inference_mode():
                    net(*on_device)
            return run_once

        return measure({name: runner(net) for name, net in nets.items()}, device=device, backend=backend,
                       **_conditions(inputs), **protocol)
    if backend not in BACKENDS:
        raise UserError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    missing = backend_unavailable(backend)
    if missing:
        raise UserError(missing)
    if str(device) != "cpu":
        raise UserError(f"{backend} latency is measured on the CPU here (choose the CPU, or the PyTorch backend for "
                        f"{device})")
    paths = {name: onnx_paths[name] for name in models}  # type: ignore[index]
    if backend == "openvino":
        return measure_openvino(paths, example, threads=threads, input_names=input_names, kept=kept, **protocol)
    return measure_onnx(paths, example, threads=threads, input_names=input_names, kept=kept, **protocol)


def measure_onnx(paths: dict[str, Path], example: Inputs, *, threads: int | None = None,
                 input_names: tuple[str, ...] = ("input",), kept: KeptCompiled | None = None,
                 **protocol: Any) -> LatencyReading:
    """Latency of ONNX files in ONNX Runtime on the CPU, measured together (e.g. a teacher, the student and
    the student's optimised and INT8 variants)."""
    inputs = as_inputs(example)
    feed = _feed(inputs, input_names)
    kept = kept or KeptCompiled()
    sessions = {name: kept.get(path, lambda p=path: onnx_session(p, threads)) for name, path in paths.items()}
    reading = measure({name: (lambda s=session: s.run(None, feed)) for name, session in sessions.items()},
                      device="cpu", backend="onnxruntime", **_conditions(inputs), **protocol)
    threads_used = threads or sessions[next(iter(sessions))].get_session_options().intra_op_num_threads
    return replace(reading, threads=threads_used or reading.threads)


def measure_openvino(paths: dict[str, Path], example: Inputs, *, threads: int | None = None,
                     input_names: tuple[str, ...] = ("input",), precision: str = "f32",
                     kept: KeptCompiled | None = None, **protocol: Any) -> LatencyReading:
    """Latency of models (ONNX or OpenVINO IR files) in OpenVINO on the CPU, measured together, all compiled with
    one precision hint."""
    from engine.openvino_runtime import Runner

    inputs = as_inputs(example)
    feed = _feed(inputs, input_names)
    # A kept runner holds the feed it was made with: ``kept`` serves measurements of one input.
    kept = kept or KeptCompiled()
    runners = {name: kept.get(path, lambda p=path: Runner(p, feed, threads, precision)) for name, path in paths.items()}
    reading = measure(dict(runners), device="cpu", backend="openvino", **_conditions(inputs),
                      threads=next(iter(runners.values())).threads, **protocol)
    return replace(reading, precision=precision)


def _conditions(inputs: tuple[torch.Tensor, ...]) -> dict[str, Any]:
    """The batch and (height, width) a reading reports, from the first input."""
    height, width = inputs[0].shape[-2:]
    return {"batch": int(inputs[0].shape[0]), "size": (int(height), int(width))}


def measure_teacher_and_student(teacher: nn.Module, student: nn.Module, teacher_onnx: Path, student_onnx: Path,
                                example: Inputs, *, variants: dict[str, dict[str, Any]] | None = None,
                                threads: int | None = None, input_names: tuple[str, ...] = ("input",),
                                compiled: bool = False, **protocol: Any) -> dict[str, LatencyReading]:
    """Teacher and student in each backend: PyTorch, then every exported file in one interleaved measurement (the
    teacher and student in ONNX Runtime, the student's variants, and the teacher and student in OpenVINO where
    the ``openvino`` variant was built), read per backend. Each variant gets its ``latency_ms`` and
    ``speedup_over_float`` over the float ``student.onnx`` in ONNX Runtime, from the same rounds. With
    ``compiled``, PyTorch with ``torch.compile`` too."""
    variants = variants or {}
    threads = threads or torch.get_num_threads()
    inputs = as_inputs(example)
    feed = _feed(inputs, input_names)

    def in_onnxruntime(path: Path):
        session = onnx_session(path, threads)
        return lambda: session.run(None, feed)

    def in_openvino(path: Path, precision: str = "f32"):
        from engine.openvino_runtime import Runner

        return Runner(path, feed, threads, precision)

    runners = {"teacher": in_onnxruntime(teacher_onnx), "student": in_onnxruntime(student_onnx)}
    for name, variant in variants.items():
        runners[name] = (in_openvino(Path(variant["path"]), variant.get("precision_hint", "f32"))
                         if variant["backend"] == "openvino" else in_onnxruntime(Path(variant["path"])))
    pairs = [("teacher", "student"), *(("student", name) for name in variants)]
    # Each reduced-precision variant also against the exact model of its own backend (OpenVINO f32 for OpenVINO's
    # bf16 and int8, student.onnx for ONNX Runtime's int8): a "faster variant" slower than it is said to be.
    exacts = {name: exact for name in variants if (exact := exact_of(name, variants)) is not None}
    pairs += [(exact, name) for name, exact in exacts.items() if exact != "student"]  # student/name: timed above
    if "openvino" in variants:
        runners["openvino teacher"] = in_openvino(teacher_onnx)
        pairs.append(("openvino teacher", "openvino"))
    files = measure(runners, device="cpu", backend="onnx files", threads=threads, **_conditions(inputs), pairs=pairs,
                    **protocol)
    onnxruntime = {"teacher": "teacher", "student": "student",
                   **{name: name for name, v in variants.items() if v["backend"] == "onnxruntime"}}
    readings = {
        "pytorch": measure_models({"teacher": teacher, "student": student}, example, "pytorch", threads=threads,
                                  **protocol),
        "onnxruntime": files.select(onnxruntime, "onnxruntime")}
    if compiled:
        readings[COMPILED] = measure_models({"teacher": teacher, "student": student}, example, COMPILED,
                                            threads=threads, **protocol)
    if "openvino" in variants:
        readings["openvino"] = files.select({"teacher": "openvino teacher", "student": "openvino"}, "openvino")
    _add_variant_speeds(variants, files, exacts)
    return readings


def _add_variant_speeds(variants: dict[str, dict[str, Any]], files: LatencyReading, exacts: dict[str, str]) -> None:
    """Each variant's latency and speed-ups over the float student and over its backend's exact model, from the
    rounds that timed them together."""
    for name, variant in variants.items():
        ratio = files.ratios[f"student/{name}"]
        variant["latency_ms"] = files.timings[name].median_ms
        # The median of the per-round ratios (each round times both back to back): it can differ from the ratio
        # of the two medians, most when the machine was busy; both are kept so that a reader can tell.
        variant["speedup_over_float"] = ratio.median_ms
        variant["speedup_p10_p90"] = [ratio.p10_ms, ratio.p90_ms]
        variant["ratio_of_medians"] = files.timings["student"].median_ms / files.timings[name].median_ms
        variant["busy"] = files.timings[name].spread > BUSY_SPREAD or files.timings["student"].spread > BUSY_SPREAD
        if (exact := exacts.get(name)) is not None:
            over = files.ratios[f"{exact}/{name}"]
            variant["speedup_over_exact"] = over.median_ms
            variant["exact_reference"] = "student.onnx" if exact == "student" else exact
            # Slower where even its best rounds (p90 of the ratio) are below 1: not recommended on this machine.
            variant["slower_than_exact"] = over.p90_ms < 1.0


def exact_of(name: str, variants: dict[str, dict[str, Any]]) -> str | None:
    """The runner of the exact model a reduced-precision variant is judged against on this machine: the OpenVINO
    f32 variant for OpenVINO's reduced precisions, the float student.onnx in ONNX Runtime for the rest (None: an
    exact variant itself, or no such model was built)."""
    if name in EXACT:
        return None
    if variants[name].get("backend") == "openvino":
        return "openvino" if "openvino" in variants else None
    return "student"
