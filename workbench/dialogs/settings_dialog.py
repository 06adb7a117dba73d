"""Settings: workspace, store URL, Inception weights (found / not found), device, threads."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QMessageBox, QPushButton, QSpinBox, QWidget)

from engine.api import (Store, available_devices, find_inception_weights, inception_candidate_paths, new_store_at,
                        open_store)
from engine.errors import ConfigError, UserError
from engine.settings import Settings


def _with_browse(edit: QLineEdit, pick) -> QWidget:
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit)
    button = QPushButton("Browse…")
    button.clicked.connect(pick)
    layout.addWidget(button)
    return box


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        # Wide enough for paths and for the messages under them (the default 381 px clipped both).
        self.setMinimumWidth(680)
        self.current = settings
        self.workspace = QLineEdit(str(settings.workspace))
        self.store_url = QLineEdit(settings.store_url or "")
        self.store_url.setPlaceholderText(f"default: {settings.with_(store_url=None).resolved_store_url}")
        self.inception = QLineEdit(str(settings.inception_weights or ""))
        self.inception.setPlaceholderText("pt_inception-2015-12-05-6726825d.pth (optional)")
        self.inception_status = QLabel()
        self.inception_status.setWordWrap(True)
        self.device = QComboBox()
        self.device.addItems(["auto", *available_devices()])
        self.device.setToolTip("auto: each run's own device setting; otherwise every run uses this device")
        if self.device.findText(settings.device) < 0:  # a saved GPU that this machine lacks: said, not hidden
            self.device.addItem(f"{settings.device} (not on this machine)", settings.device)
        self.device.setCurrentIndex(max(self.device.findText(settings.device), self.device.findData(settings.device)))
        self.threads = QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("all cores")
        self.threads.setValue(settings.threads or 0)
        self.error = QLabel()
        self.error.setObjectName("settingsError")
        self.error.setStyleSheet("color: #b00020")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        form = QFormLayout(self)
        form.addRow("Workspace folder", _with_browse(self.workspace, self._pick_workspace))
        form.addRow("Store URL", self.store_url)
        form.addRow("Inception weights", _with_browse(self.inception, self._pick_inception))
        form.addRow("", self.inception_status)
        form.addRow("Device", self.device)
        form.addRow("Threads", self.threads)
        form.addRow(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.inception.textChanged.connect(self._update_inception_status)
        self._update_inception_status()
        self.result_settings: Settings | None = None
        #: The store of the new settings, opened to check them, when it differs from the current one.
        self.result_store: Store | None = None

    def _pick_workspace(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Workspace folder", self.workspace.text())
        if folder:
            self.workspace.setText(folder)

    def _pick_inception(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Inception weights", "", "PyTorch weights (*.pth *.pt)")
        if path:
            self.inception.setText(path)

    def _update_inception_status(self) -> None:
        setting = Path(self.inception.text()).expanduser() if self.inception.text().strip() else None
        found = find_inception_weights(setting)
        if found:
            self.inception_status.setText(f"found: {found} (FID available)")
            self.inception_status.setStyleSheet("color: #1b5e20")
        else:
            looked = ", ".join(str(p) for p in inception_candidate_paths(setting))
            self.inception_status.setText(f"not found (looked at {looked}); runs asking for FID use rfid, "
                                          "a labelled download-free fallback")
            self.inception_status.setStyleSheet("color: #8a6d00")

    def values(self) -> Settings:
        return Settings(workspace=Path(self.workspace.text()).expanduser(),
                        store_url=self.store_url.text().strip() or None,
                        inception_weights=Path(self.inception.text()).expanduser() if self.inception.text().strip() else None,
                        device=self.device.currentData() or self.device.currentText(), threads=self.threads.value() or None)

    def say(self, message: str) -> None:
        """A problem under the fields, whole: the dialog grows to the lines it wraps onto (a top-level window
        keeps its size otherwise, and a refused server's message was cut off)."""
        self.error.setText(message)
        self.layout().activate()
        needed = self.layout().totalHeightForWidth(self.width())
        if needed > self.height():
            self.resize(self.width(), needed)

    def confirm_new_store(self, creates: str) -> bool:
        """Whether the user wants the new, empty store that the settings point at (asked, default No)."""
        answer = QMessageBox.question(self, "Create a new store?", f"{creates}\n\nCreate it and switch to it?",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def _accept(self) -> None:
        try:
            settings = self.values()
        except ConfigError as exc:
            self.say(str(exc))
            return
        if settings.resolved_store_url != self.current.resolved_store_url:
            # Checked before it is saved: a store that cannot be opened is said here, and the current one stays.
            creates = new_store_at(settings.resolved_store_url)
            if creates is not None and not self.confirm_new_store(creates):
                self.say(f"{creates}\nNot created; the current store is kept. Check the store URL "
                         "(or the workspace) for a typing mistake.")
                return
            try:
                self.result_store = open_store(settings.resolved_store_url)
            except UserError as exc:
                self.say(f"{exc}\n(The current store is kept.)")
                return
        self.result_settings = settings
        self.accept()
