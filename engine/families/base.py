"""The small contract every model family gives the generic code (stages, search, profile, GUI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from engine.errors import ConfigError
from engine.models import build_generator
from engine.models.mobile_resnet import POSITIONS, MobileResnetArch, MobileResnetGenerator, MobileResnetSupernet


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    paired: bool
    dataset_layout: str
    teacher_generator: str
    teacher_kwargs: dict[str, Any]
    #: Width choices per arch position (see ``engine.models.mobile_resnet.POSITIONS``).
    search_space: tuple[tuple[int, ...], ...]
    lambda_recon: float
    loss_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if len(self.search_space) != len(POSITIONS):
            raise ValueError(f"{self.name}: the search space needs choices for {len(POSITIONS)} positions")

    def build_teacher(self, input_nc: int = 3, output_nc: int = 3, **overrides: Any) -> nn.Module:
        return build_generator(self.teacher_generator, input_nc=input_nc, output_nc=output_nc,
                               **{**self.teacher_kwargs, **overrides})

    @property
    def max_arch(self) -> MobileResnetArch:
        return MobileResnetArch(tuple(max(choices) for choices in self.search_space))

    @property
    def min_arch(self) -> MobileResnetArch:
        return MobileResnetArch(tuple(min(choices) for choices in self.search_space))

    def check_arch(self, arch: str | MobileResnetArch) -> MobileResnetArch:
        arch = MobileResnetArch.parse(arch)
        if not arch.fits_in(self.max_arch):
            raise ConfigError(f"arch {arch} exceeds the largest widths of the {self.name} supernet ({self.max_arch})")
        return arch

    def build_student(self, arch: str | MobileResnetArch, input_nc: int = 3, output_nc: int = 3) -> MobileResnetGenerator:
        return MobileResnetGenerator(input_nc, output_nc, arch=self.check_arch(arch),
                                     n_blocks=self.teacher_kwargs.get("n_blocks", 9))

    def build_supernet(self, input_nc: int = 3, output_nc: int = 3) -> MobileResnetSupernet:
        return MobileResnetSupernet(input_nc, output_nc, max_arch=self.max_arch,
                                    n_blocks=self.teacher_kwargs.get("n_blocks", 9))
