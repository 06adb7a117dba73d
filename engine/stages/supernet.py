"""Stage ``supernet``: distil the teacher into the once-for-all mobile-ResNet student. Each step trains
one sub-network of the search space: the largest and the smallest in turn every few steps (so both ends
of the space are trained), a uniformly random one otherwise; all share the supernet's weights."""

from __future__ import annotations

import random
from typing import Any

from engine import checkpoints
from engine.config import RunConfig
from engine.families import get_family
from engine.losses import FeatureMappings
from engine.models import MobileResnetArch, MobileResnetSupernet
from engine.stages.context import StageContext
from engine.stages.data import RunData
from engine.stages.distill import distill, make_discriminator
from engine.stages.teacher import load_teacher


def search_space(config: RunConfig) -> list[tuple[int, ...]]:
    custom = config.supernet.search_space
    space = custom if custom is not None else get_family(config.family).search_space
    return [tuple(sorted(set(choices), reverse=True)) for choices in space]


def max_arch(config: RunConfig) -> MobileResnetArch:
    return MobileResnetArch(tuple(max(c) for c in search_space(config)))


def build_supernet(config: RunConfig) -> MobileResnetSupernet:
    return MobileResnetSupernet(max_arch=max_arch(config), n_blocks=config.teacher.n_blocks)


def build_mappings(config: RunConfig) -> FeatureMappings:
    student = max_arch(config).channels()[2]
    teacher = config.teacher.ngf * 4
    return FeatureMappings([student] * 4, [teacher] * 4)


def arch_sampler(config: RunConfig):
    space = search_space(config)
    largest = "_".join(str(max(c)) for c in space)
    smallest = "_".join(str(min(c)) for c in space)

    def sample(step: int) -> str:
        if step % 4 == 0:
            return largest
        if step % 4 == 1:
            return smallest
        rng = random.Random(config.seed * 1_000_003 + step)
        return "_".join(str(rng.choice(c)) for c in space)

    return sample


def run(ctx: StageContext, data: RunData) -> dict[str, Any]:
    config = ctx.config
    teacher, teacher_D = load_teacher(ctx)
    supernet = build_supernet(config)
    mappings = build_mappings(config)
    netD = make_discriminator(ctx, teacher_D)
    ctx.message(f"supernet: widths up to {supernet.max_arch}, search space "
                f"{' x '.join(str(len(c)) for c in search_space(config))} sub-networks")
    distill(ctx, data, teacher=teacher, student=supernet, forward=supernet.forward_with_features,
            mappings=mappings, netD=netD, steps=config.supernet.steps, lr=config.supernet.lr,
            sample_arch=arch_sampler(config))
    weights = ctx.stage_dir / "supernet.pt"
    checkpoints.save({"supernet": supernet.state_dict(), "mappings": mappings.state_dict(), "D": netD.state_dict()},
                     weights)
    ctx.artifact(weights, "supernet_weights")
    return {"weights": str(weights), "max_arch": str(supernet.max_arch)}


def load_supernet(ctx: StageContext):
    saved = checkpoints.load(ctx.result("supernet")["weights"], map_location=ctx.device)
    supernet, mappings = build_supernet(ctx.config), build_mappings(ctx.config)
    supernet.load_state_dict(saved["supernet"])
    mappings.load_state_dict(saved["mappings"])
    return supernet.to(ctx.device), mappings.to(ctx.device), saved["D"]
