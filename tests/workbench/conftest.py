import pytest
from PySide6.QtCore import QSettings

from tests.engine.stages.tiny import finished_run, tiny_config
from workbench.app import make_application


@pytest.fixture(autouse=True, scope="session")
def _background_jobs_finish_before_the_interpreter_ends():
    yield
    from workbench.background.worker import wait_for_all

    wait_for_all()


@pytest.fixture(autouse=True)
def _isolated_qsettings(tmp_path):
    make_application()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))
    QSettings().clear()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A real, finished tiny pix2pix run (in its own workspace) that views can inspect."""
    yield from finished_run(tmp_path_factory, tiny_config("pix2pix"), "finished-workspace")

