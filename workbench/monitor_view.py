"""Monitor: per-stage progress with ETA, live loss curves, the log tail, cancel and resume."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar,
                               QPushButton, QVBoxLayout, QWidget)

from engine.config import STAGES
from engine.events import Event
from engine.store import Curve, Store
from workbench.reader import StoreReader
from workbench.state import RunMonitor

MAX_PLOT_POINTS = 2000
ZOOM_SETTLE_MS = 250
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _eta_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    return f"ETA {minutes}:{secs:02d}"


class MonitorView(QWidget):
    cancel_requested = Signal(int)
    resume_requested = Signal(int)

    def __init__(self, store: Store, parent: QWidget | None = None):
        super().__init__(parent)
        self.store = store
        self.run_id: int | None = None
        self.monitor = RunMonitor()
        self.title = QLabel("Select a run")
        self.title.setStyleSheet("font-weight: bold; font-size: 14px")
        self.cancel_button = QPushButton("Cancel run")
        self.cancel_button.setToolTip("Stop at the next checkpoint; finished work is kept and the run can resume")
        self.resume_button = QPushButton("Resume")
        self.cancel_button.clicked.connect(lambda: self.run_id and self.cancel_requested.emit(self.run_id))
        self.resume_button.clicked.connect(lambda: self.run_id and self.resume_requested.emit(self.run_id))
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.cancel_button)
        header.addWidget(self.resume_button)

        grid = QGridLayout()
        self.bars: dict[str, QProgressBar] = {}
        self.etas: dict[str, QLabel] = {}
        for row, stage in enumerate(STAGES):
            bar = QProgressBar()
            bar.setFormat(f"{stage}: %p%")
            self.bars[stage], self.etas[stage] = bar, QLabel()
            grid.addWidget(QLabel(stage), row, 0)
            grid.addWidget(bar, row, 1)
            grid.addWidget(self.etas[stage], row, 2)

        self.loss_stage = QComboBox()
        self.loss_stage.addItems(["teacher", "supernet", "finetune"])
        self.loss_stage.setCurrentText("supernet")
        self.loss_stage.currentTextChanged.connect(self._stage_changed)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        self.plot.addLegend(offset=(-10, 10))
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.curve_width = 1  # steps per plotted point of the curves shown (1: every recorded point)
        self.reader = StoreReader(self)
        self._zoom_timer = QTimer(self)
        self._zoom_timer.setSingleShot(True)
        self._zoom_timer.setInterval(ZOOM_SETTLE_MS)
        self._zoom_timer.timeout.connect(self.refresh)
        self.plot.getViewBox().sigXRangeChanged.connect(self._range_changed)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(500)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b00020")

        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.error)
        layout.addLayout(grid)
        losses_row = QHBoxLayout()
        losses_row.addWidget(QLabel("Losses of"))
        losses_row.addWidget(self.loss_stage)
        losses_row.addStretch(1)
        layout.addLayout(losses_row)
        layout.addWidget(self.plot, 2)
        layout.addWidget(self.log_view, 1)
        self.set_process_running(False)

    def set_run(self, run_id: int | None) -> None:
        if run_id != self.run_id:
            self.run_id = run_id
            self.monitor = RunMonitor(run_id)
            self.log_view.clear()
            self.reader.forget("monitor")
            for curve in self.curves.values():
                self.plot.removeItem(curve)
            self.curves.clear()
            self.plot.plotItem.legend.clear()
            self.plot.getViewBox().enableAutoRange()
        self.refresh()

    def _stage_changed(self, _stage: str) -> None:
        self.plot.getViewBox().enableAutoRange()
        self.refresh()

    def set_process_running(self, running: bool) -> None:
        self._running = running
        self._update_buttons()

    def _update_buttons(self, status: str | None = None) -> None:
        self.cancel_button.setEnabled(self.run_id is not None and self._running)
        self.resume_button.setEnabled(self.run_id is not None and not self._running
                                      and status in ("failed", "cancelled", "pending"))

    def handle_event(self, event: Event) -> None:
        """A live event of the selected run's process: progress and log at once, curves from the store."""
        if self.run_id is None or event.run_id != self.run_id:
            return
        seen = self.monitor.log_total
        self.monitor.handle(event)
        for line in self.monitor.log_since(seen):
            self.log_view.appendPlainText(line)
        stage = self.monitor.stages.get(getattr(event, "stage", ""), None)
        if stage is not None and stage.name in self.bars:
            bar = self.bars[stage.name]
            bar.setMaximum(stage.total or 1)
            bar.setValue(stage.step if stage.total else (1 if stage.status == "finished" else 0))
            self.etas[stage.name].setText(_eta_text(stage.eta_seconds()))

    def refresh(self) -> None:
        """Stages and loss curves from the store (the source of truth), read in the background: the curves
        are downsampled by the store's query (whole range, or the zoomed-in range at finer detail)."""
        if self.run_id is None:
            self.title.setText("Select a run")
            self._update_buttons()
            return
        store, run_id, stage = self.store, self.run_id, self.loss_stage.currentText()
        view_box = self.plot.getViewBox()
        zoomed = bool(self.curves) and not view_box.autoRangeEnabled()[0]
        start, stop = (int(max(0, v)) for v in view_box.viewRange()[0]) if zoomed else (None, None)

        def read() -> tuple[Any, dict[str, Curve]]:
            return store.get_run(run_id), store.curves(run_id, stage, max_points=MAX_PLOT_POINTS, start=start,
                                                        stop=stop)

        self.reader.read("monitor", read, lambda result, run_id=run_id, stage=stage: self._show(run_id, stage, *result))

    def _show(self, run_id: int, stage: str, run: Any, curves: dict[str, Curve]) -> None:
        if run_id != self.run_id or stage != self.loss_stage.currentText():
            return  # another run or stage was chosen meanwhile
        self.title.setText(f"Run {run.id}: {run.name} ({run.family}, {run.dataset}) - {run.status.value}")
        self.error.setText(run.error or "")
        for stage_row in run.stages:
            bar = self.bars.get(stage_row.name)
            if bar is None:
                continue
            if stage_row.status.value == "finished":
                bar.setMaximum(1)
                bar.setValue(1)
                self.etas[stage_row.name].setText("done")
            else:
                bar.setMaximum(stage_row.total_steps or 1)
                bar.setValue(min(stage_row.step, stage_row.total_steps or 0))
                if stage_row.status.value != "running":
                    self.etas[stage_row.name].setText(stage_row.status.value if stage_row.status.value != "pending" else "")
        if self.log_view.document().isEmpty():
            # Not watched live from this window: tell the run's story from the store.
            for stage_row in run.stages:
                when = f" at {stage_row.finished_at:%Y-%m-%d %H:%M}" if stage_row.finished_at else ""
                error = f": {stage_row.error}" if stage_row.error else ""
                self.log_view.appendPlainText(f"[{stage_row.name}] {stage_row.status.value}{when}{error}")
            for artifact in run.artifacts:
                self.log_view.appendPlainText(f"  {artifact.kind}: {artifact.path}")
        for index, name in enumerate(sorted(curves)):
            if name not in self.curves:
                self.curves[name] = self.plot.plot(name=name, pen=pg.mkPen(COLOURS[index % len(COLOURS)], width=1.5))
            self.curves[name].setData(curves[name].steps, curves[name].values)
        if not self._zoom_timer.isActive():  # a zoom's finer read comes next: keep the curves meanwhile
            for name in set(self.curves) - set(curves):
                self.plot.removeItem(self.curves.pop(name))
        self.curve_width = max((c.width for c in curves.values()), default=1)
        self._update_buttons(run.status.value)

    def _range_changed(self, *_: object) -> None:
        """Zooming in asks the store for finer detail of the visible steps (once the view settles)."""
        if self.curves and not self.plot.getViewBox().autoRangeEnabled()[0]:  # the user zoomed or panned
            self._zoom_timer.start()
