import os

# Qt must never need a display in tests; set before anything imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from engine.settings import Settings  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's real workspace, store or Qt settings."""
    for name in ("GCW_WORKSPACE", "GCW_STORE_URL", "GCW_INCEPTION_WEIGHTS", "GCW_DEVICE", "GCW_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GCW_WORKSPACE", str(tmp_path / "workspace"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env()
