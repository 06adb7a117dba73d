"""MACs and parameters of a network, counted the way the GAN Compression paper counts them.

fvcore traces the network; a few of its op handles are replaced so the figures compare with the paper's
table (torchprofile 0.0.1's convention): a convolution costs output elements x C_in/groups x k^2, a
*transposed* convolution the same per output element (fvcore counts it per input element), an instance
or layer norm 1 per output element (fvcore: about 5), a batch norm 0. Additions, activations and
padding cost 0.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from engine.errors import ConfigError


@dataclass(frozen=True)
class ModelProfile:
    macs: int
    params: int

    def as_dict(self) -> dict[str, int]:
        return {"macs": self.macs, "params": self.params}


def _shape(value: Any) -> list[int]:
    return value.type().sizes()


def _convolution_macs(inputs: list[Any], outputs: list[Any]) -> int:
    weight = _shape(inputs[1])
    out = _shape(outputs[0])
    transposed = bool(inputs[6].toIValue())
    groups = int(inputs[8].toIValue())
    kernel = math.prod(weight[2:])
    # Conv weight: [C_out, C_in/groups, k, k]; transposed conv weight: [C_in, C_out/groups, k, k].
    per_output = (weight[0] // groups if transposed else weight[1]) * kernel
    return math.prod(out) * per_output


def _per_output_element(inputs: list[Any], outputs: list[Any]) -> int:
    return math.prod(_shape(outputs[0]))


def _free(inputs: list[Any], outputs: list[Any]) -> int:
    return 0


_HANDLES = {
    "aten::_convolution": _convolution_macs,
    "aten::instance_norm": _per_output_element,
    "aten::layer_norm": _per_output_element,
    "aten::group_norm": _per_output_element,
    "aten::batch_norm": _free,
}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass on ``inputs`` (batch size included)."""
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            # fvcore scripts helpers on import and traces the model: both warn about TorchScript's
            # deprecation, and tracing about data-dependent branches; none of it changes the count.
            warnings.simplefilter("ignore")
            from fvcore.nn import FlopCountAnalysis  # deferred: importing fvcore costs a second

            analysis = FlopCountAnalysis(model, inputs if len(inputs) != 1 else inputs[0])
            analysis.set_op_handle(**_HANDLES)
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            analysis.tracer_warnings("none")
            return int(analysis.total())
    finally:
        model.train(was_training)


Inputs = torch.Tensor | tuple[torch.Tensor, ...]


def as_inputs(inputs: Inputs) -> tuple[torch.Tensor, ...]:
    """A model's inputs as a tuple (one tensor, or the family's several: ``Family.example_inputs``)."""
    return inputs if isinstance(inputs, tuple) else (inputs,)


def profile_model(model: nn.Module, inputs: Inputs) -> ModelProfile:
    """MACs (batch of the given example inputs, usually 1) and parameters."""
    device = next(model.parameters()).device
    return ModelProfile(macs=count_macs(model, *(t.to(device) for t in as_inputs(inputs))), params=count_params(model))


#: Peak memory of a traced forward pass over its largest activation (measured: the ResNet teacher at
#: 1024x1024 peaks at 1.27 GB with a largest activation of 256 MB).
TRACE_MEMORY_FACTOR = 5


@torch.no_grad()
def largest_activation_bytes(model: nn.Module, inputs: Inputs) -> int:
    """Bytes of the largest output of any leaf module in one forward pass."""
    largest = 0

    def count(_module, _inputs, output) -> None:
        nonlocal largest
        for tensor in (output if isinstance(output, (tuple, list)) else (output,)):
            if isinstance(tensor, torch.Tensor):
                largest = max(largest, tensor.numel() * tensor.element_size())

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    was_training = model.training
    try:
        model.eval()(*as_inputs(inputs))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return largest


def physical_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not on this platform
        return None


def check_fits_in_memory(model: nn.Module, example_inputs: Callable[[tuple[int, int]], Inputs],
                         size: tuple[int, int], what: str, share: float = 0.5, multiple: int = 4) -> None:
    """Refuse, before allocating anything of that size, to profile at a size whose tracing would take more
    than ``share`` of this machine's memory. Activations grow with the image area, so they are measured
    at a small size of the same shape (sides multiples of ``multiple``, as the model needs) and scaled."""
    memory = physical_memory_bytes()
    if memory is None:
        return
    height, width = size
    scale = min(1.0, 64 / max(height, width))
    probe = tuple(max(16, 2 * multiple, int(round(side * scale / multiple)) * multiple) for side in size)
    area = (height * width) / (probe[0] * probe[1])
    needed = TRACE_MEMORY_FACTOR * largest_activation_bytes(model, example_inputs(probe)) * area
    if needed > share * memory:
        raise ConfigError(f"profiling {what} at {width}x{height} would need about {needed / 2**30:.0f} GiB of memory "
                          f"(this machine has {memory / 2**30:.0f} GiB); choose a smaller --image-size: MACs grow "
                          "with the image area, so four times the pixels is four times the MACs")


#: Bytes per parameter of a training: the float32 weight, its gradient and Adam's two moments.
TRAINING_BYTES_PER_PARAMETER = 16


def check_parameters_fit(build: Callable[[], nn.Module], what: str, fix: str, training: bool = True,
                         share: float = 0.5) -> None:
    """Refuse, before a single weight is allocated, a network whose weights (with their gradients and
    optimiser state when ``training``) would take more than ``share`` of this machine's memory: it is built on
    the meta device, where parameters have shapes and no storage. ``fix`` names the options to change."""
    memory = physical_memory_bytes()
    if memory is None:
        return
    with torch.device("meta"):
        model = build()
    needed = count_params(model) * (TRAINING_BYTES_PER_PARAMETER if training else 4)
    if needed > share * memory:
        raise ConfigError(f"{what} has {count_params(model) / 1e9:,.1f} billion parameters: "
                          f"{'training it' if training else 'its weights'} would need about {needed / 2**30:,.0f} GiB "
                          f"of memory (this machine has {memory / 2**30:.0f} GiB); {fix}")
