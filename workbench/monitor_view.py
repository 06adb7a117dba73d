"""Monitor: per-stage progress with ETA, live loss curves, the log tail, cancel and resume."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar,
                               QPushButton, QVBoxLayout, QWidget)

from engine.config import STAGES
from engine.events import Event
from engine.store import Store
from workbench.state import RunMonitor

MAX_PLOT_POINTS = 2000
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
        self.loss_stage.currentTextChanged.connect(lambda _: self.refresh())
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        self.plot.addLegend(offset=(-10, 10))
        self.curves: dict[str, pg.PlotDataItem] = {}
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
            for curve in self.curves.values():
                self.plot.removeItem(curve)
            self.curves.clear()
            self.plot.plotItem.legend.clear()
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
        """Stages and loss series from the store (the source of truth)."""
        if self.run_id is None:
            self.title.setText("Select a run")
            self._update_buttons()
            return
        run = self.store.get_run(self.run_id)
        self.title.setText(f"Run {run.id}: {run.name} ({run.family}, {run.dataset}) - {run.status.value}")
        self.error.setText(run.error or "")
        for stage in run.stages:
            bar = self.bars.get(stage.name)
            if bar is None:
                continue
            if stage.status.value == "finished":
                bar.setMaximum(1)
                bar.setValue(1)
                self.etas[stage.name].setText("done")
            else:
                bar.setMaximum(stage.total_steps or 1)
                bar.setValue(min(stage.step, stage.total_steps or 0))
                if stage.status.value != "running":
                    self.etas[stage.name].setText(stage.status.value if stage.status.value != "pending" else "")
        if self.log_view.document().isEmpty():
            # Not watched live from this window: tell the run's story from the store.
            for stage in run.stages:
                when = f" at {stage.finished_at:%Y-%m-%d %H:%M}" if stage.finished_at else ""
                error = f": {stage.error}" if stage.error else ""
                self.log_view.appendPlainText(f"[{stage.name}] {stage.status.value}{when}{error}")
            for artifact in run.artifacts:
                self.log_view.appendPlainText(f"  {artifact.kind}: {artifact.path}")
        stage = self.loss_stage.currentText()
        names = self.store.metric_names(self.run_id, stage)
        for index, name in enumerate(sorted(names)):
            series = self.store.metric_series(self.run_id, stage, name, max_points=MAX_PLOT_POINTS)
            if name not in self.curves:
                self.curves[name] = self.plot.plot(name=name, pen=pg.mkPen(COLOURS[index % len(COLOURS)], width=1.5))
            self.curves[name].setData([s for s, _ in series], [v for _, v in series])
        for name in set(self.curves) - set(names):
            self.plot.removeItem(self.curves.pop(name))
        self._update_buttons(run.status.value)
