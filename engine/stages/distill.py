"""The distillation training loop shared by the ``supernet`` and ``finetune`` stages:
``L = lambda_gan L_cGAN + lambda_recon L_recon + lambda_distill sum_t ||f_t(G_t(x)) - G'_t(x)||^2``
with the discriminator trained as usual."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.families import get_family
from engine.losses import FeatureMappings, GANLoss, discriminator_loss, distill_loss
from engine.stages.context import StageContext
from engine.stages.data import RunData, training_batches
from engine.stages.teacher import build_discriminator_for

StudentForward = Callable[[torch.Tensor, str | None], tuple[torch.Tensor, list[torch.Tensor]]]


def make_discriminator(ctx: StageContext, teacher_D: nn.Module | None) -> nn.Module:
    """The student's discriminator starts from the teacher's when there is one."""
    netD = copy.deepcopy(teacher_D) if teacher_D is not None else build_discriminator_for(ctx.config)
    return netD.to(ctx.device).train().requires_grad_(True)


def distill(ctx: StageContext, data: RunData, *, teacher: nn.Module, student: nn.Module, forward: StudentForward,
            mappings: FeatureMappings, netD: nn.Module, steps: int, lr: float,
            sample_arch: Callable[[int], str | None], extra_state: dict[str, Any] | None = None) -> None:
    config, device = ctx.config, ctx.device
    family = get_family(config.family)
    spec = config.supernet
    lambda_recon = spec.lambda_recon if spec.lambda_recon is not None else family.lambda_recon
    criterion = GANLoss(config.resolved_gan_mode)
    student.to(device).train()
    mappings.to(device).train()
    opt_g = torch.optim.Adam(list(student.parameters()) + list(mappings.parameters()), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(netD.parameters(), lr=lr, betas=(0.5, 0.999))
    step = 0

    def make_state() -> dict[str, Any]:
        return {"step": step, "student": student.state_dict(), "mappings": mappings.state_dict(),
                "D": netD.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                **(extra_state or {})}

    saved = ctx.load_checkpoint()
    if saved is not None:
        step = saved["step"]
        student.load_state_dict(saved["student"])
        mappings.load_state_dict(saved["mappings"])
        netD.load_state_dict(saved["D"])
        opt_g.load_state_dict(saved["opt_g"])
        opt_d.load_state_dict(saved["opt_d"])
    ctx.begin(steps)
    batches = training_batches(data.train, config.batch_size, config.seed + 1, step)
    while step < steps:
        batch = next(batches)
        real_a, real_b = batch["A"].to(device), batch["B"].to(device)
        with torch.no_grad():
            teacher_out, teacher_features = teacher.forward_with_features(real_a)
        # Unpaired data becomes paired: the teacher's output is the student's target.
        target = real_b if family.paired else teacher_out
        arch = sample_arch(step)
        out, features = forward(real_a, arch)
        netD.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        fake_for_d = torch.cat([real_a, out], 1) if family.paired else out
        loss_gan = criterion(netD(fake_for_d), True) * spec.lambda_gan
        loss_recon = F.l1_loss(out, target) * lambda_recon
        loss_distill = distill_loss(mappings, features, teacher_features) * spec.lambda_distill
        (loss_gan + loss_recon + loss_distill).backward()
        opt_g.step()
        netD.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        real_for_d = torch.cat([real_a, target], 1) if family.paired else target
        loss_d, parts = discriminator_loss(criterion, netD, real_for_d, fake_for_d)
        loss_d.backward()
        opt_d.step()
        step += 1
        ctx.progress(step, steps, {"G_gan": loss_gan.item(), "G_recon": loss_recon.item(),
                                   "G_distill": loss_distill.item(), **parts})
        if step < steps:
            ctx.maybe_checkpoint(make_state)
    ctx.save_checkpoint(make_state())
