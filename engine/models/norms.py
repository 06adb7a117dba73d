"""Normalisation layers as pytorch-CycleGAN-and-pix2pix builds them (so that their checkpoints load)."""

import functools
from collections.abc import Callable

from torch import nn

from engine.errors import ConfigError

NORMS = ("instance", "batch", "none")


class Identity(nn.Module):
    def forward(self, x):
        return x


def norm_layer(name: str) -> Callable[[int], nn.Module]:
    if name == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if name == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if name == "none":
        return lambda channels: Identity()
    raise ConfigError(f"norm must be one of {', '.join(NORMS)}, not {name!r}")


def uses_bias(norm: str) -> bool:
    """Convolutions before a BatchNorm carry no bias (the norm's shift replaces it)."""
    return norm != "batch"
