"""What CycleGAN and pix2pix share: a ResNet teacher (pytorch-CycleGAN-and-pix2pix's), a mobile-ResNet
once-for-all student with gan-compression's 8-position config string, distillation of the residual
stream after the downsampling and after blocks 3, 6 and 9 through 1x1 mappings, PatchGAN
discriminators. The two families differ in their data (paired or not), their losses and their recipe,
which ``cyclegan.py`` and ``pix2pix.py`` set."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from engine.arch import Arch
from engine.families.base import DistillState, Family, FamilyOptions, SizeHW, set_requires_grad
from engine.families.weights import unwrap_state_dict, without_unused_norm_statistics
from engine.losses import FeatureMappings, distill_loss
from engine.models import MobileResnetGenerator, MobileResnetSupernet, ResnetGenerator, build_discriminator
from engine.models.init import init_weights
from engine.models.mobile_resnet import POSITIONS, channels, mobile_resnet_macs


#: The unit the new-run dialog shows beside a model option (``json_schema_extra``).
CHANNELS = {"unit": "channels"}


class ResnetOptions(FamilyOptions):
    """The ResNet teacher's architecture (``resnet_9blocks`` with ngf 64 in the paper)."""

    ngf: int = Field(64, ge=1, description="teacher width (filters of the first layer)", json_schema_extra=CHANNELS)
    n_blocks: int = Field(9, ge=3, description="residual blocks of the teacher and the student",
                          json_schema_extra={"unit": "blocks"})
    norm: Literal["instance", "batch"] = Field(
        "instance", description="the normalisation layers: instance (pytorch-CycleGAN-and-pix2pix's default) or batch")
    input_nc: int = Field(3, ge=1, description="input image channels", json_schema_extra=CHANNELS)
    output_nc: int = Field(3, ge=1, description="output image channels", json_schema_extra=CHANNELS)


