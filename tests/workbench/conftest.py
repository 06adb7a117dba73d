import pytest
from PySide6.QtCore import QSettings

from engine.pipeline import create_run, execute
from engine.settings import Settings
from engine.store import open_store
from tests.engine.stages.tiny import tiny_config
from workbench.app import make_application


@pytest.fixture(autouse=True)
def _isolated_qsettings(tmp_path):
    make_application()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))
    QSettings().clear()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A real, finished tiny pix2pix run (in its own workspace) that views can inspect."""
    settings = Settings(workspace=tmp_path_factory.mktemp("finished-workspace"), device="cpu")
    store = open_store(settings.resolved_store_url)
    run_id = create_run(tiny_config("pix2pix"), store, settings)
    summary = execute(run_id, settings, store, lambda event: None)
    yield settings, store, run_id, summary
    store.close()

