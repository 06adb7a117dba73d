"""What only some families have, as capabilities the generic code asks for instead of hooks every family must
carry: inputs beside the image (MUNIT's style code), label-map inputs (GauGAN's class ids: their own files, colours,
exported input name and mIoU), normalisation statistics re-estimated per sub-network (GauGAN's BatchNorm) and a
supernet that starts from some of the teacher's weights (MUNIT's style MLP). A family has one by inheriting it
beside ``Family``; the functions below are how the stages, the inspector and the export ask, so that none of them
names a family."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch
from torch import nn

from engine.arch import Arch
from engine.errors import ConfigError

if TYPE_CHECKING:  # types only: base.py is the family's own module, imported by every family beside this one
    from PIL.Image import Image
    from torch.utils.data import Dataset

    from engine.families.base import Family, FamilyOptions

SizeHW = tuple[int, int]


class TrainingData(Protocol):
    """What re-calibration draws from: a run's data (``engine.stages.data.RunData``) or anything with its
    training set."""

    @property
    def train(self) -> Dataset: ...


class Conditioned(ABC):
    """The generator takes inputs beside each image (MUNIT: a style code), drawn from a seed so that the teacher,
    every candidate and the student see the same ones; the compare view and the grid show them in a column of
    their own (``conditioning`` in ``compare_columns``), titled ``conditioning_title``."""

    conditioning_title: ClassVar[str]
    conditioning_tooltip: ClassVar[str] = ""
    #: What the compare view and the grid call the image that the conditioning renders.
    input_title: ClassVar[str] = "content"

    @abstractmethod
    def conditioning(self, options: FamilyOptions, count: int, seed: int) -> tuple[torch.Tensor, ...]:
        """The inputs beside each of ``count`` images, drawn from ``seed``."""

    @abstractmethod
    def display_conditioning(self, conditioning: tuple[torch.Tensor, ...], options: FamilyOptions,
                             size: SizeHW) -> torch.Tensor | None:
        """The conditioning of one image as a (1, 3, H, W) picture in [-1, 1], or None."""

    @abstractmethod
    def conditioning_names(self, options: FamilyOptions) -> tuple[str, ...]:
        """Names of the exported model's inputs after the image."""

    def export_conditioning(self, options: FamilyOptions, conditioning: tuple[torch.Tensor, ...],
                            references: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """What the exported model takes after the images for its checks: the conditioning, or (a model that
        reads its own, e.g. a style encoder) the real target-domain images ``references``."""
        return conditioning


class LabelMaps(ABC):
    """The inputs are label maps (class ids, not pixels): read from their own files, shown in colour, exported as
    ``label``; mIoU compares a segmentation of the output with them."""

    input_name: ClassVar[str] = "label"
    input_title: ClassVar[str] = "label map"

    @abstractmethod
    def label_ids(self, inputs: torch.Tensor) -> torch.Tensor:
        """The (N, H, W) class ids of label-map inputs."""

    @abstractmethod
    def dataset_settings(self, options: FamilyOptions) -> dict[str, Any]:
        """The ``engine.data.layouts.DatasetConfig`` fields of its label maps (classes, instance maps)."""

    @abstractmethod
    def colourise(self, inputs: torch.Tensor, options: FamilyOptions) -> torch.Tensor:
        """Label-map inputs (N, C, H, W) as colour images in [-1, 1]."""

    @abstractmethod
    def random_label_maps(self, options: FamilyOptions, size: SizeHW, generator: torch.Generator) -> torch.Tensor:
        """A seeded (1, C, H, W) input of label maps (for stored input/output checks)."""

    @abstractmethod
    def label_map_from_file(self, path: Path, options: FamilyOptions, size: SizeHW) -> torch.Tensor:
        """A label-map file a user opens in the compare view, as the (1, C, H, W) input at ``size``."""

    @abstractmethod
    def photo_beside(self, path: Path, options: FamilyOptions, size: SizeHW) -> torch.Tensor | None:
        """The photograph that belongs with such a file (its layout's sibling folder), or None."""


class Calibrated(ABC):
    """Sub-networks need their normalisation statistics re-estimated on training batches before they are scored
    or exported (BatchNorm families, as the reference's ``calibrate``)."""

    @abstractmethod
    def recalibrate(self, model: nn.Module, arch: Arch | None, data: TrainingData, options: FamilyOptions) -> None:
        """Re-estimate the statistics of ``model`` (a supernet run at ``arch``, or a plain sub-network when
        ``arch`` is None) on training batches of ``data``."""


class InheritsFromTeacher(ABC):
    """A freshly initialised supernet takes some weights from the teacher (where the family's options say so)."""

    @abstractmethod
    def inherit_from_teacher(self, supernet: nn.Module, teacher: nn.Module, options: FamilyOptions) -> str | None:
        """Copy them; return a line for the run's log, or None when the options ask for nothing."""


def conditioning_of(family: Family, options: FamilyOptions, count: int, seed: int) -> tuple[torch.Tensor, ...]:
    """A family's inputs beside ``count`` images (none for one-input families)."""
    return family.conditioning(options, count, seed) if isinstance(family, Conditioned) else ()


def display_conditioning(family: Family, conditioning: tuple[torch.Tensor, ...], options: FamilyOptions,
                         size: SizeHW) -> torch.Tensor | None:
    if not conditioning or not isinstance(family, Conditioned):
        return None
    return family.display_conditioning(conditioning, options, size)


def conditioning_title(family: Family) -> str | None:
    return family.conditioning_title if isinstance(family, Conditioned) else None


def conditioning_tooltip(family: Family) -> str:
    return family.conditioning_tooltip if isinstance(family, Conditioned) else ""


def export_input_names(family: Family, options: FamilyOptions) -> tuple[str, ...]:
    """Names of the exported model's inputs: the image (``label`` for label maps), then any conditioning."""
    image = family.input_name if isinstance(family, LabelMaps) else "input"
    return (image, *(family.conditioning_names(options) if isinstance(family, Conditioned) else ()))


def export_feed(family: Family, options: FamilyOptions, inputs: torch.Tensor, conditioning: tuple[torch.Tensor, ...],
                references: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    """What the exported model is run on for its checks (``export_input_names`` in order)."""
    if not isinstance(family, Conditioned):
        return (inputs,)
    return (inputs, *family.export_conditioning(options, conditioning, references))


def display_input(family: Family, inputs: torch.Tensor, options: FamilyOptions) -> torch.Tensor:
    """Inputs (N, C, H, W) as images in [-1, 1] for grids and the compare view (label maps in colour)."""
    return family.colourise(inputs, options) if isinstance(family, LabelMaps) else inputs


def dataset_settings(family: Family, options: FamilyOptions) -> dict[str, Any]:
    """Extra ``engine.data.layouts.DatasetConfig`` fields the family's data needs."""
    return family.dataset_settings(options) if isinstance(family, LabelMaps) else {}


def random_inputs(family: Family, options: FamilyOptions, size: SizeHW, generator: torch.Generator) -> torch.Tensor:
    """A seeded (1, C, H, W) input of the family's kind (for stored input/output checks)."""
    if isinstance(family, LabelMaps):
        return family.random_label_maps(options, size, generator)
    shape = family.example_inputs(options, size)[0].shape
    return torch.rand(shape, generator=generator) * 2 - 1


def inputs_from_file(family: Family, path: Path, options: FamilyOptions, size: SizeHW) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A file a user opens in the compare view, read once: the generator's (1, C, H, W) input at ``size`` and the
    ground truth that belongs with it (the B half of an A|B pair, a label map's photograph), or None."""
    path = Path(path)
    if isinstance(family, LabelMaps):
        return family.label_map_from_file(path, options, size), family.photo_beside(path, options, size)
    from engine.data.images import load_image

    image, target = family.images_in_file(load_image(path), options)
    return prepared_image(image, size), None if target is None else prepared_image(target, size)


def prepared_image(image: Image, size: SizeHW) -> torch.Tensor:
    import random

    from engine.data.images import to_tensor
    from engine.data.transforms import PreprocessOptions, apply, sample_params

    opts = PreprocessOptions.for_testing(size)
    return to_tensor(apply(image, sample_params(image.size, opts, random.Random(0)), opts))[None]


def inherit_from_teacher(family: Family, supernet: nn.Module, teacher: nn.Module, options: FamilyOptions) -> str | None:
    """What a fresh supernet takes from the teacher where the family does that (a line for the log, or None)."""
    if isinstance(family, InheritsFromTeacher):
        return family.inherit_from_teacher(supernet, teacher, options)
    return None


def needs_calibration(family: Family) -> bool:
    return isinstance(family, Calibrated)


def calibrate(family: Family, model: nn.Module, arch: Arch | None, data: TrainingData, options: FamilyOptions) -> None:
    """Re-estimate a sub-network's statistics where the family needs it (nothing otherwise)."""
    if isinstance(family, Calibrated):
        family.recalibrate(model, arch, data, options)


def label_ids(family: Family, inputs: torch.Tensor) -> torch.Tensor:
    if not isinstance(family, LabelMaps):
        raise ConfigError(f"{family.name} takes no label maps, so mIoU does not apply to it")
    return family.label_ids(inputs)


def column_title(family: Family, column: str) -> str:
    """What the compare view and the grid call one of the family's ``compare_columns``."""
    if column == "input":
        return family.input_title if isinstance(family, (LabelMaps, Conditioned)) else "input"
    if column == "conditioning":
        return conditioning_title(family) or column
    return column
