"""Monitor: per-stage progress with a smoothed ETA, loss curves (following the running stage; log scale,
smoothing, series toggles), the run's whole log from the store, cancel and resume."""

from __future__ import annotations

import re


import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel, QListWidget,
                               QListWidgetItem, QPlainTextEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget)

from engine.api import FAMILIES, STAGES, Curve, RunConfig, RunDetail, Store
from engine.events import Event, format_log_line, log_line
from workbench.background.reader import StoreReader
from workbench.session.monitor_state import MonitorState
from workbench.session.state import Session

MAX_PLOT_POINTS = 2000
#: The stages that record series (losses; the search its best score so far), in the order a run goes.
PLOTTED_STAGES = ("teacher", "supernet", "search", "finetune")
LOG_READ_LINES = 5000  # the newest lines read when a run is first shown; later reads take what is new
ZOOM_SETTLE_MS = 250
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _eta_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"ETA {hours}:{minutes:02d}:{secs:02d}" if hours else f"ETA {minutes}:{secs:02d}"


def smoothed(values: list[float], weight: float) -> list[float]:
    """Exponential moving average (TensorBoard's smoothing), debiased so that the first points are not
    pulled towards zero; weight 0 leaves the values as they are."""
    if weight <= 0:
        return list(values)
    out, average, norm = [], 0.0, 0.0
    for value in values:
        average = weight * average + (1 - weight) * value
        norm = weight * norm + (1 - weight)
        out.append(average / norm)
    return out


