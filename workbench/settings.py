"""The workbench's settings (QSettings), turned into the engine's ``Settings``."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from engine.errors import ConfigError
from engine.settings import Settings


def load_settings() -> Settings:
    """Stored choices over the environment's (``GCW_*``) and the defaults."""
    stored = QSettings()
    base = Settings.from_env()
    values: dict[str, object] = {}
    for key in ("workspace", "store_url", "inception_weights", "device", "threads"):
        value = stored.value(f"engine/{key}")
        if value not in (None, ""):
            values[key] = value
    if "workspace" in values:
        values["workspace"] = Path(str(values["workspace"]))
    if "inception_weights" in values:
        values["inception_weights"] = Path(str(values["inception_weights"]))
    if "threads" in values:
        values["threads"] = int(values["threads"])  # type: ignore[arg-type]
    try:
        return base.with_(**values)
    except ConfigError:
        return base


def save_settings(settings: Settings) -> None:
    stored = QSettings()
    stored.setValue("engine/workspace", str(settings.workspace))
    stored.setValue("engine/store_url", settings.store_url or "")
    stored.setValue("engine/inception_weights", str(settings.inception_weights or ""))
    stored.setValue("engine/device", settings.device)
    stored.setValue("engine/threads", settings.threads or "")
