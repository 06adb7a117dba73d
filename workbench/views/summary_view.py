"""Summary of a finished run, up front: teacher vs student (MACs, parameters, each metric on the test split,
latency in both backends with the speed-up), the output grid, the student's arch and links to the ONNX
file, the model card and the run folder."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.api import BACKEND_TITLES, HIGHER_IS_BETTER, LatencyReading, RunResult, RunSummary, faster, slower_note
from workbench.session.numbers import format_count
from workbench.widgets.open_location import open_location

UNITS = {"psnr": "dB", "psnr_to_teacher": "dB"}


def summary_rows(summary: RunResult) -> list[tuple[str, str, str, str]]:
    """(quantity, teacher, student, comparison) rows of a run's result."""
    teacher, student = summary.teacher, summary.student
    split = summary.metrics_split
    rows = [("MACs", format_count(teacher.macs), format_count(student.macs), f"{summary.macs_ratio:.1f}x fewer"),
            ("Parameters", format_count(teacher.params), format_count(student.params),
             f"{summary.params_ratio:.1f}x fewer")]
    names = list(dict.fromkeys([*teacher.metrics, *student.metrics]))
    for name in names:
        unit = f", {UNITS[name]}" if name in UNITS else ""
        unit += f", {summary.metric_notes[name]}" if name in summary.metric_notes else ""
        label = f"{name} ({split} split{unit}{', primary' if name == summary.metric else ''})"
        t, s = teacher.metrics.get(name), student.metrics.get(name)
        comparison = ""
        if t is not None and s is not None:
            better = (s > t) if HIGHER_IS_BETTER.get(name, False) else (s < t)
            comparison = f"{s - t:+.3g} ({'better' if better else 'worse'} than the teacher)"
        elif name == "psnr_to_teacher":
            comparison = "student against the teacher's outputs"
        rows.append((label, "-" if t is None else f"{t:.4g}", "-" if s is None else f"{s:.4g}", comparison))
    for backend, reading in summary.latency.items():
        parsed = LatencyReading.from_dict(reading)
        timings, ratio = parsed.timings, parsed.ratios.get("teacher/student")
        comparison = faster(ratio.median_ms) if ratio else ""
        if ratio and "teacher" in timings and "student" in timings:
            # The speed-up is the median of the per-round ratios (each round times both, so a busy moment
            # slows both alike), not the ratio of the two medians beside it: both are said, so the row adds up.
            of_medians = timings["teacher"].median_ms / timings["student"].median_ms
            comparison += f" (median of per-round ratios; ratio of the medians {of_medians:.2f}x)"
        if parsed.busy:
            comparison += " (machine busy: wide spread)"
        height, width = parsed.size
        conditions = f"{parsed.device}, {parsed.threads} threads, batch {parsed.batch}, {width}x{height}"
        if backend == "openvino":
            conditions += f", {parsed.precision} precision hint"
        rows.append((f"Latency, {BACKEND_TITLES.get(backend, backend)} ({conditions})",
                     timings["teacher"].label() if "teacher" in timings else "-",
                     timings["student"].label() if "student" in timings else "-", comparison.strip()))
    for name, variant in summary.onnx_variants.items():
        if variant.get("latency_ms") is None:
            continue
        speed = variant.get("speedup_over_float")
        # Said how it is computed: the median of per-round ratios, which is not the ratio of the two medians
        # shown in the table (11.17 ms against 1.68 ms read "0.88x" unexplained).
        how = " (median of per-round ratios"
        if variant.get("ratio_of_medians") is not None:
            how += f"; ratio of the medians {variant['ratio_of_medians']:.2f}x"
        how += ")"
        backend = BACKEND_TITLES.get(variant.get("backend", "onnxruntime"), variant.get("backend"))
        precision = variant.get("precision", "int8" if name == "int8" else "f32")
        rows.append((f"Latency, {backend}, {name} variant ({precision})", "", f"{variant['latency_ms']:.2f} ms",
                     (f"{speed:.2f}x the float student.onnx in ONNX Runtime{how}" if speed else "")
                     + (" (machine busy: wide spread)" if variant.get("busy") else "")
                     + ("" if variant.get("usable", True) else "; outside its tolerance")
                     + slower_note(variant)))
    for name, reason in summary.onnx_variants_skipped.items():
        rows.append((f"{name} variant", "", "not built", reason))
    kept = summary.search.get("latency_measured")
    if kept:  # the search's budget was decided on this measurement: how it was taken is the row's comparison
        teacher_ms = (summary.search.get("measurements") or {}).get("teacher_ms")
        rows.append(("Latency in the search's budget (measured end to end)",
                     "-" if teacher_ms is None else f"{teacher_ms:.3g} ms", f"{kept['ms']:.3g} ms",
                     ("" if kept.get("speedup_over_teacher") is None else
                      f"{kept['speedup_over_teacher']:.3g}x faster than the teacher; ") + kept["how"]))
    predicted = summary.predicted_latency
    if predicted:
        height, width = predicted["size"]
        comparison = "no measurement in these conditions here"
        if predicted.get("measured_ms") is not None:
            comparison = f"measured {predicted['measured_ms']:.3g} ms ({100 * predicted['error']:+.1f}%)"
        rows.append((f"Predicted latency, {BACKEND_TITLES.get(predicted['backend'], predicted['backend'])} "
                     f"({predicted['device']}, {predicted['threads']} threads, batch 1, {width}x{height}; latency table)",
                     "", f"{predicted['ms']:.3g} ms", comparison))
    return rows


