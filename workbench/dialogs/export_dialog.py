"""Export: a candidate (or the run's final student) to ONNX with its model card, through the engine's
``export`` command in a child process; shows the parity check and latency when it is done."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QProcess, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QWidget,
)

from engine.api import ExportedCandidate, Store, describe_latency, describe_variant
from engine.settings import Settings
from workbench.background.children import child_command
from workbench.widgets.open_location import open_location
from workbench.background.process import child_environment

FINAL = "final student of the run"


class ExportDialog(QDialog):
    def __init__(self, store: Store, settings: Settings, run_id: int, arch: str | None = None,
                 parent: QWidget | None = None, candidates: list[dict[str, Any]] | None = None):
        """``candidates``: the rows to offer besides the final student (the window passes the run's Pareto
        front); ``arch``, preselected, is looked up by its index when it is not among them."""
        super().__init__(parent)
        self.setWindowTitle(f"Export from run {run_id}")
        self.settings, self.run_id = settings, run_id
        self.candidate = QComboBox()
        self.candidate.addItem(FINAL, None)
        offered = list(candidates or [])
        if arch and all(row["arch"] != arch for row in offered) and (row := store.candidate(run_id, arch)):
            offered.append(row)
        for row in sorted(offered, key=lambda row: row["macs"]):
            metrics = ", ".join(f"{k} {v:.4g}" for k, v in row["metrics"].items())
            self.candidate.addItem(f"{row['arch']}  ({row['macs'] / 1e6:.2f}M MACs; {metrics})", row["arch"])
        if arch:
            self.candidate.setCurrentIndex(max(0, self.candidate.findData(arch)))
        self.out_dir = QLineEdit(self.suggested_folder())
        self._suggested = self.out_dir.text()
        self.candidate.currentIndexChanged.connect(self._candidate_changed)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._pick)
        self.weights_note = QLabel()
        self.weights_note.setWordWrap(True)
        self.result_label = QLabel()
        self.result_label.setObjectName("exportResult")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # The result (paths, the model card, every variant) scrolls in its own area instead of being cut off.
        self.result_area = QScrollArea()
        self.result_area.setWidgetResizable(True)
        self.result_area.setWidget(self.result_label)
        self.result_area.setMinimumHeight(240)
        self.export_result: ExportedCandidate | None = None
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_dir)
        out_row.addWidget(browse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.clicked.connect(self.start)
        self.open_button = self.buttons.addButton("Open folder", QDialogButtonBox.ButtonRole.ActionRole)
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(lambda: open_location(self, str(self._exported_folder())))
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Candidate", self.candidate)
        form.addRow("", self.weights_note)
        form.addRow("Folder", out_row)
        form.addRow(self.result_area)
        form.addRow(self.buttons)
        self.resize(760, 520)
        self._show_weights_note()
        self.process = QProcess(self)
        self.process.setProcessEnvironment(child_environment(settings))
        self.process.finished.connect(self._finished)

    def suggested_folder(self) -> str:
        """In the workspace's export folder, named after the run and what is exported."""
        arch = self.candidate.currentData() if hasattr(self, "candidate") else None
        return str(self.settings.exports_dir / f"run-{self.run_id}-{arch or 'student'}")

    def _show_weights_note(self) -> None:
        """Which weights the chosen entry is exported with: only the final student was fine-tuned."""
        self.weights_note.setText(
            "The run's final student, fine-tuned where that was kept." if self.candidate.currentData() is None else
            "A candidate of the search is exported with the supernet's shared weights, not fine-tuned (only the "
            "run's final student was fine-tuned): its quality is the search's, not the final student's.")

    def _exported_folder(self) -> Path:
        return Path(self.export_result.onnx_path).parent if self.export_result else Path(self.out_dir.text())

    def _candidate_changed(self, _index: int) -> None:
        self._show_weights_note()
        if self.out_dir.text() == self._suggested:  # not edited: it follows the candidate
            self._suggested = self.suggested_folder()
            self.out_dir.setText(self._suggested)

    def _pick(self) -> None:
        self.settings.exports_dir.mkdir(parents=True, exist_ok=True)
        folder = QFileDialog.getExistingDirectory(self, "Export folder", str(self.settings.exports_dir))
        if folder:
            self.out_dir.setText(folder)

    def start(self) -> None:
        arguments = ["export", str(self.run_id), "--out", self.out_dir.text(), "--json"]
        if self.candidate.currentData():
            arguments += ["--arch", self.candidate.currentData()]
        self.export_button.setEnabled(False)
        self.result_label.setText("exporting and checking in ONNX Runtime…")
        self.process.start(*child_command(arguments))

    def _finished(self, code: int, _status) -> None:
        self.export_button.setEnabled(True)
        out = bytes(self.process.readAllStandardOutput().data()).decode(errors="replace").strip()
        err = bytes(self.process.readAllStandardError().data()).decode(errors="replace").strip()
        if code != 0 or not out:
            self.result_label.setText(f"export failed: {err.splitlines()[-1] if err else f'exit code {code}'}")
            self.result_label.setStyleSheet("color: #b00020")
            return
        self.export_result = r = ExportedCandidate.from_dict(json.loads(out.splitlines()[-1]))
        self.result_label.setStyleSheet("")
        self.result_label.setText(
            f"<b>{r.arch}</b>: {r.macs / 1e6:.2f}M MACs, {r.params / 1e6:.4f}M params<br>"
            f"parity with PyTorch in ONNX Runtime: max |diff| {r.max_abs_diff:.2g} (limit 1e-3)<br>"
            + "".join(f"latency, {describe_latency(reading)}<br>" for reading in r.latency.values())
            + "".join(f"variant {describe_variant(n, v)}<br>" for n, v in r.onnx_variants.items())
            + "".join(f"variant {n}: not built ({why})<br>" for n, why in r.onnx_variants_skipped.items())
            + f"ONNX: {r.onnx_path}<br>model card: {r.model_card_path}")
        self.open_button.setEnabled(True)
