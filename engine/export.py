"""Export to ONNX, the parity check against PyTorch in ONNX Runtime, latency of the exported file, and
the model card written beside it."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.errors import UserError
from engine.profile import Inputs, as_inputs, measure_latency_ms, torch_latency_ms

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


def export_onnx(model: nn.Module, path: Path, example: Inputs, input_names: tuple[str, ...] = ("input",),
                output_names: tuple[str, ...] = ("output",)) -> Path:
    """Write ``model`` as ONNX with a dynamic batch dimension on every input and output (the family's
    export signature names them)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings():
        # The TorchScript-based exporter warns about its deprecation and about constant folding of
        # slices; the parity check below is what tells whether the file is right.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(t.cpu() for t in as_inputs(example)), str(tmp),
                          input_names=list(input_names), output_names=list(output_names),
                          dynamic_axes={name: {0: "batch"} for name in (*input_names, *output_names)},
                          opset_version=OPSET, dynamo=False)
    tmp.replace(path)
    return path


def onnx_session(path: Path, threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
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


def cpu_latency_ms(model: nn.Module, onnx_path: Path, example: Inputs, threads: int | None = None,
                   input_names: tuple[str, ...] = ("input",)) -> dict[str, float]:
    """The model's CPU latency in PyTorch (eager) and of its ONNX file in ONNX Runtime."""
    return {"pytorch": torch_latency_ms(model, example),
            "onnxruntime": onnx_latency_ms(onnx_path, example, threads, input_names)}


def onnx_latency_ms(path: Path, example: Inputs, threads: int | None = None,
                    input_names: tuple[str, ...] = ("input",), **kwargs) -> float:
    session = onnx_session(path, threads)
    feed = _feed(example, input_names)
    return measure_latency_ms(lambda: session.run(None, feed), device="cpu", **kwargs)


def write_model_card(path: Path, card: dict[str, Any]) -> Path:
    path.write_text(json.dumps(card, indent=1, default=str))
    return path
