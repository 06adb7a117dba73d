"""Files of ``resources/`` (shipped as the package ``gcw_resources``): the icon, preset descriptions."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path

from PySide6.QtGui import QIcon


def resource(name: str) -> Path:
    return Path(str(resources.files("gcw_resources").joinpath(name)))


@cache
def app_icon() -> QIcon:
    icon = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256):
        icon.addFile(str(resource(f"icons/gcw-{size}.png")))
    return icon


@cache
def preset_descriptions() -> dict[str, str]:
    """The sample presets' descriptions (resources/presets.json) and the paper presets' (made by the engine, from
    the figures and scripts it cites)."""
    from engine.api import paper_preset_descriptions

    return {**json.loads(resource("presets.json").read_text()), **paper_preset_descriptions()}
