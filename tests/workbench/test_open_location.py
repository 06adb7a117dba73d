"""Opening a run's folder or files where the desktop has no program for it: said, with the path to copy."""

from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QMessageBox, QWidget

from workbench.widgets.open_location import open_location


def test_a_folder_nothing_can_open_is_shown_with_its_path_to_copy(qtbot, tmp_path, monkeypatch):
    parent = QWidget()
    qtbot.addWidget(parent)
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or False)
    assert open_location(parent, str(tmp_path)) is False
    assert opened[0].toLocalFile() == str(tmp_path)
    box = parent.findChild(QMessageBox, "openLocationMessage")
    assert box is not None and box.isVisible() and str(tmp_path) in box.text()
    copy = next(b for b in box.buttons() if b.text() == "Copy path")
    copy.click()
    assert QGuiApplication.clipboard().text() == str(tmp_path)
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: True)
    assert open_location(parent, f"file://{tmp_path}") is True


def test_copy_path_is_said_in_the_windows_status_bar(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMainWindow

    window = QMainWindow()
    qtbot.addWidget(window)
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: False)
    open_location(window, str(tmp_path))
    box = window.findChild(QMessageBox, "openLocationMessage")
    next(b for b in box.buttons() if b.text() == "Copy path").click()
    assert window.statusBar().currentMessage() == f"copied the path {tmp_path}"
