"""Opening a folder or file with the desktop's own program, and saying so when there is none: on a server
or a bare window manager no launcher exists, and QDesktopServices fails without a word."""

from __future__ import annotations

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QMainWindow, QMessageBox, QWidget


def _copy(parent: QWidget, path: str) -> None:
    QGuiApplication.clipboard().setText(path)
    window = parent.window()
    if isinstance(window, QMainWindow):  # said where the window says what was done
        window.statusBar().showMessage(f"copied the path {path}")


def open_location(parent: QWidget, target: str) -> bool:
    """Open ``target`` (a path, or a URL such as file:///...); where nothing could open it, a message shows the
    path with a button that copies it (the message is not modal: the window goes on)."""
    url = QUrl(target) if "://" in target else QUrl.fromLocalFile(target)
    if QDesktopServices.openUrl(url):
        return True
    shown = url.toLocalFile() or target
    box = QMessageBox(QMessageBox.Icon.Information, "Nothing could open it",
                      f"No program on this desktop opens {shown}.\n\nOpen it yourself; the button copies its path.",
                      QMessageBox.StandardButton.Close, parent)
    box.setObjectName("openLocationMessage")
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    copy = box.addButton("Copy path", QMessageBox.ButtonRole.ActionRole)
    copy.clicked.connect(lambda: _copy(parent, shown))
    box.open()
    return False
