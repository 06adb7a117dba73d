"""What only some families have, as capabilities the generic code asks for instead of hooks every family must
carry: inputs beside the image (MUNIT's style code), label-map inputs (GauGAN's mIoU) and normalisation statistics
re-estimated per sub-network (GauGAN's BatchNorm). A family has one by inheriting it beside ``Family``; the
functions below are how the stages, the inspector and the export ask, so that none of them names a family."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from engine.arch import Arch
from engine.errors import ConfigError

SizeHW = tuple[int, int]


class Conditioned(ABC):
    """The generator takes inputs beside each image (MUNIT: a style code), drawn from a seed so that the teacher,
    every candidate and the student see the same ones; the compare view and the grid show them in a column of
    their own (``conditioning`` in ``compare_columns``), titled ``conditioning_title``."""

    conditioning_title: ClassVar[str]
    conditioning_tooltip: ClassVar[str] = ""

    @abstractmethod
    def conditioning(self, options: Any, count: int, seed: int) -> tuple[torch.Tensor, ...]:
        """The inputs beside each of ``count`` images, drawn from ``seed``."""

    @abstractmethod
    def display_conditioning(self, conditioning: tuple[torch.Tensor, ...], options: Any,
                             size: SizeHW) -> torch.Tensor | None:
        """The conditioning of one image as a (1, 3, H, W) picture in [-1, 1], or None."""


class LabelMaps(ABC):
    """The inputs are label maps: mIoU compares a segmentation of the output with them."""

    @abstractmethod
    def label_ids(self, inputs: torch.Tensor) -> torch.Tensor:
        """The (N, H, W) class ids of label-map inputs."""


class Calibrated(ABC):
    """Sub-networks need their normalisation statistics re-estimated on training batches before they are scored
    or exported (BatchNorm families, as the reference's ``calibrate``)."""

    @abstractmethod
    def recalibrate(self, model: nn.Module, arch: Arch | None, data: Any, options: Any) -> None:
        """Re-estimate the statistics of ``model`` (a supernet run at ``arch``, or a plain sub-network when
        ``arch`` is None) on training batches of ``data``."""


def conditioning_of(family: Any, options: Any, count: int, seed: int) -> tuple[torch.Tensor, ...]:
    """A family's inputs beside ``count`` images (none for one-input families)."""
    return family.conditioning(options, count, seed) if isinstance(family, Conditioned) else ()


def display_conditioning(family: Any, conditioning: tuple[torch.Tensor, ...], options: Any,
                         size: SizeHW) -> torch.Tensor | None:
    if not conditioning or not isinstance(family, Conditioned):
        return None
    return family.display_conditioning(conditioning, options, size)


def conditioning_title(family: Any) -> str | None:
    return family.conditioning_title if isinstance(family, Conditioned) else None


def conditioning_tooltip(family: Any) -> str:
    return family.conditioning_tooltip if isinstance(family, Conditioned) else ""


def needs_calibration(family: Any) -> bool:
    return isinstance(family, Calibrated)


def calibrate(family: Any, model: nn.Module, arch: Arch | None, data: Any, options: Any) -> None:
    """Re-estimate a sub-network's statistics where the family needs it (nothing otherwise)."""
    if isinstance(family, Calibrated):
        family.recalibrate(model, arch, data, options)


def label_ids(family: Any, inputs: torch.Tensor) -> torch.Tensor:
    if not isinstance(family, LabelMaps):
        raise ConfigError(f"{family.name} takes no label maps, so mIoU does not apply to it")
    return family.label_ids(inputs)


def column_title(family: Any, column: str) -> str:
    """What the compare view and the grid call one of the family's ``compare_columns``."""
    if column == "input":
        return family.input_title
    if column == "conditioning":
        return conditioning_title(family) or column
    return column
