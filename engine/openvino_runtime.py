"""OpenVINO, the CPU runtime the exported students are deployed with where speed matters most: it reads the
exported ONNX file directly, and the export writes its own model format (IR: ``.xml`` + ``.bin``) beside it.

On this project's reference CPU OpenVINO runs the released CycleGAN student about twice as fast as ONNX Runtime
does (``benchmarks/export_speed.py``), so it is a backend of the one latency protocol like the others.
A reduced precision is a *hint* given when a model is compiled (``bf16`` where the CPU has the instructions;
OpenVINO keeps f32 where it does not), not a different file; an INT8 model is quantised for OpenVINO by NNCF
(``engine.openvino_int8``), which OpenVINO runs with integer kernels.

Without OpenVINO installed every caller gets :data:`MISSING` (one line), never a traceback."""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import UserError
from engine.files import disk_error

MISSING = ("OpenVINO is not installed in this environment (pip install openvino): its export and "
           "latency are skipped")
PRECISIONS = ("f32", "bf16")

_lock = threading.Lock()


def no_telemetry() -> None:
    """OpenVINO's converter and NNCF send usage statistics unless the user opted out (openvino-telemetry), from
    processes forked off a thread: where there is no network they never finish, and a run's process hung at its
    exit waiting for them (seen on a gaugan-sample run; pytest hides it, NNCF stubs its telemetry under pytest).
    This program sends nothing anywhere: every consent check of this process answers declined. Called before
    OpenVINO or NNCF is imported (this module's import does it)."""
    try:
        from openvino_telemetry.utils import opt_in_checker
    except ImportError:
        return
    declined = opt_in_checker.ConsentCheckResult.DECLINED
    opt_in_checker.OptInChecker.check = lambda self, *args, **kwargs: declined


no_telemetry()


def available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def version() -> str | None:
    try:
        import openvino
    except ImportError:
        return None
    return openvino.__version__.split("-")[0]


def require() -> None:
    """Raise the one-line :data:`MISSING` as a user error where OpenVINO is needed and absent."""
    if not available():
        raise UserError(MISSING)


@lru_cache(maxsize=1)
def _core():
    import openvino as ov

    return ov.Core()


def bf16_supported() -> bool:
    """The CPU has bf16 instructions OpenVINO uses (AVX512-BF16 or AMX); elsewhere a bf16 hint runs f32."""
    if not available():
        return False
    with _lock:
        return "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def read_model(path: Path) -> Any:
    """The model at ``path`` (ONNX or IR) as an ``openvino.Model``."""
    require()
    with _lock:
        return _core().read_model(str(path))


def read_model_bytes(onnx: bytes) -> Any:
    """An ONNX model held in memory (its weights inside) as an ``openvino.Model``: no file written."""
    require()
    with _lock:
        return _core().read_model(onnx, b"")


def write_ir(onnx_path: Path, xml_path: Path) -> Path:
    """The ONNX model in OpenVINO's own format (``xml_path`` and the ``.bin`` beside it), weights kept in f32 so
    that the file is exact."""
    return save_ir(read_model(onnx_path), xml_path)


def save_ir(model: Any, xml_path: Path) -> Path:
    """An ``openvino.Model`` written to ``xml_path`` and the ``.bin`` beside it (weights as they are: f32 stays
    f32), under temporary names first so a failure never leaves half a model."""
    require()
    import openvino as ov

    xml_path = Path(xml_path)
    tmp = xml_path.with_name(xml_path.stem + ".tmp.xml")
    try:
        ov.save_model(model, str(tmp), compress_to_fp16=False)
        os.replace(tmp.with_suffix(".bin"), xml_path.with_suffix(".bin"))
        os.replace(tmp, xml_path)
    except OSError as exc:
        raise disk_error(exc, xml_path) from None
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(".bin").unlink(missing_ok=True)
    return xml_path


def compile_model(path: Path, threads: int | None = None, precision: str = "f32"):
    """A model (ONNX or IR) compiled for the CPU for one-image latency, with ``threads`` inference threads and a
    precision hint (:data:`PRECISIONS`)."""
    require()
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return _compile(str(path), threads, precision)


def compile_model_object(model: Any, threads: int | None = None, hint: str = "LATENCY"):
    """An ``openvino.Model`` made in memory (``openvino.convert_model`` of a PyTorch module) compiled for the
    CPU in f32, as :func:`compile_model` compiles a file; ``hint`` ``THROUGHPUT`` for many images at once
    (several streams, each request on its own)."""
    require()
    return _compile(model, threads, "f32", hint)


def _compile(model: Any, threads: int | None, precision: str, hint: str = "LATENCY"):
    import torch

    config: dict[str, Any] = {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": precision,
                              "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads())}
    with _lock:
        return _core().compile_model(model, "CPU", config)


class Runner:
    """One compiled model and one inference request on a fixed feed: calling it runs the model once."""

    def __init__(self, path: Path, feed: dict[str, np.ndarray], threads: int | None = None,
                 precision: str = "f32") -> None:
        self.compiled = compile_model(path, threads, precision)
        self.request = self.compiled.create_infer_request()
        self.feed = feed
        self.threads = int(self.compiled.get_property("INFERENCE_NUM_THREADS"))

    def __call__(self) -> np.ndarray:
        return self.request.infer(self.feed)[self.compiled.output(0)]


def infer(path: Path, feed: dict[str, np.ndarray], threads: int | None = None, precision: str = "f32") -> np.ndarray:
    """The first output of the model at ``path`` on ``feed`` (inputs by name)."""
    # A copy: the request's output buffer is reused by its next run.
    return np.array(Runner(path, feed, threads, precision)(), copy=True)


def first_outputs(compiled: Any, feeds: list[dict[Any, np.ndarray]]) -> np.ndarray:
    """The first output of a compiled model on each of ``feeds`` (inputs by name or index), concatenated."""
    output = compiled.output(0)
    # Copies: the request's output buffer is reused by its next run.
    return np.concatenate([np.array(compiled(feed)[output], copy=True) for feed in feeds])
