"""The learning-rate schedules of the reference: ``lr_policy linear`` (constant for ``n_epochs``, then linearly
down to zero over ``n_epochs_decay``; here in steps, the decaying share given as a fraction) and ``lr_policy step``
(halved every ``lr_decay_steps`` steps, its MUNIT's)."""

from __future__ import annotations

from typing import Literal

import torch


def linear_decay(optimizer: torch.optim.Optimizer, total_steps: int, decay_fraction: float) -> torch.optim.lr_scheduler.LambdaLR:
    """Constant for the first ``(1 - decay_fraction) * total_steps`` steps, then linearly to zero at the
    last step; ``decay_fraction`` 0 keeps the rate constant. Its state goes into the stage's checkpoint."""
    decay = round(total_steps * decay_fraction)
    constant = total_steps - decay

    def factor(step: int) -> float:
        if decay <= 0 or step < constant:
            return 1.0
        return max(0.0, 1.0 - (step - constant + 1) / (decay + 1))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def step_decay(optimizer: torch.optim.Optimizer, every: int, gamma: float = 0.5) -> torch.optim.lr_scheduler.LambdaLR:
    """The rate times ``gamma`` after every ``every`` steps (the reference's ``StepLR`` stepped per iteration)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: gamma ** (step // every))


def lr_schedule(optimizer: torch.optim.Optimizer, total_steps: int, recipe,
                stage: Literal["teacher", "supernet", "finetune"]) -> torch.optim.lr_scheduler.LambdaLR:
    """The recipe's schedule for one training stage's optimizer."""
    if recipe.lr_policy == "step":
        return step_decay(optimizer, recipe.teacher_lr_decay_steps if stage == "teacher" else recipe.lr_decay_steps)
    return linear_decay(optimizer, total_steps, getattr(recipe, f"{stage}_decay"))


def adam_pair(g_params, d_params, lr: float, recipe) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """The generator's and the discriminator's Adam with the recipe's betas; with ``ttur`` the generator at
    half ``lr`` and the discriminator at twice it (SPADE's two time-scale update rule)."""
    betas = (recipe.adam_beta1, recipe.adam_beta2)
    g_lr, d_lr = (lr / 2, lr * 2) if recipe.ttur else (lr, lr)
    decay = recipe.weight_decay
    return (torch.optim.Adam(g_params, lr=g_lr, betas=betas, weight_decay=decay),
            torch.optim.Adam(d_params, lr=d_lr, betas=betas, weight_decay=decay))
