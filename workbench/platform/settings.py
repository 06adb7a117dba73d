"""The workbench's settings (QSettings), turned into the engine's ``Settings``."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from engine.errors import ConfigError
from engine.settings import Settings

KEYS = ("workspace", "store_url", "inception_weights", "device", "threads")


def _typed(key: str, value: object) -> object:
    if key in ("workspace", "inception_weights"):
        return Path(str(value))
    if key == "threads":
        return int(str(value))
    return str(value)


def load_settings() -> tuple[Settings, list[str]]:
    """Stored choices over the environment's (``GCW_*``) and the defaults, with what was wrong: a saved value
    that is not valid is skipped, one by one, so that one bad setting never keeps the others (or the app) out."""
    stored = QSettings()
    settings = Settings.from_env()
    problems = []
    for key in KEYS:
        value = stored.value(f"engine/{key}")
        if value in (None, ""):
            continue
        try:
            settings = settings.with_(**{key: _typed(key, value)})
        except (ConfigError, ValueError) as exc:
            default = getattr(settings, key)
            problems.append(f"the saved setting {key} = {value!r} is not valid ({exc}); "
                            f"{default if default is not None else 'the default'} is used until you change it in Settings")
    return settings, problems


def save_settings(settings: Settings) -> None:
    stored = QSettings()
    stored.setValue("engine/workspace", str(settings.workspace))
    stored.setValue("engine/store_url", settings.store_url or "")
    stored.setValue("engine/inception_weights", str(settings.inception_weights or ""))
    stored.setValue("engine/device", settings.device)
    stored.setValue("engine/threads", settings.threads or "")
