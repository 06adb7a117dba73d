"""Start-up with bad saved settings or a store that cannot be opened: the window opens and says what to fix."""

from PySide6.QtCore import QSettings

from engine.settings import Settings
from workbench.app import open_store_or_fallback
from workbench.main_window import MainWindow
from workbench.platform.settings import load_settings, save_settings
from workbench.dialogs.settings_dialog import SettingsDialog


def test_a_bad_saved_value_is_skipped_alone_and_named(tmp_path):
    save_settings(Settings(workspace=tmp_path / "ws", threads=3))
    QSettings().setValue("engine/device", "tpu")
    QSettings().setValue("engine/threads", "many")
    settings, problems = load_settings()
    assert settings.workspace == tmp_path / "ws"  # the good values still apply
    assert settings.device == "auto" and settings.threads is None
    assert len(problems) == 2
    assert "device = 'tpu'" in problems[0] and "Settings" in problems[0]
    assert "threads = 'many'" in problems[1]


def test_a_store_that_cannot_be_opened_falls_back_to_the_workspace_store_and_says_so(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    bad = Settings(workspace=tmp_path / "ws", store_url=f"sqlite:///{blocker / 'store.sqlite'}")
    settings, store, problems = open_store_or_fallback(bad)
    try:
        assert settings.store_url is None and settings.workspace == tmp_path / "ws"
        assert store.list_runs() == []
        assert str(blocker) in problems[0]
        assert "showing the store" in problems[-1] and "Settings" in problems[-1]
    finally:
        store.close()
    good = Settings(workspace=tmp_path / "ws")
    settings, store, problems = open_store_or_fallback(good)
    store.close()
    assert settings == good and problems == []


def test_the_window_shows_the_problems_and_clears_them_once_settings_are_fixed(qtbot, tmp_path, monkeypatch):
    settings = Settings(workspace=tmp_path / "ws")
    settings, store, _ = open_store_or_fallback(settings)
    window = MainWindow(settings, store, problems=["the saved setting device = 'tpu' is not valid"])
    qtbot.addWidget(window)
    window.show()
    assert window.problems.isVisible() and "device = &#x27;tpu&#x27;" in window.problems.text()
    window.grab().save(str(tmp_path / "problems.png"))

    class Accepting(SettingsDialog):
        def exec(self):
            self._accept()
            return bool(self.result_settings)

    monkeypatch.setattr("workbench.main_window.SettingsDialog", Accepting)
    window.open_settings()
    assert not window.problems.isVisible()
    store.close()


def test_the_settings_dialog_checks_a_new_store_url_before_accepting_it(qtbot, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    dialog = SettingsDialog(Settings(workspace=tmp_path / "ws"))
    qtbot.addWidget(dialog)
    assert dialog.minimumWidth() >= 680  # paths and messages are not clipped
    dialog.store_url.setText(f"sqlite:///{blocker / 'store.sqlite'}")
    dialog._accept()
    assert dialog.result_settings is None and dialog.result_store is None
    assert str(blocker) in dialog.error.text() and "current store is kept" in dialog.error.text()
    # A URL where no store is yet (a typing mistake, or a new store): asked first, naming the folders it makes.
    asked = []
    dialog.confirm_new_store = lambda text: asked.append(text) or False
    typo = tmp_path / "nonexistent" / "dir" / "store.sqlite"
    dialog.store_url.setText(f"sqlite:///{typo}")
    dialog._accept()
    assert asked == [f"There is no store at {typo}. Opening it creates a new, empty store there, making the "
                     f"folder(s) {tmp_path / 'nonexistent'}, {tmp_path / 'nonexistent' / 'dir'}."]
    assert dialog.result_settings is None and not (tmp_path / "nonexistent").exists()
    assert "Not created; the current store is kept" in dialog.error.text()
    dialog.confirm_new_store = lambda text: True
    dialog.store_url.setText(f"sqlite:///{tmp_path / 'other' / 'store.sqlite'}")
    dialog._accept()
    assert dialog.result_settings is not None and dialog.result_store is not None
    assert dialog.result_store.list_runs() == []
    dialog.result_store.close()


def test_child_runs_get_the_windows_settings_not_the_ones_it_was_started_with(monkeypatch, tmp_path):
    from workbench.background.process import child_environment

    monkeypatch.setenv("GCW_STORE_URL", "sqlite:////nowhere/store.sqlite")  # bad, replaced by the fallback
    monkeypatch.setenv("GCW_THREADS", "3")
    environment = child_environment(Settings(workspace=tmp_path / "ws"))
    assert not environment.contains("GCW_STORE_URL") and not environment.contains("GCW_THREADS")
    assert environment.value("GCW_WORKSPACE") == str(tmp_path / "ws") and environment.value("PYTHONUNBUFFERED") == "1"
