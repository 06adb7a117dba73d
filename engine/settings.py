"""Where the workbench keeps its files, and which store it writes to.

Every value comes from, in order: an explicit argument, an environment variable
(``GCW_WORKSPACE``, ``GCW_STORE_URL``, ``GCW_INCEPTION_WEIGHTS``, ``GCW_DEVICE``, ``GCW_THREADS``),
then a default. The workbench passes its own settings to the engine through these variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import platformdirs

from engine.errors import ConfigError

APP_NAME = "gan-compression-workbench"
DEVICES = ("auto", "cpu", "cuda")


def default_workspace() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


@dataclass(frozen=True)
class Settings:
    workspace: Path = field(default_factory=default_workspace)
    store_url: str | None = None
    inception_weights: Path | None = None
    device: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "workspace", Path(self.workspace).expanduser())
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise ConfigError(f"device must be one of {', '.join(DEVICES)} or cuda:N, not {self.device!r}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be a positive number, not {self.threads}")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {}
        if env.get("GCW_WORKSPACE"):
            values["workspace"] = Path(env["GCW_WORKSPACE"])
        if env.get("GCW_STORE_URL"):
            values["store_url"] = env["GCW_STORE_URL"]
        if env.get("GCW_INCEPTION_WEIGHTS"):
            values["inception_weights"] = Path(env["GCW_INCEPTION_WEIGHTS"])
        if env.get("GCW_DEVICE"):
            values["device"] = env["GCW_DEVICE"]
        if env.get("GCW_THREADS"):
            try:
                values["threads"] = int(env["GCW_THREADS"])
            except ValueError:
                raise ConfigError(f"GCW_THREADS must be a whole number, not {env['GCW_THREADS']!r}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def resolved_store_url(self) -> str:
        if self.store_url:
            return self.store_url
        return f"sqlite:///{(self.workspace / 'store.sqlite').as_posix()}"

    @property
    def datasets_dir(self) -> Path:
        return self.workspace / "datasets"

    @property
    def runs_dir(self) -> Path:
        return self.workspace / "runs"

    @property
    def exports_dir(self) -> Path:
        return self.workspace / "exports"

    def as_env(self) -> dict[str, str]:
        """The variables that give a child process these same settings."""
        env = {"GCW_WORKSPACE": str(self.workspace), "GCW_DEVICE": self.device}
        if self.store_url:
            env["GCW_STORE_URL"] = self.store_url
        if self.inception_weights:
            env["GCW_INCEPTION_WEIGHTS"] = str(self.inception_weights)
        if self.threads:
            env["GCW_THREADS"] = str(self.threads)
        return env
