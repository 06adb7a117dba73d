"""How long a run will take, from step costs measured on this machine before anything runs.

A distillation step (the family's own ``distill_step`` on the largest sub-network, random inputs: the cost
does not depend on the pixels) is timed at batch 1 and scaled by the run's batch (the paper's GauGAN batch of
16 at 512x256 would need tens of GB on a CPU just to be timed); a candidate's scoring is the largest
sub-network generating one image, times the search images, times the candidates the search will visit. The
figures are estimates: a GPU, other threads, or a busier machine change them, so they are said with their
conditions."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from engine.arch import Arch
from engine.config import RunConfig
from engine.families import DistillState
from engine.families.capabilities import random_inputs
from engine.losses import GANLoss
from engine.models import init_weights
from engine.search import choose_method
from engine.stages.schedule import adam_pair

#: Steps timed after one warm-up step (which allocates).
TIMED_STEPS = 2


@dataclass(frozen=True)
class TimeEstimate:
    device: str
    step_s: float  # one distillation step at the run's batch (measured at batch 1, scaled)
    image_s: float  # the largest sub-network generating one image at the run's size
    supernet_s: float
    finetune_s: float
    search_s: float
    candidates: int

    @property
    def total_s(self) -> float:
        return self.supernet_s + self.finetune_s + self.search_s

    def describe(self) -> str:
        return (f"estimated on {self.device}: {duration(self.total_s)} in all (supernet {duration(self.supernet_s)}, "
                f"search of about {self.candidates:,} candidates {duration(self.search_s)}, fine-tuning "
                f"{duration(self.finetune_s)}; a step {self.step_s:.3g} s, one image of the largest sub-network "
                f"{self.image_s:.3g} s, measured here at batch 1 and scaled; the search at most, as every candidate "
                "is counted at the largest one's cost)")


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def step_runner(config: RunConfig, device: torch.device, batch: int = 1, ndf: int | None = None):
    """A function that runs one distillation step of ``config``'s largest sub-network at ``batch`` (a
    discriminator ``ndf`` wide; default the recipe's) and returns its seconds."""
    family, options, recipe = config.family_impl, config.options, config.resolved_recipe
    teacher = family.build_teacher(options).eval().requires_grad_(False).to(device)
    space = config.search_space()
    largest = Arch.largest(space)
    supernet = init_weights(family.build_supernet(options, space), recipe.init).to(device)
    mappings = family.build_mappings(options, largest, recipe.init).to(device)
    netD = init_weights(family.build_discriminator(options, ndf or recipe.ndf), recipe.discriminator_init_type).to(device)
    opt_g, opt_d = adam_pair(list(supernet.parameters()) + list(mappings.parameters()), netD.parameters(),
                             config.supernet.lr, recipe)
    state = DistillState(teacher=teacher, forward=lambda x, arch, *c: supernet.forward_with_features(x, *c, arch=arch),
                         mappings=mappings, netD=netD, opt_g=opt_g, opt_d=opt_d, criterion=GANLoss(recipe.gan_mode),
                         recipe=recipe, extras=family.distill_extras(options))
    inputs = {key: value.to(device) for key, value in random_batch(config, batch).items()}

    def run() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        family.distill_step(state, inputs, largest)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - started

    return run, supernet, largest


def random_batch(config: RunConfig, batch: int) -> dict[str, torch.Tensor]:
    """Random inputs as the family draws them (label maps for a label-map family) and random targets, at the
    run's training crop."""
    family, options = config.family_impl, config.options
    height, width = (config.train_crop, config.train_crop) if config.train_crop else config.size_hw
    generator = torch.Generator().manual_seed(0)
    inputs = torch.cat([random_inputs(family, options, (height, width), generator) for _ in range(batch)])
    return {"A": inputs, "B": torch.rand(batch, 3, height, width, generator=generator) * 2 - 1}


def search_candidates(config: RunConfig) -> int:
    """The candidates a search will score: the whole space when it searches exhaustively (``choose_method``'s
    rule), else the evolution's population x (generations + 1), at most the space (a member is scored once)."""
    size = math.prod(len(choices) for choices in config.search_space())
    spec = config.search
    return size if choose_method(spec, size) == "exhaustive" else min(size, spec.population * (spec.generations + 1))


def estimate(config: RunConfig, device: str = "cpu") -> TimeEstimate:
    """The run's time on ``device``, from a distillation step and a generated image measured there."""
    torch_device = torch.device(device)
    run, supernet, largest = step_runner(config, torch_device)
    run()  # the first step allocates
    step = min(run() for _ in range(TIMED_STEPS)) * config.batch_size
    family, options = config.family_impl, config.options
    example = tuple(t.to(torch_device) for t in family.example_inputs(options, config.size_hw))
    supernet.eval()
    with torch.no_grad():
        supernet(*example, arch=largest)
        started = time.perf_counter()
        supernet(*example, arch=largest)
        image = time.perf_counter() - started
    candidates = search_candidates(config)
    return TimeEstimate(device=device, step_s=step, image_s=image, supernet_s=step * config.supernet.steps,
                        finetune_s=step * config.finetune.steps,
                        search_s=candidates * config.dataset.search_images * image, candidates=candidates)
