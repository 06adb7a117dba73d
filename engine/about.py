"""What this installation is: versions of the workbench and of what it runs on, and what it found
(a GPU, the Inception weights behind FID). Shown by ``gcw --version`` and the About dialog."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from engine import __version__, openvino_runtime
from engine.settings import Settings


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _onnxruntime_version() -> str:
    found = _version("onnxruntime")
    if found != "not installed":
        return found
    try:  # a bundle without the distribution's metadata still has the module
        import onnxruntime

        return onnxruntime.__version__
    except ImportError:
        return "not installed"


def environment(settings: Settings | None = None) -> dict[str, Any]:
    import torch

    from engine.metrics.inception import find_weights

    settings = settings or Settings.from_env()
    weights = find_weights(settings.inception_weights)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "onnxruntime": _onnxruntime_version(),
        "openvino": openvino_runtime.version() or "not installed",
        # The engine never imports Qt; the installed distribution says which version the window uses.
        "qt": _version("PySide6-Essentials") if _version("PySide6-Essentials") != "not installed" else _version("PySide6"),
        "gpu": gpu,
        "inception_weights": str(weights) if weights else None,
        "workspace": str(Path(settings.workspace)),
    }


def describe(info: dict[str, Any]) -> str:
    return "\n".join([
        f"GAN Compression Workbench {info['version']}",
        f"Python {info['python']} on {info['platform']}",
        f"PyTorch {info['torch']}, ONNX Runtime {info['onnxruntime']}, OpenVINO {info.get('openvino', 'not installed')}, "
        f"Qt (PySide6) {info['qt']}",
        f"GPU: {info['gpu'] or 'none found (CPU only)'}",
        f"Inception weights for FID: {info['inception_weights'] or 'not found (runs report rfid instead)'}",
        f"Workspace: {info['workspace']}",
    ])
