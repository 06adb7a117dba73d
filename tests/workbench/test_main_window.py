import pytest
from PySide6.QtCore import QSettings

from engine.store import Status, open_store
from workbench.app import make_application
from workbench.main_window import MainWindow


@pytest.fixture
def store(settings):
    store = open_store(settings.resolved_store_url)
    yield store
    store.close()


@pytest.fixture
def window(qtbot, settings, store, tmp_path):
    make_application()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))
    window = MainWindow(settings, store)
    qtbot.addWidget(window)
    window.show()
    return window


def test_empty_store_explains_how_to_start(window):
    assert window.runs_model.rowCount() == 0
    assert window.empty_label.isVisible() and "No runs yet" in window.empty_label.text()


def test_runs_from_the_store_appear_and_selecting_one_shows_its_stages(window, store, qtbot, tmp_path):
    first = store.create_run(name="h2z", family="cyclegan", dataset="grass2gravel", config={},
                             stages=["teacher", "supernet", "search"])
    store.mark_run(first, Status.running)
    store.update_stage(first, "teacher", status=Status.finished, step=10, total_steps=10)
    store.update_stage(first, "supernet", status=Status.running, step=5, total_steps=20)
    window.refresh()
    assert window.runs_model.rowCount() == 1
    assert window.runs_view.isVisible() and not window.empty_label.isVisible()
    row = [window.runs_model.index(0, c).data() for c in range(window.runs_model.columnCount())]
    assert row[:6] == ["h2z", "cyclegan", "grass2gravel", "running", "supernet", "25%"]
    assert window.selected_run_id() == first
    assert "supernet" in window.detail.text() and "5/20" in window.detail.text()

    second = store.create_run(name="e2p", family="pix2pix", dataset="edges2photos", config={}, stages=["teacher"])
    store.mark_run(second, Status.failed, error="teacher checkpoint not found: /x.pth")
    qtbot.waitUntil(lambda: window.runs_model.rowCount() == 2, timeout=5000)  # the refresh timer polls the store
    assert window.selected_run_id() == first  # a refresh keeps the selection
    window.runs_view.selectRow(window.runs_model.row_of(second))
    assert "teacher checkpoint not found" in window.detail.text()
    window.grab().save(str(tmp_path / "main_window.png"))
    assert (tmp_path / "main_window.png").stat().st_size > 0


def test_window_geometry_is_remembered(window, settings, store, qtbot):
    window.resize(700, 450)
    window.close()
    again = MainWindow(settings, store)
    qtbot.addWidget(again)
    assert (again.width(), again.height()) == (700, 450)
