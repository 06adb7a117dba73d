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


@pytest.fixture
def store(settings):
    """The store of the test's own workspace."""
    from engine.store import open_store

    store = open_store(settings.resolved_store_url)
    yield store
    store.close()


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the session (skipped, with the reason, where none can be started)."""
    from tests.postgres_server import PostgresServer, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """The URL of a new, empty store: an SQLite file, and a database on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture(scope="session")
def finished_munit(tmp_path_factory):
    """A real, finished tiny MUNIT run (a generator that takes a style code beside the image), made once for the
    engine's end-to-end checks and the views that inspect it."""
    from tests.engine.stages.tiny import finished_run, tiny_munit_config

    yield from finished_run(tmp_path_factory, tiny_munit_config(), "munit-workspace")
