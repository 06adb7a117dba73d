"""The learning-rate schedule of the reference (``lr_policy linear``): constant for ``n_epochs``, then
linearly down to zero over ``n_epochs_decay``; here in steps, the decaying share given as a fraction."""

from __future__ import annotations

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