class MonitorView(QWidget):
    cancel_requested = Signal(int)
    resume_requested = Signal(int)

    def __init__(self, store: Store, parent: QWidget | None = None):
        super().__init__(parent)
        self.store = store
        self.state = MonitorState()  # what is shown: the view draws from it
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
            self.etas[stage].setMinimumWidth(100)  # "ETA 12:34:56", "cancelled"
            grid.addWidget(QLabel(stage), row, 0)
            grid.addWidget(bar, row, 1)
            grid.addWidget(self.etas[stage], row, 2)

        self._make_loss_plot()
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.error)
        layout.addLayout(grid)
        losses_row = QHBoxLayout()
        losses_row.addWidget(QLabel("Losses of"))
        losses_row.addWidget(self.loss_stage)
        losses_row.addWidget(self.log_scale)
        losses_row.addWidget(QLabel("Smoothing"))
        losses_row.addWidget(self.smoothing)
        losses_row.addStretch(1)
        layout.addLayout(losses_row)
        plot_row = QHBoxLayout()
        plot_row.addWidget(self.plot, 1)
        plot_row.addWidget(self.series)
        layout.addLayout(plot_row, 2)
        layout.addWidget(self.log_view, 1)
        self.set_process_running(False)

    def _make_loss_plot(self) -> None:
        """The losses' plot with its stage, scale and smoothing controls and its list of series; the log view."""
        self.loss_stage = QComboBox()
        self.loss_stage.addItems(list(PLOTTED_STAGES))
        self.loss_stage.setCurrentText("supernet")
        self.loss_stage.setToolTip("The stage whose series are plotted; it follows the running stage until you "
                                   "choose one")
        self.loss_stage.activated.connect(self._stage_chosen)
        self.log_scale = QCheckBox("Log scale")
        self.log_scale.toggled.connect(self._log_scale_toggled)
        self.smoothing = QDoubleSpinBox()
        self.smoothing.setRange(0.0, 0.99)
        self.smoothing.setSingleStep(0.1)
        self.smoothing.setDecimals(2)
        self.smoothing.setToolTip("Exponential moving average of the plotted points (0: none)")
        self.smoothing.valueChanged.connect(lambda _: self._redraw_curves())
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("bottom", "step")
        self.plot.getViewBox().setLimits(xMin=0)  # steps count from 0: no negative axis around a single point

        self.plot.setLabel("left", "loss")
        # The series are listed beside the plot, not in a legend over the curves; unticking one hides it.
        self.series = QListWidget()
        self.series.setMaximumWidth(190)
        self.series.itemChanged.connect(lambda _: self._redraw_curves())
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.reader = StoreReader(self)
        self._zoom_timer = QTimer(self)
        self._zoom_timer.setSingleShot(True)
        self._zoom_timer.setInterval(ZOOM_SETTLE_MS)
        self._zoom_timer.timeout.connect(self.refresh)
        self.plot.getViewBox().sigXRangeChanged.connect(self._range_changed)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(LOG_READ_LINES)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b00020")

    def follow(self, session: Session) -> None:
        """Read from the window session's store, now and whenever another one is opened."""
        def use() -> None:
            self.store = session.store
        session.subscribe(use)
        use()

    # Read-only views of the state, for the window and tests.
    run_id = property(lambda self: self.state.run_id)
    monitor = property(lambda self: self.state.run)

    def set_run(self, run_id: int | None) -> None:
        if self.state.set_run(run_id):
            self.log_view.clear()
            self.reader.forget("monitor")
            self._clear_curves()
            for bar in self.bars.values():
                bar.setMaximum(1)
                bar.setValue(0)
            for eta in self.etas.values():
                eta.setText("")
        self.refresh()

    def _clear_curves(self) -> None:
        for curve in self.curves.values():
            self.plot.removeItem(curve)
        self.curves.clear()
        self.state.curve_data = {}
        self.series.clear()
        # The previous run's (or stage's) axes do not linger over an empty plot.
        self.plot.getViewBox().setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
        self.plot.getViewBox().enableAutoRange()

    def _stage_chosen(self, _index: int) -> None:
        self.state.follow_stage = False
        self._show_stage(self.loss_stage.currentText())

    def _show_stage(self, stage: str) -> None:
        if stage != self.loss_stage.currentText():
            self.loss_stage.setCurrentText(stage)
        self._clear_curves()
        self.refresh()

    def _log_scale_toggled(self, on: bool) -> None:
        self.plot.setLogMode(y=on)
        self._label_axis()
        self.plot.getViewBox().enableAutoRange()

    def _label_axis(self) -> None:
        """Training stages plot losses; the search plots the best score found so far (``best_psnr``...)."""
        label = "best score so far (search split)" if self.loss_stage.currentText() == "search" else "loss"
        self.plot.setLabel("left", f"{label} (log scale)" if self.log_scale.isChecked() else label)

    def set_process_running(self, running: bool) -> None:
        self.state.running = running
        self._update_buttons()

    def _update_buttons(self, status: str | None = None) -> None:
        self.cancel_button.setEnabled(self.state.can_cancel())
        self.resume_button.setEnabled(self.state.can_resume(status))

    def handle_event(self, event: Event) -> None:
        """A live event of the selected run's process: progress and log at once, curves from the store."""
        if self.run_id is None or event.run_id != self.run_id:
            return
        self.monitor.handle(event)
        if log_line(event) is not None:
            self.refresh()  # the pipeline wrote the line to the store: show it from there, in its order
        stage = self.monitor.stages.get(getattr(event, "stage", ""), None)
        if stage is not None and stage.name in self.bars:
            if stage.status == "finished":
                self._set_bar(stage.name, 1, 1)
                self.etas[stage.name].setText("done")
            else:
                self._set_bar(stage.name, stage.step, stage.total)
                self.etas[stage.name].setText(_eta_text(stage.eta_seconds()))
            if self.state.follow_stage and stage.status == "running" and stage.name in PLOTTED_STAGES \
                    and stage.name != self.loss_stage.currentText():
                self._show_stage(stage.name)

    def _show_outcome(self, status: str, message: str) -> None:
        """A failure in red; a stop the user asked for is no error: said plainly, with the Resume button beside
        it instead of the command line's resume command."""
        if status == "cancelled":
            message = re.sub(r"; (resume|continue) with: python main\.py resume \d+", "", message)
            self.error.setText(f"{message}. Resume continues from there." if message else "")
            self.error.setStyleSheet("color: #555")
        else:
            self.error.setText(message)
            self.error.setStyleSheet("color: #b00020")

    def _set_bar(self, stage: str, step: int, total: int | None, *, reset: bool = False) -> None:
        """Progress never goes backwards on the same total (the store's record lags the live events by up to
        ``log_every`` steps); a new total (a stage redone, a search that counted its candidates) starts over."""
        bar = self.bars[stage]
        maximum = total or 1
        value = min(step, maximum) if total else 0
        if bar.maximum() == maximum and not reset:
            value = max(value, bar.value())
        bar.setMaximum(maximum)
        bar.setValue(value)

    def refresh(self) -> None:
        """Stages, the log lines not yet shown and the loss curves from the store (the source of truth), read
        in the background: the curves are downsampled by the store's query (whole range, or the zoomed-in
        range at finer detail)."""
        if self.run_id is None:
            self.title.setText("Select a run")
            self._update_buttons()
            return
        store, run_id, stage = self.store, self.run_id, self.loss_stage.currentText()
        view_box = self.plot.getViewBox()
        zoomed = bool(self.curves) and not view_box.autoRangeEnabled()[0]
        start, stop = (int(max(0, v)) for v in view_box.viewRange()[0]) if zoomed else (None, None)
        after = self.state.log_after

        def read() -> tuple[RunDetail, dict[str, Curve], list[tuple]]:
            lines = store.log_lines(run_id, after_id=after, limit=None if after else LOG_READ_LINES)
            return (store.run_detail(run_id), store.curves(run_id, stage, max_points=MAX_PLOT_POINTS, start=start,
                                                         stop=stop), lines)

        self.reader.read("monitor", read, lambda result, run_id=run_id, stage=stage: self._show(run_id, stage, *result))

    def _show(self, run_id: int, stage: str, run: RunDetail, curves: dict[str, Curve], lines: list[tuple]) -> None:
        if run_id != self.run_id or stage != self.loss_stage.currentText():
            return  # another run or stage was chosen meanwhile
        self.title.setText(f"Run {run.id}: {run.name} ({run.family}, {run.dataset}) - {run.status}")
        self.state.loss_order = FAMILIES.get(run.family).loss_names if run.family in FAMILIES else ()
        self._label_axis()
        self._show_outcome(run.status, run.error or "")
        running_stage = None
        for stage_row in run.stages:
            if stage_row.name not in self.bars:
                continue
            status = stage_row.status
            if status == "finished":
                self._set_bar(stage_row.name, 1, 1)
                self.etas[stage_row.name].setText("done")
                continue
            self._set_bar(stage_row.name, stage_row.step, stage_row.total_steps, reset=status == "pending")
            if status == "running":
                running_stage = stage_row.name
                live = self.monitor.stages.get(stage_row.name)
                self.etas[stage_row.name].setText(_eta_text(live.eta_seconds()) if live else "")
            else:
                self.etas[stage_row.name].setText(status if status != "pending" else "")
        self._append_log(run, lines)
        if self.state.follow_stage and running_stage in PLOTTED_STAGES and running_stage != stage:
            self._show_stage(running_stage)
            return
        self.state.curve_data = curves
        self._redraw_curves()
        self._explain_empty_plot(run, stage, curves)
        if not self._zoom_timer.isActive():  # a zoom's finer read comes next: keep the curves meanwhile
            for name in set(self.curves) - set(curves):
                self.plot.removeItem(self.curves.pop(name))
        self.state.curve_width = max((c.width for c in curves.values()), default=1)
        self._update_buttons(run.status)

    def _explain_empty_plot(self, run: RunDetail, stage: str, curves: dict[str, Curve]) -> None:
        """An empty plot says why: nothing recorded yet (the first point comes at the first logging step), or
        the stage has not run."""
        if curves:
            self.plot.setTitle(None)
            return
        shown = run.stage(stage)
        status = shown.status if shown else "pending"
        every = run.config.get("log_every", RunConfig.model_fields["log_every"].default)
        if status != "running":
            title = f"{stage}: nothing recorded yet ({status})"
        elif stage == "search":  # the search plots its best score, one point per scored sub-network
            title = "search: the best score so far appears as the first sub-networks are scored"
        else:
            title = f"{stage}: the first losses are recorded at step {every} (then every {every} steps)"
        self.plot.setTitle(title, color="#666", size="9pt")

    def _append_log(self, run: RunDetail, lines: list[tuple]) -> None:
        scrollbar = self.log_view.verticalScrollBar()
        at_end = scrollbar.value() >= scrollbar.maximum() - 2
        lines, replace = self.state.new_log_lines(lines)
        if replace:  # the stage story below came first: the store's log replaces it
            self.log_view.clear()
        if lines:
            for _id, at, level, text in lines:
                self.log_view.appendPlainText(f"{at.astimezone():%H:%M:%S}  {format_log_line(level, text)}")
        elif self.log_view.document().isEmpty():
            # A run from before the store kept logs: tell its story from its stages and artifacts.
            for stage_row in run.stages:
                when = f" at {stage_row.finished_at:%Y-%m-%d %H:%M}" if stage_row.finished_at else ""
                error = f": {stage_row.error}" if stage_row.error else ""
                self.log_view.appendPlainText(f"[{stage_row.name}] {stage_row.status}{when}{error}")
            for artifact in run.artifacts:
                self.log_view.appendPlainText(f"  {artifact.kind}: {artifact.path}")
        if at_end or lines and len(lines) == self.log_view.blockCount():
            scrollbar.setValue(scrollbar.maximum())  # follow the end unless the user scrolled up to read

    def _redraw_curves(self) -> None:
        """The curves of the shown stage, smoothed as asked; the series list ticks which are shown."""
        names = self.state.series_order()
        known = {self.series.item(i).text(): self.series.item(i) for i in range(self.series.count())}
        self.series.blockSignals(True)
        for index, name in enumerate(names):
            colour = COLOURS[index % len(COLOURS)]
            if name not in known:
                item = QListWidgetItem(name)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Unchecked if name in self.state.hidden_series
                                   else Qt.CheckState.Checked)
                item.setForeground(QBrush(QColor(colour)))
                self.series.addItem(item)
                known[name] = item
        self.series.blockSignals(False)
        self.state.hidden_series = {name for name, item in known.items()
                                    if item.checkState() != Qt.CheckState.Checked}
        weight = self.smoothing.value()
        for index, name in enumerate(names):
            if name not in self.curves:
                self.curves[name] = self.plot.plot(name=name, pen=pg.mkPen(COLOURS[index % len(COLOURS)], width=1.5))
            curve = self.state.curve_data[name]
            self.curves[name].setData(curve.steps, smoothed(list(curve.values), weight))
            # A lone point draws no line: a dot shows it.
            self.curves[name].setSymbol("o" if len(curve.steps) == 1 else None)
            self.curves[name].setSymbolBrush(COLOURS[index % len(COLOURS)])
            self.curves[name].setSymbolSize(7)
            self.curves[name].setVisible(name not in self.state.hidden_series)

    def _range_changed(self, *_: object) -> None:
        """Zooming in asks the store for finer detail of the visible steps (once the view settles)."""
        if self.curves and not self.plot.getViewBox().autoRangeEnabled()[0]:  # the user zoomed or panned
            self._zoom_timer.start()
