"""Reading a generator's weights out of the checkpoints other projects write (nested state dicts, DataParallel
prefixes, unused normalisation statistics), and loading them strictly with an error that names what to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.errors import UserError

#: Keys under which known projects nest the generator's state dict in a full-model checkpoint.
NESTED_KEYS = ("G", "netG", "G_A", "netG_A", "state_dict", "model", "generator")


def unwrap_state_dict(raw: dict[str, Any], path: Path) -> dict[str, torch.Tensor]:
    """The generator's state dict out of a plain state dict, one nested in a full-model dict
    (gan-compression, other trainers) or a DataParallel save (``module.``)."""
    state = raw
    if not any(isinstance(v, torch.Tensor) for v in raw.values()):
        nested = next((raw[k] for k in NESTED_KEYS if isinstance(raw.get(k), dict)), None)
        if nested is None:
            raise UserError(f"{path} holds no generator weights: expected a state dict, or one nested under "
                            f"one of {', '.join(NESTED_KEYS)}; found keys {', '.join(list(raw)[:8])}")
        state = nested
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def without_unused_norm_statistics(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` without the running statistics of normalisation layers that have no weights of their own:
    older PyTorch saved them for InstanceNorm (pytorch-CycleGAN-and-pix2pix drops them the same way), and
    NVlabs/MUNIT's AdaIN layers keep ones they never use (they normalise per instance)."""
    def unused(key: str) -> bool:
        return (key.endswith(("running_mean", "running_var", "num_batches_tracked"))
                and f"{key.rsplit('.', 1)[0]}.weight" not in state)

    return {k: v for k, v in state.items() if not unused(k)}


#: Why a run's own saved weights no longer fit its models, and what to do.
RUN_CHANGED = ("The run's configuration no longer matches what it saved (its model options, search space or "
               "discriminator were changed since): start a new run with the new settings, or put the run's back")


def _misfit(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """What in ``state`` does not fit ``model``: missing, unexpected and mis-shaped entries (a few of each)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                  if k in state and state[k].shape != v.shape]
    return [f"{label} {', '.join(keys[:3])}" for label, keys in
            (("missing", missing), ("unexpected", unexpected), ("shape of", mismatched)) if keys]


def load_saved(model: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str,
               made_with: dict[str, Any] | None = None, now: dict[str, Any] | None = None) -> None:
    """Load weights the run itself saved (a stage's checkpoint or result): what does not fit is said as a
    configuration changed since, naming the file and, where the file says what it was made with (``made_with``,
    flat settings such as ``{"model.ngf": 32}``), each setting that differs from ``now``; never as PyTorch's list
    of keys."""
    details = _misfit(model, state)
    if not details:
        model.load_state_dict(state, strict=True)
        return
    changed = [f"{key} {made_with[key]!r} then, {now.get(key)!r} now" for key in sorted(made_with or {})
               if now is not None and made_with[key] != now.get(key)]  # type: ignore[index]
    if changed:
        raise UserError(f"{path} was made with other settings than the run has now ({'; '.join(changed)}), so it "
                        f"does not fit the {what}: put those settings back, or start a new run with the new ones")
    raise UserError(f"{path} does not fit the {what}: {'; '.join(details)}. {RUN_CHANGED}")


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str, hint: str) -> None:
    """Load ``state`` strictly, or raise an error that lists what does not fit and says what to set."""
    details = _misfit(model, state)
    if details:
        raise UserError(f"{path} does not fit the {what}: {'; '.join(details)}. {hint}")
    # A checkpoint saved from a training that diverged loads without complaint and then yields nan everywhere:
    # refused here, where the file is named, and not later as a loss or store error.
    broken = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:
        raise UserError(f"{path} holds non-finite weights (nan or inf in {len(broken)} tensor(s): "
                        f"{', '.join(broken[:3])}): it was saved from a training that diverged; use a checkpoint "
                        "from before the divergence, or train the teacher here (teacher: {checkpoint: null})")
    model.load_state_dict(state, strict=True)
