"""The contract between a model family (CycleGAN, pix2pix, ...) and the generic code.

A family owns everything that differs between families, as gan-compression gives each its own distiller,
supernet, channel configs and options: its model options, teacher (build, checkpoint layouts), student
supernet and arch space (config string, MACs in the paper's convention, extraction), distillation points
and mappings, training steps (losses; what the discriminator sees as real), input spec, export signature,
compare-view columns and its default training recipe. What only some families have (inputs beside the image,
label-map inputs, normalisation re-calibration) is a capability (``engine.families.capabilities``) that a family
inherits beside ``Family``.
The stages, search, profile, inspect and the GUI use only this interface and never name a family. Every hook here
is one that several families implement; what one family alone needs is a capability.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import nn

from engine.arch import Arch
from engine.errors import ConfigError

SizeHW = tuple[int, int]

class FamilyOptions(BaseModel):
    """A family's model options (the ``model:`` section of a run); each family extends it."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Recipe(BaseModel):
    """How a family is trained and searched: the knobs every family has. A family with knobs of its own extends
    it (``Family.recipe_model``), so that a knob of another family is refused by name. Each family's default is
    the reference's (gan-compression's scripts); every field can be overridden in the run's ``recipe:`` section
    (``engine.config.RecipeSpec`` takes a run's knobs by name and checks them against its family's model) and is written to the model card, so a
    card says which recipe made the student."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    gan_mode: Literal["lsgan", "vanilla", "hinge"] = "lsgan"
    ndf: int = Field(64, ge=1, description="width of a discriminator built here")
    init: Literal["normal", "pytorch", "xavier", "kaiming"] = Field(
        "normal", description="normal: N(0, 0.02), the reference's CycleGAN/pix2pix; xavier: its GauGAN; "
                              "kaiming: its MUNIT")
    discriminator_init: Literal["normal", "pytorch", "xavier", "kaiming"] | None = Field(
        None, description="a new discriminator's initialisation (None: as init; the reference's MUNIT: normal)")
    lambda_recon: float = Field(10.0, ge=0)
    lambda_distill: float = Field(1.0, ge=0)
    lambda_gan: float = Field(1.0, ge=0)
    weight_decay: float = Field(0.0, ge=0, description="Adam's weight decay (the reference's MUNIT: 1e-4)")
    adam_beta1: float = Field(0.5, ge=0, lt=1)
    adam_beta2: float = Field(0.999, ge=0, lt=1)
    ttur: bool = Field(False, description="generator at half the learning rate, discriminator at twice (SPADE's)")
    sampling: Literal["uniform", "sandwich"] = Field(
        "uniform", description="uniform: one random sub-network per step; sandwich: also the largest and smallest")
    student_discriminator: Literal["new", "teacher"] = Field(
        "new", description="teacher: start from the teacher's discriminator, when it has one")
    discriminator_real: Literal["real", "teacher"] = Field(
        "real", description="what the student's discriminator sees as real: real images or the teacher's outputs")
    finetune_mappings: Literal["fresh", "supernet"] = "fresh"
    teacher_decay: float = Field(0.5, ge=0, le=1, description="share of the steps over which the LR decays to 0")
    supernet_decay: float = Field(0.5, ge=0, le=1)
    finetune_decay: float = Field(0.75, ge=0, le=1)
    fid_8bit: bool = Field(True, description="generated images truncated to 8 bits before FID")
    weighted_sample: float = Field(1.0, ge=1, description="evolution's first generation: >1 favours narrow widths")
    weight_strategy: Literal["arithmetic", "geometric"] = Field(
        "arithmetic", description="how weighted_sample w weights the choices, widest first: arithmetic (n-1)/(w-1), "
                                  "+1, +2, ...; geometric 1, w, w^2, ... (the reference's GauGAN and MUNIT)")
    mapping_init: Literal["normal", "pytorch", "xavier", "kaiming"] | None = Field(
        None, description="the distillation mappings' initialisation (None: as init; the reference's MUNIT: normal)")
    crop_jitter: bool = Field(
        True, description="training images loaded at 286/256 of the image size and randomly cropped back (the "
                          "reference's CycleGAN and pix2pix); false: scaled to the image size (its GauGAN and MUNIT); "
                          "flipped either way")
    lr_policy: Literal["linear", "step"] = Field(
        "linear", description="linear: constant, then linearly to 0 over the *_decay share of the steps; step: "
                              "halved every lr_decay_steps (teacher: teacher_lr_decay_steps), the reference's MUNIT")
    lr_decay_steps: int = Field(200_000, ge=1, description="step policy: the supernet and fine-tuning halve every")
    teacher_lr_decay_steps: int = Field(100_000, ge=1, description="step policy: a teacher trained here halves every")
    mutation_prob: float = Field(0.2, ge=0, le=1)
    parent_ratio: float = Field(0.25, gt=0, le=1)
    mutation_ratio: float = Field(0.5, ge=0, le=1)

    def with_overrides(self, overrides: dict[str, Any]) -> Recipe:
        """This recipe with the given (not None) values replaced, validated like any recipe."""
        try:
            return type(self).model_validate({**self.model_dump(), **{k: v for k, v in overrides.items() if v is not None}})
        except ValidationError as exc:
            problems = "; ".join(f"recipe.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"invalid recipe: {problems}") from None

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump()

    @property
    def uses_discriminator(self) -> bool:
        """Whether the student's losses need its discriminator; without it a step neither runs nor trains it
        (a run with ``lambda_gan: 0`` is distillation alone, at the cost of the generator's passes)."""
        return self.lambda_gan > 0

    def discriminator_real_images(self, real: torch.Tensor, teacher_out: torch.Tensor) -> torch.Tensor:
        """What the student's discriminator learns as real (``discriminator_real``): the real images of the
        target domain, or the teacher's outputs for the same inputs."""
        return teacher_out if self.discriminator_real == "teacher" else real

    @property
    def discriminator_init_type(self) -> str:
        return self.discriminator_init or self.init

    @property
    def mapping_init_type(self) -> str:
        return self.mapping_init or self.init


@dataclass
class DistillState:
    """What one distillation step works with; built by the generic loop."""

    teacher: nn.Module
    forward: Any                     # (inputs, arch, *conditioning) -> (output, features)
    mappings: nn.Module
    netD: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    criterion: nn.Module
    recipe: Recipe
    #: What the family's step needs beside (``Family.distill_extras``), built once per training.
    extras: dict[str, Any] = field(default_factory=dict)


class TeacherTrainer(ABC):
    """Trains a family's teacher from scratch; ``nets["G"]`` is the teacher and ``nets["D"]`` its
    discriminator. Generator-side nets have keys starting with G, discriminator-side with D."""

    nets: dict[str, nn.Module]

    @abstractmethod
    def step(self, batch: dict[str, torch.Tensor], opt_g: torch.optim.Optimizer,
             opt_d: torch.optim.Optimizer) -> dict[str, float]:
        """One training step on a batch already on the device; returns the losses to plot."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        net.requires_grad_(flag)


class Family(ABC):
    """One model family. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]
    description: ClassVar[str]
    #: The dataset layout it trains on (see ``engine.data.layouts``).
    dataset_layout: ClassVar[str]
    #: What each arch position means; an arch has one width per position.
    positions: ClassVar[tuple[str, ...]]
    options_model: ClassVar[type[FamilyOptions]]
    #: Its recipe's model: ``Recipe``, or a subclass with the family's own knobs.
    recipe_model: ClassVar[type[Recipe]] = Recipe
    default_recipe: ClassVar[Recipe]
    #: Metrics it can report: distribution metrics always; psnr/ssim only with ground truth.
    metrics: ClassVar[tuple[str, ...]]
    #: The real images whose statistics distribution metrics compare with, per split (search, test): the
    #: split's own targets ("split"), or every target-domain image of the training set ("train"), of the test
    #: set ("test") or of both ("train+test", as the paper scores CycleGAN).
    real_statistics_from: ClassVar[dict[str, str]] = {"search": "split", "test": "split"}
    #: Run settings whose default differs for this family (the reference's, e.g. its batch size or search-split
    #: size), nested as a run's configuration; a preset, a file or an override wins over them.
    run_defaults: ClassVar[dict[str, Any]] = {}
    #: Names of the exported model's outputs (its inputs: ``capabilities.export_input_names``).
    output_names: ClassVar[tuple[str, ...]] = ("output",)
    #: Columns of the compare view and the output grid ("conditioning": a ``Conditioned`` family's extra inputs).
    compare_columns: ClassVar[tuple[str, ...]] = ("input", "teacher", "student", "difference")
    #: Which batch key holds the task's target.
    target_key: ClassVar[str] = "B"
    loss_names: ClassVar[tuple[str, ...]] = ()
    #: Built-in presets on sample data: preset name -> run settings (merged over the common sample base).
    sample_presets: ClassVar[dict[str, dict[str, Any]]] = {}
    #: This project's earlier choices, kept as the named option ``recipe: {base: workbench}``: both ends of
    #: the space trained every few steps, the student's discriminator started from the teacher's, a
    #: constant learning rate while distilling, PyTorch's default initialisation, FID on float images.
    workbench_changes: ClassVar[dict[str, Any]] = {
        "sampling": "sandwich", "student_discriminator": "teacher", "finetune_mappings": "supernet",
        "supernet_decay": 0.0, "finetune_decay": 0.0, "teacher_decay": 0.5, "init": "pytorch", "ndf": 64,
        "lambda_distill": 1.0, "fid_8bit": False, "weighted_sample": 1.0, "mutation_prob": 0.2}

    @property
    def workbench_recipe(self) -> Recipe:
        return self.default_recipe.with_overrides(self.workbench_changes)

    # --- options and arch space ---------------------------------------------------------------------

    def options(self, raw: dict[str, Any] | FamilyOptions | None = None) -> FamilyOptions:
        if isinstance(raw, self.options_model):
            return raw
        try:
            return self.options_model.model_validate(raw or {})
        except ValidationError as exc:
            problems = "; ".join(f"model.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"invalid {self.name} model options: {problems}") from None

    @abstractmethod
    def default_search_space(self, options: FamilyOptions) -> list[tuple[int, ...]]:
        """Width choices per position, widest first."""

    def search_space(self, options: FamilyOptions, custom: list[list[int]] | None = None) -> list[tuple[int, ...]]:
        space = custom if custom is not None else self.default_search_space(options)
        if len(space) != len(self.positions) or any(not c or min(c) < 1 for c in space):
            raise ConfigError(f"a {self.name} search space needs {len(self.positions)} non-empty lists of positive "
                              f"widths ({', '.join(self.positions)}), got {len(space)}")
        return [tuple(sorted(set(int(v) for v in choices), reverse=True)) for choices in space]

    def parse_arch(self, text: str | Arch | tuple[int, ...]) -> Arch:
        arch = Arch.parse(text)
        if len(arch) != len(self.positions):
            raise ConfigError(f"a {self.name} arch has {len(self.positions)} widths ({', '.join(self.positions)}), "
                              f"got {len(arch)}: {arch}")
        return arch

    def check_arch(self, arch: str | Arch, space: list[tuple[int, ...]]) -> Arch:
        """``arch`` parsed and checked to lie inside ``space``: each width one of its position's choices (the
        supernet sampled only those while training; any other width is a sub-network it never trained)."""
        arch = self.parse_arch(arch)
        outside = [f"{position} {value} (choices {', '.join(map(str, choices))})"
                   for position, value, choices in zip(self.positions, arch.values, space) if value not in choices]
        if outside:
            raise ConfigError(f"arch {arch} is outside the run's search space, so its supernet never trained it: "
                              f"{'; '.join(outside)}")
        return arch

    @abstractmethod
    def macs(self, arch: Arch, options: FamilyOptions, size: SizeHW) -> int:
        """MACs of the plain sub-network ``arch`` at ``size`` in the paper's convention (closed form,
        equal to ``engine.profile.count_macs`` of ``build_student``; search uses it before scoring)."""

    def params(self, arch: Arch, options: FamilyOptions) -> int:
        from engine.profile import count_params

        return count_params(self.build_student(options, arch))

    # --- models -------------------------------------------------------------------------------------

    @abstractmethod
    def build_teacher(self, options: FamilyOptions) -> nn.Module:
        """The teacher generator; it has ``forward_with_features(*inputs) -> (output, features)``."""

    @abstractmethod
    def teacher_state(self, raw: dict[str, Any], path: Path, options: FamilyOptions) -> dict[str, torch.Tensor]:
        """The teacher's state dict, in our layout, out of a checkpoint in any layout users bring."""

    @abstractmethod
    def describe_teacher(self, options: FamilyOptions) -> str:
        """The teacher's architecture in words (for messages about checkpoints that do not fit)."""

    @abstractmethod
    def build_supernet(self, options: FamilyOptions, space: list[tuple[int, ...]]) -> nn.Module:
        """The once-for-all student: ``forward_with_features(*inputs, arch=...)`` and ``make_subnet``."""

    @abstractmethod
    def build_student(self, options: FamilyOptions, arch: Arch) -> nn.Module:
        """A plain sub-network of ``arch`` (exportable; ``forward_with_features(*inputs)``)."""

    @abstractmethod
    def build_mappings(self, options: FamilyOptions, student_arch: Arch, init: str) -> nn.Module:
        """The 1x1 mapping layers from the student's distilled features to the teacher's."""

    @abstractmethod
    def build_discriminator(self, options: FamilyOptions, ndf: int) -> nn.Module:
        ...

    # --- data, inputs, export -----------------------------------------------------------------------

    def size_multiple(self, options: FamilyOptions) -> int:
        """What both image sides must be a multiple of for the family's models."""
        return 4

    @abstractmethod
    def example_inputs(self, options: FamilyOptions, size: SizeHW, batch: int = 1) -> tuple[torch.Tensor, ...]:
        ...

    def images_in_file(self, image: Any, options: FamilyOptions) -> tuple[Any, Any | None]:
        """The input and the ground truth (None where it holds none) in an image a user opens in the compare
        view, e.g. the halves of an A|B pair."""
        return image, None

    # --- training -----------------------------------------------------------------------------------

    @abstractmethod
    def teacher_trainer(self, options: FamilyOptions, recipe: Recipe, seed: int) -> TeacherTrainer:
        ...

    def distill_extras(self, options: FamilyOptions) -> dict[str, Any]:
        """Networks the family's distillation step uses beside the generic ones (e.g. a perceptual loss)."""
        return {}

    @abstractmethod
    def distill_step(self, state: DistillState, batch: dict[str, torch.Tensor], arch: Arch | None) -> dict[str, float]:
        """One step of distillation (discriminator, then generator and mappings) on a batch on the device;
        ``arch`` is the sub-network to train (None: the student as it is). Where ``recipe.uses_discriminator`` is
        false the step leaves the discriminator alone and reports no D losses."""


def check_image_size(family: Family, options: FamilyOptions, size: SizeHW) -> None:
    """Raise a ValueError naming the fix when the family's models cannot produce images of ``size``: both sides
    a multiple of ``size_multiple``, and more than one pixel left where the models are smallest (normalisation
    over a single pixel has nothing to normalise)."""
    multiple = family.size_multiple(options)
    height, width = size
    if height % multiple or width % multiple:
        raise ValueError(f"{family.name} needs image sides that are multiples of {multiple}, not {width}x{height}")
    if height * width <= multiple * multiple:
        raise ValueError(f"{family.name} needs an image of at least {2 * multiple} pixels on one side (its models "
                         f"work at 1/{multiple} of each side), not {width}x{height}")
