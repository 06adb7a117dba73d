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