def _gan_compression_blocks(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """gan-compression's ResNet blocks always hold a Dropout (rate 0), and pytorch-CycleGAN-and-pix2pix's
    hold one with ``use_dropout``: their second convolution and norm sit at ``conv_block.6/.7``, ours (a
    teacher is only ever run in eval mode, where dropout is the identity) at ``.5/.6``."""
    expected = model.state_dict()
    if all(k in expected for k in state):
        return state
    remapped = {}
    for key, value in state.items():
        parts = key.split(".")
        if "conv_block" in parts:
            i = parts.index("conv_block") + 1
            if i < len(parts) and parts[i] in ("6", "7"):
                candidate = ".".join(parts[:i] + [str(int(parts[i]) - 1)] + parts[i + 1:])
                if candidate in expected and key not in expected:
                    key = candidate
        remapped[key] = value
    return remapped


class MobileResnetFamily(Family):
    positions = POSITIONS
    options_model = ResnetOptions
    loss_names = ("G_gan", "G_recon", "G_distill", "D_real", "D_fake")
    #: The reference's channel choices for the ngf-64 teacher (``channels-64-cycleGAN`` / ``-pix2pix``).
    choices: tuple[int, ...] = (64, 48, 32, 24, 16)

    def default_search_space(self, options: ResnetOptions) -> list[tuple[int, ...]]:
        # Scaled with the teacher's width, so that a narrower teacher gets proportionally narrower choices.
        scaled = sorted({max(1, round(c * options.ngf / 64)) for c in self.choices}, reverse=True)
        return [tuple(scaled)] * len(POSITIONS)

    def macs(self, arch: Arch, options: ResnetOptions, size: SizeHW) -> int:
        return mobile_resnet_macs(channels(arch), size[0], size[1], options.n_blocks, options.input_nc,
                                  options.output_nc)

    def describe_teacher(self, options: ResnetOptions) -> str:
        return (f"{self.name} ResNet teacher (ngf {options.ngf}, {options.n_blocks} blocks, norm {options.norm}, "
                f"{options.input_nc}->{options.output_nc} channels)")

    def build_teacher(self, options: ResnetOptions) -> ResnetGenerator:
        return ResnetGenerator(options.input_nc, options.output_nc, ngf=options.ngf, n_blocks=options.n_blocks,
                               norm=options.norm)

    def teacher_state(self, raw: dict[str, Any], path: Path, options: ResnetOptions) -> dict[str, torch.Tensor]:
        state = without_unused_norm_statistics(unwrap_state_dict(raw, path))
        return _gan_compression_blocks(state, self.build_teacher(options))

    def build_supernet(self, options: ResnetOptions, space: list[tuple[int, ...]]) -> MobileResnetSupernet:
        return MobileResnetSupernet(options.input_nc, options.output_nc, max_arch=Arch.largest(space),
                                    n_blocks=options.n_blocks)

    def build_student(self, options: ResnetOptions, arch: Arch) -> MobileResnetGenerator:
        return MobileResnetGenerator(options.input_nc, options.output_nc, arch=self.parse_arch(arch),
                                     n_blocks=options.n_blocks)

    def build_mappings(self, options: ResnetOptions, student_arch: Arch, init: str) -> FeatureMappings:
        student = channels(student_arch)[2]
        return FeatureMappings([student] * 4, [options.ngf * 4] * 4, init=init)

    def example_inputs(self, options: ResnetOptions, size: SizeHW, batch: int = 1) -> tuple[torch.Tensor, ...]:
        return (torch.zeros(batch, options.input_nc, *size),)

    # --- distillation (the reference's ResnetSupernet step) ----------------------------------------

    def discriminator_inputs(self, real_a: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """What the discriminator judges for an output ``image`` of input ``real_a``."""
        return image

    def recon_target(self, batch: dict[str, torch.Tensor], teacher_out: torch.Tensor) -> torch.Tensor:
        return teacher_out

    def real_for_discriminator(self, batch: dict[str, torch.Tensor], teacher_out: torch.Tensor,
                               state: DistillState) -> torch.Tensor:
        real = state.recipe.discriminator_real_images(batch[self.target_key], teacher_out)
        return self.discriminator_inputs(batch["A"], real)

    def distill_step(self, state: DistillState, batch: dict[str, torch.Tensor], arch: Arch | None) -> dict[str, float]:
        recipe, netD, criterion = state.recipe, state.netD, state.criterion
        real_a = batch["A"]
        with torch.no_grad():
            teacher_out, teacher_features = state.teacher.forward_with_features(real_a)
        out, features = state.forward(real_a, arch)
        fake = self.discriminator_inputs(real_a, out)
        losses, d_losses = {}, {}

        with_d = recipe.uses_discriminator
        if with_d:
            set_requires_grad([netD], True)
            state.opt_d.zero_grad(set_to_none=True)
            d_losses = {"D_fake": criterion(netD(fake.detach()), False),
                        "D_real": criterion(netD(self.real_for_discriminator(batch, teacher_out, state)), True)}
            (0.5 * sum(d_losses.values())).backward()
            set_requires_grad([netD], False)
            losses["G_gan"] = criterion(netD(fake), True, for_discriminator=False) * recipe.lambda_gan

        state.opt_g.zero_grad(set_to_none=True)
        losses["G_recon"] = F.l1_loss(out, self.recon_target(batch, teacher_out)) * recipe.lambda_recon
        losses["G_distill"] = distill_loss(state.mappings, features, teacher_features) * recipe.lambda_distill
        sum(losses.values()).backward()
        if with_d:
            state.opt_d.step()
        state.opt_g.step()
        return {k: v.item() for k, v in {**losses, **d_losses}.items()}

    # --- helpers for the teacher trainers ----------------------------------------------------------

    def new_generator(self, options: ResnetOptions, init: str) -> ResnetGenerator:
        return init_weights(self.build_teacher(options), init)

    def new_discriminator(self, options: ResnetOptions, ndf: int, init: str) -> nn.Module:
        return init_weights(self.build_discriminator(options, ndf), init)

    def build_discriminator(self, options: ResnetOptions, ndf: int) -> nn.Module:
        return build_discriminator("basic", input_nc=self.discriminator_channels(options), ndf=ndf, norm=options.norm)

    def discriminator_channels(self, options: ResnetOptions) -> int:
        return options.output_nc


def seeded_rng(seed: int, offset: int) -> random.Random:
    return random.Random(seed * 1_000_003 + offset)
