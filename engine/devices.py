"""The devices this machine can run on, for the choices the workbench offers."""

from __future__ import annotations

import torch


def available_devices() -> list[str]:
    """"cpu", then "cuda" where a GPU is usable, and "cuda:N" for each GPU where there are several."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        devices.append("cuda")
        if count > 1:
            devices += [f"cuda:{index}" for index in range(count)]
    return devices


def check_device(name: str, field: str) -> None:
    """Refuse, naming ``field``, a device this machine cannot run on (a CUDA device without a GPU, or without
    a CUDA build of PyTorch, or an index past the last GPU), before anything is built on it."""
    if not name.startswith("cuda"):
        return
    from engine.errors import ConfigError

    if not torch.cuda.is_available():
        build = "a CPU-only build of PyTorch" if torch.version.cuda is None else "no usable GPU"
        raise ConfigError(f"{field} is {name}, but this machine has {build} (torch {torch.__version__}); set {field} "
                          "to cpu, or run where a GPU and a CUDA build of PyTorch are installed")
    index = int(name.split(":")[1]) if ":" in name else 0
    if index >= torch.cuda.device_count():
        raise ConfigError(f"{field} is {name}, but this machine has {torch.cuda.device_count()} GPU(s) "
                          f"(cuda:0 to cuda:{torch.cuda.device_count() - 1}); set {field} to one of them")


def resolve_device(name: str) -> str:
    """``auto`` as this machine resolves it (``cuda`` where a GPU is usable, else ``cpu``); other names as they are."""
    if name != "auto":
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"


def describe_resolved(name: str, resolved: str) -> str:
    """One line for the run's log: which device ``auto`` chose and why."""
    if name != "auto":
        return f"device {resolved}"
    if resolved.startswith("cuda"):
        return f"device auto: {resolved} ({torch.cuda.get_device_name(torch.device(resolved))})"
    reason = "a CPU-only build of PyTorch" if torch.version.cuda is None else "no usable GPU"
    return f"device auto: cpu (this machine has {reason})"
