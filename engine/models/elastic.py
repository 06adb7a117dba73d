"""Elastic layers: run a layer built at its largest width with only its first k channels.

A supernet keeps one set of weights at the largest widths; a sub-network of width k uses the first k
filters of each layer (weight sharing, as in the paper's once-for-all training). ``extract_subnet``
copies those first-k slices into an ordinary module with the sub-network's own shapes.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from engine.arch import Arch
from engine.errors import ConfigError


def conv2d(conv: nn.Conv2d, x: torch.Tensor, out_channels: int | None = None) -> torch.Tensor:
    """A convolution on the first ``x.shape[1]`` inputs producing the first ``out_channels`` outputs.
    A depthwise convolution (groups == its channels) keeps one filter per input channel. At the layer's own
    widths it is the layer itself (so a plain network traces and exports without slices)."""
    c_in = int(x.shape[1])
    if c_in == conv.in_channels and out_channels in (None, conv.out_channels):
        return conv(x)
    if conv.groups == conv.in_channels and conv.groups > 1:
        weight, groups, c_out = conv.weight[:c_in], c_in, c_in
    else:
        if conv.groups != 1:
            raise ValueError("elastic convolutions support groups=1 or depthwise only")
        c_out = conv.out_channels if out_channels is None else out_channels
        weight, groups = conv.weight[:c_out, :c_in], 1
    bias = conv.bias[:c_out] if conv.bias is not None else None
    if conv.padding_mode != "zeros":
        raise ValueError("elastic convolutions expect explicit padding layers")
    return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, groups)


def conv_transpose2d(conv: nn.ConvTranspose2d, x: torch.Tensor, out_channels: int | None = None) -> torch.Tensor:
    if conv.groups != 1:
        raise ValueError("elastic transposed convolutions support groups=1 only")
    c_in = x.shape[1]
    c_out = conv.out_channels if out_channels is None else out_channels
    weight = conv.weight[:c_in, :c_out]
    bias = conv.bias[:c_out] if conv.bias is not None else None
    return F.conv_transpose2d(x, weight, bias, conv.stride, conv.padding, conv.output_padding, 1, conv.dilation)


def instance_norm(norm: nn.InstanceNorm2d, x: torch.Tensor) -> torch.Tensor:
    if norm.track_running_stats:
        raise ValueError("elastic instance norms must not track running statistics")
    c = int(x.shape[1])
    if c == norm.num_features:
        return norm(x)
    weight = norm.weight[:c] if norm.affine else None
    bias = norm.bias[:c] if norm.affine else None
    return F.instance_norm(x, weight=weight, bias=bias, eps=norm.eps)


def batch_norm(norm: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """A batch norm on the first ``x.shape[1]`` channels. In training its running statistics' first channels
    move with this sub-network's batches (in place), so they fit whichever sub-network ran last: a
    sub-network's statistics are re-estimated (``calibrate_batchnorm``) before it is scored or exported."""
    from engine.distributed import SyncedBatchNorm, batch_norm_over_ranks, ranks_active

    c = int(x.shape[1])
    if c == norm.num_features:
        return norm(x)
    weight = norm.weight[:c] if norm.affine else None
    bias = norm.bias[:c] if norm.affine else None
    tracked = norm.track_running_stats and norm.running_mean is not None
    running_mean = norm.running_mean[:c] if tracked else None
    running_var = norm.running_var[:c] if tracked else None
    if isinstance(norm, SyncedBatchNorm) and norm.training and ranks_active():
        return batch_norm_over_ranks(x, running_mean, running_var, norm.num_batches_tracked if tracked else None,
                                     norm.momentum, norm.eps, weight, bias)
    momentum = norm.momentum
    if norm.training and tracked:
        norm.num_batches_tracked.add_(1)
        if momentum is None:  # a cumulative average, as nn.BatchNorm2d
            momentum = 1.0 / float(norm.num_batches_tracked)
    use_batch_statistics = norm.training or not tracked
    return F.batch_norm(x, running_mean, running_var, weight, bias, use_batch_statistics, momentum or 0.0, norm.eps)


def run(layer: nn.Module, x: torch.Tensor, out_channels: int | None = None) -> torch.Tensor:
    """Run any layer elastically: width-bearing layers are sliced, the others run as they are."""
    if isinstance(layer, nn.Conv2d):
        return conv2d(layer, x, out_channels)
    if isinstance(layer, nn.ConvTranspose2d):
        return conv_transpose2d(layer, x, out_channels)
    if isinstance(layer, nn.InstanceNorm2d):
        return instance_norm(layer, x)
    if isinstance(layer, nn.BatchNorm2d):
        return batch_norm(layer, x)
    if isinstance(layer, nn.Sequential):
        for child in layer:
            x = run(child, x, out_channels)
        return x
    return layer(x)


def fitting_arch(arch, largest: Arch) -> Arch:
    """``arch`` (an Arch, its string or values; None: ``largest``) checked to fit in a supernet built at the
    widths ``largest``: as many positions, none wider."""
    arch = largest if arch is None else Arch.parse(arch, len(largest))
    if not arch.fits_in(largest):
        raise ConfigError(f"arch {arch} does not fit in this supernet (largest widths {largest})")
    return arch


class Supernet(Protocol):
    def make_subnet(self, arch) -> nn.Module:
        """An ordinary module of the sub-network's shapes whose parameter names match the supernet's."""


@torch.no_grad()
def extract_subnet(supernet: Supernet, arch) -> nn.Module:
    """A plain, exportable module with the supernet's shared weights (first-k slices) copied in."""
    subnet = supernet.make_subnet(arch)
    source = supernet.state_dict()  # type: ignore[attr-defined]
    target = subnet.state_dict()
    for name, tensor in target.items():
        if name not in source:
            raise KeyError(f"the supernet has no parameter {name!r}")
        full = source[name]
        if full.dim() != tensor.dim() or any(s > f for s, f in zip(tensor.shape, full.shape)):
            raise ValueError(f"{name}: sub-network shape {tuple(tensor.shape)} exceeds the supernet's {tuple(full.shape)}")
        tensor.copy_(full[tuple(slice(0, s) for s in tensor.shape)])
    subnet.load_state_dict(target, strict=True)
    reference = next(iter(source.values()), None)
    if reference is not None:
        subnet.to(reference.device)
    return subnet.train(supernet.training)  # type: ignore[attr-defined]


def subnet_of(supernet: Supernet, arch) -> nn.Module:
    """The plain sub-network ``arch`` of a supernet: its own ``extract`` where a supernet keeps some weights other
    than as first-k slices (MUNIT's style MLP), ``extract_subnet`` otherwise."""
    own = getattr(supernet, "extract", None)
    return own(arch) if callable(own) else extract_subnet(supernet, arch)


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, forward, batches, every_batch_replaces: bool = False) -> int:
    """Re-estimate the running statistics of every BatchNorm in ``model`` by running ``forward`` on each
    batch in training mode: the first batch replaces the statistics (momentum 1), the others move them with the
    layer's own momentum, so every batch counts. With ``every_batch_replaces`` each batch replaces them (momentum
    1 throughout) and the last batch's statistics are kept: what the reference's ``calibrate`` does in effect,
    as its calibration flag is never reset after the first batch. Returns the number of batches."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m.track_running_stats]
    momenta = [m.momentum for m in norms]
    was_training = model.training
    model.train()
    count = 0
    try:
        for count, batch in enumerate(batches, start=1):
            for norm, momentum in zip(norms, momenta):
                norm.momentum = 1.0 if count == 1 or every_batch_replaces else momentum
            forward(batch)
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.train(was_training)
    return count
