"""The distillation training loop shared by the ``supernet`` and ``finetune`` stages. The family's step
computes ``L = lambda_gan L_cGAN + lambda_recon L_recon + lambda_distill sum_t ||f_t(G_t(x)) - G'_t(x)||^2``
and trains the discriminator; this loop owns optimisers, the learning-rate schedule, checkpoints and
progress."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import nn

from engine.arch import Arch
from engine.families import DistillState
from engine.families.weights import load_saved
from engine.losses import GANLoss
from engine.models import init_weights
from engine.stages.context import StageContext
from engine.stages.data import RunData, training_batches
from engine.stages.schedule import adam_pair, lr_schedule
from engine.stages.resources import build_discriminator_for

#: (images, arch, *conditioning) -> (output, features): the student at a sub-network (the family's step passes
#: any inputs beside the images, e.g. a style code).
StudentForward = Callable[..., tuple[torch.Tensor, Any]]


def make_discriminator(ctx: StageContext, teacher_D: nn.Module | None) -> tuple[nn.Module, int]:
    """The student's discriminator and its width: new, as the reference (``ndf`` of the recipe), or a copy
    of the teacher's when the recipe says so and the teacher has one."""
    recipe = ctx.config.resolved_recipe
    if recipe.student_discriminator == "teacher" and teacher_D is not None:
        netD = copy.deepcopy(teacher_D)
        ndf = int(next(p for p in netD.parameters() if p.dim() == 4).shape[0])
    else:
        netD = init_weights(build_discriminator_for(ctx.config, recipe.ndf), recipe.discriminator_init_type)
        ndf = recipe.ndf
    return netD.to(ctx.device).train().requires_grad_(True), ndf


def distill(ctx: StageContext, data: RunData, *, teacher: nn.Module, student: nn.Module, forward: StudentForward,
            mappings: nn.Module, netD: nn.Module, steps: int, lr: float, stage: Literal["supernet", "finetune"],
            sample_arch: Callable[[int], Arch | None],
            after_step: Callable[[int], dict[str, float]] | None = None) -> None:
    """``after_step(step)`` may return extra values (e.g. a metric) recorded with that step's losses."""
    config, device = ctx.config, ctx.device
    family, recipe = config.family_impl, config.resolved_recipe
    student.to(device).train()
    mappings.to(device).train()
    world = ctx.world
    world.batchnorm_over_ranks(student, mappings, netD)
    opt_g, opt_d = (world.synchronise(o) for o in adam_pair(list(student.parameters()) + list(mappings.parameters()),
                                                            netD.parameters(), lr, recipe))
    sched = [lr_schedule(opt_g, steps, recipe, stage)]
    if recipe.uses_discriminator:  # otherwise no step trains it (and a schedule would warn of that)
        sched.append(lr_schedule(opt_d, steps, recipe, stage))
    state = DistillState(teacher=teacher, forward=forward, mappings=mappings, netD=netD, opt_g=opt_g, opt_d=opt_d,
                         criterion=GANLoss(recipe.gan_mode), recipe=recipe,
                         extras=family.distill_extras(config.options))
    step = 0

    def make_state() -> dict[str, Any]:
        return {"step": step, "student": student.state_dict(), "mappings": mappings.state_dict(),
                "D": netD.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                "sched": [s.state_dict() for s in sched], "settings": config.shape_settings()}

    saved = ctx.load_checkpoint()
    if saved is not None:
        step = saved["step"]
        # The checkpoint the context read: the latest one, or the previous where the latest was damaged.
        path, made_with, now = ctx.checkpoint_path, saved.get("settings"), config.shape_settings()
        load_saved(student, saved["student"], path, f"{stage} being resumed", made_with, now)
        load_saved(mappings, saved["mappings"], path, "mapping layers being resumed", made_with, now)
        load_saved(netD, saved["D"], path, "discriminator being resumed", made_with, now)
        opt_g.load_state_dict(saved["opt_g"])
        opt_d.load_state_dict(saved["opt_d"])
        for s, s_state in zip(sched, saved.get("sched", [])):
            s.load_state_dict(s_state)
    world.same_weights(student, mappings, netD)
    ctx.begin(steps, step)
    batches = training_batches(data.train, config.batch_size, config.seed + 1, step, world)
    while step < steps:
        batch = {k: v.to(device) for k, v in next(batches).items()}
        losses = world.mean(family.distill_step(state, batch, sample_arch(step)))
        for s in sched:
            s.step()
        step += 1
        if after_step is not None:
            losses.update(after_step(step))
        ctx.progress(step, steps, losses)
        if step < steps:
            ctx.maybe_checkpoint(make_state)
    ctx.save_checkpoint(make_state())
