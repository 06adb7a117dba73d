"""About: the version, what it runs on (PyTorch, ONNX Runtime, Qt) and what it found (a GPU, the
Inception weights behind FID), as ``gcw --version`` prints them."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from engine.api import environment
from engine.settings import Settings
from workbench.platform.resources import app_icon


class AboutDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("About GAN Compression Workbench")
        self.info = environment(settings)
        icon = QLabel()
        icon.setPixmap(app_icon().pixmap(96, 96))
        rows = [("PyTorch", self.info["torch"]), ("ONNX Runtime", self.info["onnxruntime"]),
                ("OpenVINO", self.info.get("openvino", "not installed")),
                ("Qt (PySide6)", self.info["qt"]), ("Python", self.info["python"]),
                ("GPU", self.info["gpu"] or "none found: CPU only"),
                ("Inception weights (FID)", self.info["inception_weights"] or "not found: runs report rfid"),
                ("Workspace", self.info["workspace"])]
        table = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in rows)
        self.text = QLabel(f"<h3>GAN Compression Workbench {self.info['version']}</h3>"
                           "<p>Compresses conditional-GAN generators with the method of Li et al., "
                           "<i>GAN Compression</i>, CVPR 2020.</p>"
                           f"<table cellspacing='4'>{table}</table>")
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(icon, alignment=Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(buttons)
