"""Stage ``supernet``: distil the teacher into the family's once-for-all student. Each step trains one
sub-network of the search space, all sharing the supernet's weights: one drawn uniformly at random, as
the reference, or (recipe ``sampling: sandwich``) the largest and the smallest in turn every few steps."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from engine.arch import Arch
from engine.config import RunConfig
from engine.families.capabilities import inherit_from_teacher
from engine.models import init_weights
from engine.stages.context import StageContext
from engine.stages.data import RunData
from engine.stages.distill import distill, make_discriminator
from engine.stages.latency_budget import check_latency_budget, check_speedup_budget
from engine.stages.resources import build_mappings, build_supernet, load_teacher


def arch_sampler(config: RunConfig) -> Callable[[int], Arch]:
    """The sub-network of each step; a function of (seed, step) only, so a resumed stage draws the same."""
    space = config.search_space()
    largest, smallest = Arch.largest(space), Arch.smallest(space)
    sandwich = config.resolved_recipe.sampling == "sandwich"

    def sample(step: int) -> Arch:
        if sandwich and step % 4 == 0:
            return largest
        if sandwich and step % 4 == 1:
            return smallest
        rng = random.Random(config.seed * 1_000_003 + step)
        return Arch(tuple(rng.choice(c) for c in space))

    return sample


def run(ctx: StageContext, data: RunData) -> dict[str, Any]:
    config = ctx.config
    recipe = config.resolved_recipe
    check_latency_budget(ctx)  # a latency budget nothing can meet is refused before the training, not after
    check_speedup_budget(ctx)
    teacher, teacher_D = load_teacher(ctx)
    supernet = init_weights(build_supernet(config), recipe.init)
    inherited = inherit_from_teacher(config.family_impl, supernet, teacher, config.options)
    if inherited:
        ctx.message(inherited)
    mappings = build_mappings(config)
    netD, ndf = make_discriminator(ctx, teacher_D)
    space = config.search_space()
    ctx.message(f"supernet: widths up to {Arch.largest(space)}, search space "
                f"{' x '.join(str(len(c)) for c in space)} sub-networks; {recipe.sampling} sampling, "
                f"gan {recipe.gan_mode}, lambda_distill {recipe.lambda_distill}")
    distill(ctx, data, teacher=teacher, student=supernet,
            forward=lambda x, arch, *c: supernet.forward_with_features(x, *c, arch=arch),
            mappings=mappings, netD=netD, steps=config.supernet.steps, lr=config.supernet.lr,
            stage="supernet", sample_arch=arch_sampler(config))
    weights = ctx.stage_dir / "supernet.pt"
    ctx.save_weights({"supernet": supernet.state_dict(), "mappings": mappings.state_dict(), "D": netD.state_dict(),
                      "D_ndf": ndf, "settings": config.shape_settings()}, weights)
    ctx.artifact(weights, "supernet_weights")
    return {"weights": str(weights), "max_arch": str(Arch.largest(space))}