class SummaryView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.summary: RunResult | None = None
        self.title = QLabel("Select a run")
        self.title.setStyleSheet("font-weight: bold; font-size: 14px")
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.details.linkActivated.connect(self._open)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["", "Teacher", "Student", "Student vs teacher"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.grid = QLabel()
        self.grid.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.grid_pixmap = QPixmap()
        self.grid_caption = QLabel()
        self.grid_caption.setWordWrap(True)
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.addWidget(self.title)
        layout.addWidget(self.details)
        layout.addWidget(self.table)
        layout.addWidget(self.grid_caption)
        layout.addWidget(self.grid)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.show_summary(None, None)

    def show_summary(self, run: RunSummary | None, summary: RunResult | None, folder: Path | None = None) -> None:
        """``run``: the store's summary of the run (name, status, stage); ``summary``: its result."""
        self.summary = summary
        self.grid_pixmap = QPixmap()
        if run is None:
            self.title.setText("Select a run")
            self.details.setText("")
            self._fill([])
            self.grid.clear()
            self.grid_caption.setText("")
            return
        self.title.setText(f"Run {run.id}: {run.name} ({run.family}, {run.dataset}) - {run.status}")
        if summary is None:
            where = f"now in {run.stage}" if run.status == "running" and run.stage else run.status
            self.details.setText(f"The summary appears here when the run has finished ({html.escape(where)}).")
            self._fill([])
            self.grid.clear()
            self.grid_caption.setText("")
            return
        student = summary.student
        links = [("ONNX file", summary.onnx_path), ("model card", summary.model_card_path),
                 ("run folder", str(folder) if folder else None)]
        anchors = " · ".join(f"<a href='{QUrl.fromLocalFile(path).toString()}'>{name}</a>"
                             for name, path in links if path)
        self.details.setText(
            f"Student arch <code>{html.escape(student.arch or '')}</code>"
            + (f" ({html.escape(student.weights)})" if student.weights else "")
            + f": {summary.macs_ratio:.1f}x fewer MACs than the teacher at {summary.image_size} px. Metrics on the "
            f"{summary.metrics_split} split (images the search never saw). {anchors}")
        self._fill(summary_rows(summary))
        grid = summary.grid_path
        pixmap = QPixmap(grid) if grid and Path(grid).is_file() else QPixmap()
        if pixmap.isNull():
            self.grid.setText("(the output grid is missing from the run folder)")
            self.grid_caption.setText("")
        else:
            self.grid_pixmap = pixmap
            self._scale_grid()
            columns = " | ".join(summary.grid_columns)
            self.grid_caption.setText(f"Test images, one per row: {columns}")

    def _fill(self, rows: list[tuple[str, str, str, str]]) -> None:
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.resizeRowsToContents()
        header = self.table.horizontalHeader().sizeHint().height()
        rows_height = sum(self.table.rowHeight(r) for r in range(len(rows)))
        scrollbar = self.table.horizontalScrollBar().sizeHint().height()
        self.table.setFixedHeight(header + rows_height + scrollbar + 2 * self.table.frameWidth())

    def _scale_grid(self) -> None:
        """The grid fills the width: small images magnified (pixel for pixel, at most 4x), large ones reduced."""
        if self.grid_pixmap.isNull():
            return
        width = max(self.width() - 40, 100)
        scale = min(width / self.grid_pixmap.width(), 4.0)
        mode = Qt.TransformationMode.FastTransformation if scale >= 1 else Qt.TransformationMode.SmoothTransformation
        self.grid.setPixmap(self.grid_pixmap.scaledToWidth(int(self.grid_pixmap.width() * scale), mode))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._scale_grid()

    def _open(self, url: str) -> None:
        open_location(self, url)
