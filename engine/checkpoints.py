"""Checkpoints: written atomically (a crash mid-write keeps the previous one) and loaded with
``weights_only=True`` (a checkpoint can hold tensors, numbers and strings, never code)."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import torch

from engine.errors import UserError
from engine.files import missing, write_atomic


def save(state: dict[str, Any], path: Path, previous: Path | None = None) -> None:
    """Write ``state`` to ``path`` atomically (``engine.files.write_atomic``); with ``previous``, the file it
    replaces is kept there."""
    write_atomic(path, lambda tmp: torch.save(state, tmp), previous, needs=tensor_bytes(state))


def tensor_bytes(value: Any) -> int:
    """The bytes of the tensors in ``value`` (nested dicts, lists and tuples): about what saving it needs."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v) for v in value)
    return 0


def load_training_state(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A stage's training checkpoint, checked to hold what a resume needs (a step and the random state)."""
    state = load(path, map_location)
    rng = state.get("rng") if isinstance(state, dict) else None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int) or not isinstance(rng, dict) \
            or not {"python", "torch"} <= set(rng):
        raise UserError(f"checkpoint {path} is incomplete (no step or random state)")
    return state


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(missing(path, "checkpoint"))
    with path.open("rb") as handle:
        head = handle.read(4)
    # torch.save writes a zip archive (PK); older files start with a pickle protocol byte (0x80).
    if not (head.startswith(b"PK") or head[:1] == b"\x80"):
        raise UserError(f"{path} is not a PyTorch checkpoint (a file written by torch.save, such as "
                        "latest_net_G.pth); check the path")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        pickled = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if pickled:  # torch.save(model): the class's code would have to run to read it
            raise UserError(f"{path} holds a whole pickled object ({pickled.group(1)}), not a state dict of tensors; "
                            "this program never runs code from a file: where the model was made, save "
                            "torch.save(model.state_dict(), PATH) and give that file") from None
        raise UserError(f"cannot load checkpoint {path}: {str(exc).splitlines()[0]} "
                        "(only plain state dicts are accepted; pickled code is refused)") from None


def rng_state() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    return {"python": [version, list(internal), gauss], "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])


def fold_spectral_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict saved with ``torch.nn.utils.spectral_norm`` layers (``NAME_orig``, ``NAME_u``, ``NAME_v``:
    NVlabs/SPADE and gan-compression GauGAN checkpoints) as plain weights: the weight the layer used in eval
    mode, ``W_orig / sigma`` with ``sigma = u . (W_orig v)`` from its last power iteration. Other entries pass
    through unchanged."""
    folded: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith("_orig") and f"{key[:-5]}_u" in state and f"{key[:-5]}_v" in state:
            base = key[:-5]
            u, v = state[f"{base}_u"].float(), state[f"{base}_v"].float()
            matrix = value.float().reshape(value.shape[0], -1)
            sigma = torch.dot(u, matrix @ v)
            folded[base] = (value.float() / sigma).to(value.dtype)
        elif key.endswith(("_u", "_v")) and f"{key[:-2]}_orig" in state:
            continue
        else:
            folded[key] = value
    return folded
