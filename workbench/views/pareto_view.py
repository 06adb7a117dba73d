"""Pareto view: every scored candidate on a metric-vs-MACs scatter (or metric vs predicted latency, for
searches that predict it, or vs latency measured end to end, for searches whose budget was decided on it) as its
event arrives, the Pareto front as a line with its points marked, the budget
as a vertical line, hover details, click to select, overlays of other runs, PNG and CSV export.

Built for searches of 10^5 candidates: a run's candidates are read off the GUI thread into columns
(``CandidateTable``) and drawn as scatter items of ``CHUNK`` points each, so a new candidate re-sets only
the last chunk; arriving candidates are buffered and drawn a few times a second; the front is kept
incrementally; hover and click find the nearest point with one vectorised pass, not per-spot objects."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QPushButton, QSplitter, QVBoxLayout, QWidget)

from engine.events import CandidateScored, Event
from engine.api import HIGHER_IS_BETTER, PRIMARY_METRICS, CandidateTable, Store, TeacherReference
from workbench.background.reader import StoreReader
from workbench.session.pareto_state import ParetoState, size_text
from workbench.session.state import ParetoFront, RunPoints, RunReferences, Session, write_candidates_csv

RUN_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"]
CHUNK = 4096  # points per scatter item: re-setting one costs a few ms
FLUSH_INTERVAL_MS = 250  # arriving candidates are drawn at most this often
PICK_RADIUS_PX = 12
PASS_BUDGET_S = 0.015  # GUI-thread time one pass of the event loop may spend drawing chunks
#: Legend offsets (pyqtgraph: positive x from the left, positive y from the top) by higher-is-better.
LEGEND_OFFSETS = {True: (10, 10), False: (10, -10)}
#: The x axes: a candidate's column, its value per plotted unit, the axis label.
X_AXES = {"MACs": ("macs", 1e6, "MACs (M)"), "Predicted latency": ("latency_ms", 1.0, "predicted latency (ms)"),
          "Measured latency": ("measured_ms", 1.0, "measured latency (ms)")}
#: Why a latency axis is not offered for a run (it has none of those values).
NO_LATENCY = {"latency_ms": "this run has no predicted latencies: search with a latency budget or "
                            "search: {predict_latency: true}",
              "measured_ms": "this run has no measured latencies: search with a latency budget (or "
                             "search.speedup_budget) and search.latency_decision: measured"}


def _tip(row: dict[str, Any]) -> str:
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in row["metrics"].items())
    latency = f"\npredicted latency {row['latency_ms']:.3g} ms" if row.get("latency_ms") else ""
    if row.get("measured_ms"):
        latency += f"\nmeasured latency {row['measured_ms']:.3g} ms"
    return (f"run {row['run_id']}: {row['arch']}\n{row['macs'] / 1e6:.2f}M MACs, {row['params'] / 1e6:.4f}M params\n"
            f"{metrics}{latency}")


def _axis_label(metric: str | None) -> str:
    if not metric:
        return "metric"
    unit = "dB, " if metric.startswith("psnr") else ""
    return f"{metric} ({unit}{'higher' if HIGHER_IS_BETTER.get(metric, False) else 'lower'} is better)"


class _RunLayer(RunPoints):
    """A run's points (Qt-free: ``workbench.session.state.RunPoints``) with the plot items that draw them."""

    def __init__(self, run_id: int, colour: str):
        super().__init__(run_id)
        self.colour = colour
        self.chunks: list[pg.ScatterPlotItem] = []
        self.dirty_from = 0  # chunks from this index on wait to be drawn
        self.x = np.zeros(0)
        self.y = np.zeros(0)
        self.front_marks = pg.ScatterPlotItem(size=11, symbol="d", pen=pg.mkPen("#000", width=1),
                                              brush=pg.mkBrush(colour))
        self.front_marks.setZValue(5)  # above every run's cloud of points

    def items(self) -> list[pg.GraphicsObject]:
        return [*self.chunks, self.front_marks]


class ParetoView(QWidget):
    candidate_selected = Signal(int, str)  # run id, arch

    def __init__(self, store: Store, parent: QWidget | None = None):
        super().__init__(parent)
        self.store = store
        self.reader = StoreReader(self)
        # The run shown, the selection, overlays, budgets and the axes' state (Qt-free: workbench.session).
        self.state = ParetoState()
        self.layers: dict[int, _RunLayer] = {}

        self._make_controls()
        self._make_plot()
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(FLUSH_INTERVAL_MS)
        self._flush_timer.timeout.connect(self.flush)
        self._chunk_timer = QTimer(self)
        self._chunk_timer.setSingleShot(True)
        self._chunk_timer.setInterval(0)
        self._chunk_timer.timeout.connect(self._draw_dirty_chunks)
        self._lay_out()

    @property
    def run_id(self) -> int | None:
        return self.state.run_id

    @property
    def selected(self) -> dict[str, Any] | None:
        return self.state.selected

    @property
    def references(self) -> RunReferences:
        return self.state.references

    def _make_controls(self) -> None:
        """The metric and axis choices, the overlay list, the export buttons and the status line."""
        self.metric_choice = QComboBox()
        self.metric_choice.currentTextChanged.connect(lambda _: self._metric_changed())
        self.x_choice = QComboBox()
        self.x_choice.addItems(list(X_AXES))
        self.x_choice.setToolTip("Plot the metric against MACs, against the latency the search predicted from "
                                 "its latency table (runs with a latency budget or search.predict_latency), or "
                                 "against the latency it measured end to end (a budget decided on measurement)")
        self.x_choice.currentTextChanged.connect(lambda _: self._x_changed())
        self.include_dominated = QCheckBox("Show dominated points")
        self.include_dominated.setChecked(True)
        self.include_dominated.toggled.connect(self._show_dominated)
        self.overlays = QListWidget()
        self.overlays.setMaximumWidth(220)
        self.overlays.itemChanged.connect(lambda _: (self.reload(), self._note_sizes()))
        self.overlay_note = QLabel()
        self.overlay_note.setWordWrap(True)
        self.overlay_note.setMaximumWidth(220)
        self.overlay_note.setStyleSheet("color: #8a6d00")
        self.overlay_note.hide()
        self.png_button = QPushButton("Export PNG…")
        self.png_button.clicked.connect(lambda: self._ask_and_export(self.export_png, "png", "PNG image (*.png)"))
        self.export_note = QLabel()  # where the last export went: a save dialog closes without a word
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.clicked.connect(lambda: self._ask_and_export(self.export_csv, "csv", "CSV (*.csv)"))
        self.status = QLabel("Points appear here as the search scores them.")
        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip("Fit the axes to every shown point, the budget and the teacher (they then grow as "
                                   "points arrive, without jumping)")
        self.fit_button.clicked.connect(self.fit_axes)

    def _make_plot(self) -> None:
        """The plot with its front, budget and teacher lines, the hovered and selected point, and the legend."""
        self.plot = pg.PlotWidget(background="w")
        for side in ("left", "bottom"):
            # Values as they are: pyqtgraph would rescale an ssim axis to "(x0.001)" with ticks 440-590.
            self.plot.getAxis(side).enableAutoSIPrefix(False)
        self.plot.setLabel("bottom", "MACs (M)")
        # No grid: pyqtgraph draws it with the axes, so every redraw of the points would repaint the axes too
        # (as costly as 10^5 points).
        self.front = pg.PlotDataItem(pen=pg.mkPen("#333", width=2))
        self.front.setZValue(10)
        self.plot.addItem(self.front)
        self.budget_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#b00020", style=Qt.PenStyle.DashLine),
                                           label="budget", labelOpts={"position": 0.05, "color": "#b00020"})
        self.plot.addItem(self.budget_line)
        self.budget_line.hide()
        # The teacher as the reference: a level line at its score (its MACs, far to the right, in the label).
        self.teacher_line = pg.InfiniteLine(angle=0, pen=pg.mkPen("#555", width=1, style=Qt.PenStyle.DotLine),
                                            label="teacher", labelOpts={"position": 0.8, "color": "#333",
                                                                        "anchors": [(0.5, 1.0), (0.5, 1.0)]})
        self.plot.addItem(self.teacher_line)
        self.teacher_line.setZValue(30)  # its words above every run's points (overlays included), on a pale fill
        self.teacher_line.label.fill = pg.mkBrush(255, 255, 255, 210)
        self.teacher_line.hide()
        view_box = self.plot.getViewBox()
        view_box.disableAutoRange()
        view_box.sigRangeChangedManually.connect(self._user_moved_axes)
        self.highlight = pg.ScatterPlotItem(size=16, pen=pg.mkPen("#000", width=2), brush=None, symbol="o")
        self.highlight.setZValue(20)
        self.plot.addItem(self.highlight)
        # The hovered candidate's details, drawn in the plot beside it: they stay while the pointer rests there
        # (a QToolTip timed out after about a second) and go when it leaves the point.
        self.hover_label = pg.TextItem(color="#000", fill=pg.mkBrush(255, 255, 225, 235), border=pg.mkPen("#888"),
                                       anchor=(0, 1))
        self.hover_label.setZValue(100)
        self.hover_label.hide()
        self.plot.addItem(self.hover_label, ignoreBounds=True)
        # An opaque box above the data: the teacher's and the budget's lines pass behind it, not through it.
        self.legend = self.plot.addLegend(offset=LEGEND_OFFSETS[False], brush=pg.mkBrush(255, 255, 255, 235),
                                          pen=pg.mkPen("#bbb"))
        self.legend.setZValue(1000)
        self.legend.addItem(self.front, "Pareto front")
        self._hover_proxy = pg.SignalProxy(self.plot.scene().sigMouseMoved, rateLimit=30, slot=self._hovered)
        self.plot.scene().sigMouseClicked.connect(self._clicked)

    def _lay_out(self) -> None:
        """The controls above the plot, the overlay list beside it, the status line under it."""
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Metric"))
        controls.addWidget(self.metric_choice)
        controls.addWidget(QLabel("against"))
        controls.addWidget(self.x_choice)
        controls.addWidget(self.include_dominated)
        controls.addStretch(1)
        controls.addWidget(self.fit_button)
        controls.addWidget(self.png_button)
        controls.addWidget(self.csv_button)
        controls.addWidget(self.export_note)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.addWidget(QLabel("Overlay runs"))
        side_layout.addWidget(self.overlays)
        side_layout.addWidget(self.overlay_note)
        splitter = QSplitter()
        splitter.addWidget(self.plot)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 4)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)

    # --- which runs -------------------------------------------------------------------------------
    def set_runs(self, runs: list[tuple[int, str]], sizes: dict[int, Any] | None = None) -> None:
        """The runs that can be overlaid (id, name), and the image size of every run (``sizes``, where known)."""
        if not self.state.offer_runs(runs, sizes):
            self._note_sizes()
            return
        checked = self.overlay_ids()
        self.overlays.blockSignals(True)
        self.overlays.clear()
        for run_id, name in runs:
            size = self.state.sizes.get(run_id)
            item = QListWidgetItem(f"{run_id}: {name}" + (f" ({size_text(size)})" if size is not None else ""))
            item.setData(Qt.ItemDataRole.UserRole, run_id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if run_id in checked else Qt.CheckState.Unchecked)
            self.overlays.addItem(item)
        self.overlays.blockSignals(False)
        self._hide_selected_overlay()

    def _hide_selected_overlay(self) -> None:
        """The shown run is drawn anyway: it is not offered as an overlay of itself."""
        for index in range(self.overlays.count()):
            item = self.overlays.item(index)
            item.setHidden(item.data(Qt.ItemDataRole.UserRole) == self.run_id)
        self._note_sizes()

    def _note_sizes(self) -> None:
        """Say so where overlaid runs were searched at another image size (``ParetoState.size_note``)."""
        note = self.state.size_note(self.overlay_ids())
        self.overlay_note.setText(note)
        self.overlay_note.setVisible(bool(note))

    def overlay_ids(self) -> set[int]:
        return {self.overlays.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.overlays.count())
                if self.overlays.item(i).checkState() == Qt.CheckState.Checked}

    def follow(self, session: Session) -> None:
        """Read from the window session's store and save exports in its workspace, now and whenever they change."""
        def use() -> None:
            self.store, self.state.export_dir = session.store, session.settings.exports_dir
        session.subscribe(use)
        use()

    def set_run(self, run_id: int | None, budget: float | None = None, teacher: TeacherReference | None = None,
                latency_budget: tuple[float, str] | None = None, measured: bool = False) -> None:
        """Show ``run_id``, with its MACs budget, its latency budget (ms, how it is decided: ``measured`` end to
        end, else predicted) and its teacher's scores on the search split when known."""
        if self.state.show_run(run_id):
            self.hover_label.hide()
            # The previous run's axes do not linger over a plot with no points yet.
            self.plot.getViewBox().setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
        self._hide_selected_overlay()
        if run_id is not None:
            self.references.update(run_id, budget, teacher, latency_budget, measured)
            self._latency_axis_first(run_id, budget, latency_budget, measured)
        self.reload()

    def _latency_axis_first(self, run_id: int, budget: float | None, latency_budget: tuple[float, str] | None,
                            measured: bool) -> None:
        """A run searched by latency alone is shown against it (predicted or measured, as it was decided)."""
        axis = self.state.latency_axis_first(run_id, budget, latency_budget, measured)
        if axis is not None:
            if self.x_choice.currentText() != axis:
                self.state.fit_anew()  # another axis: fitted to it
            self.x_choice.blockSignals(True)
            self.x_choice.setCurrentText(axis)
            self.x_choice.blockSignals(False)
            self.plot.setLabel("bottom", X_AXES[axis][2])

    def set_references(self, run_id: int, budget: float | None = None, teacher: TeacherReference | None = None,
                       latency_budget: tuple[float, str] | None = None, measured: bool = False) -> None:
        """What became known of a run's search since it was shown (its teacher's scores and its budgets, read off
        the GUI thread, or written as the search starts): drawn at once."""
        if self.references.update(run_id, budget, teacher, latency_budget, measured):
            self._latency_axis_first(run_id, budget, latency_budget, measured)
            self.redraw()

    def reload(self) -> None:
        """Show the selected run and the checked overlays; runs not yet read are read in the background."""
        shown = ({self.run_id} if self.run_id is not None else set()) | self.overlay_ids()
        for run_id in set(self.layers) - shown:
            self._remove_layer(run_id)
        for run_id in sorted(shown):
            if run_id not in self.layers:
                layer = _RunLayer(run_id, RUN_COLOURS[len(self.layers) % len(RUN_COLOURS)])
                self.layers[run_id] = layer
                self.legend.addItem(layer.front_marks, f"run {run_id} (front marked)")
                self._read(run_id)
        # The runs already drawn stay as they are; a new one is drawn when its read arrives.
        self._draw_decorations()

    def _read(self, run_id: int) -> None:
        store = self.store
        self.reader.read(f"candidates:{run_id}", lambda: store.candidate_table(run_id),
                         lambda table, run_id=run_id: self._loaded(run_id, table))

    def _loaded(self, run_id: int, table: CandidateTable) -> None:
        layer = self.layers.get(run_id)
        if layer is None:
            return  # no longer shown
        layer.load(table)  # with the events that came while the read ran
        metric = self.metric_name()
        self._sync_metrics()
        if self.metric_name() != metric:
            self.redraw()  # the first metric, or another: every run is drawn again
            return
        self._draw_layer(layer, metric)  # only this run: the others are drawn already
        self._draw_decorations()

    def _remove_layer(self, run_id: int) -> None:
        layer = self.layers.pop(run_id)
        self.reader.forget(f"candidates:{run_id}")
        self.legend.removeItem(layer.front_marks)
        for item in layer.items():
            self.plot.removeItem(item)

    def is_loading(self) -> bool:
        """A shown run is still being read or drawn."""
        return any(not layer.loaded for layer in self.layers.values()) or self.drawing()

    def count(self, run_id: int) -> int:
        layer = self.layers.get(run_id)
        return 0 if layer is None else layer.count()

    # --- live candidates --------------------------------------------------------------------------
    def handle_event(self, event: Event) -> None:
        """Costs the GUI thread almost nothing: the candidate is buffered and drawn with the next flush."""
        if isinstance(event, CandidateScored) and event.run_id in self.layers:
            self.layers[event.run_id].receive(event)
            if not self._flush_timer.isActive():
                self._flush_timer.start()

    def flush(self) -> None:
        """Draw the buffered candidates: the last chunk of each run re-set, the front updated in place."""
        metric = self.metric_name()
        self._sync_metrics()
        if self.metric_name() != metric:
            self.redraw()
            return
        for layer in self.layers.values():
            if not layer.loaded or not layer.pending:
                continue
            start = len(layer.table)
            self._draw_new_rows(layer, start, layer.merge_pending(), metric)
        self._draw_dirty_chunks()  # the last chunks, now: one repaint per flush
        self._draw_decorations()

    def _draw_new_rows(self, layer: _RunLayer, start: int, replaced: int, metric: str | None) -> None:
        """Rows from ``start`` on are new: the front takes them in place (the run is drawn again when some
        replaced earlier rows, which moves the rows after them)."""
        if replaced:
            self._draw_layer(layer, metric)
            return
        scores = self._front_scores(layer, metric)
        x = self._x_column(layer)
        for row in range(start, len(layer.table)):
            layer.front.add(float(x[row]), float(scores[row]), row)
        self._update_xy(layer, metric)
        self._draw_chunks(layer, first_chunk=start // CHUNK)
        self._draw_front_marks(layer)

    def catch_up(self, run_id: int, stored: int) -> None:
        """A run that sends this window no events (it runs elsewhere: another machine, a cluster, a shell):
        when the store holds more candidates than are drawn, the new ones are read (only those, by id) and
        drawn as live ones are."""
        layer = self.layers.get(run_id)
        key = f"more:{run_id}"
        if layer is None or not layer.loaded or stored <= len(layer.table) or self.reader.busy(key):
            return
        last = int(layer.table.ids.max()) if len(layer.table) else 0
        store = self.store
        self.reader.read(key, lambda: store.candidate_table(run_id, after_id=last),
                         lambda table, run_id=run_id: self._caught_up(run_id, table))

    def _caught_up(self, run_id: int, table: CandidateTable) -> None:
        layer = self.layers.get(run_id)
        if layer is None or not len(table):
            return
        metric = self.metric_name()
        start = len(layer.table)
        replaced = layer.table.extend(table)
        self._sync_metrics()
        if self.metric_name() != metric:
            self.redraw()
            return
        self._draw_new_rows(layer, start, replaced, metric)
        self._draw_dirty_chunks()
        self._draw_decorations()

    # --- drawing ----------------------------------------------------------------------------------
    def metric_name(self) -> str | None:
        return self.metric_choice.currentText() or None

    def _sync_metrics(self) -> None:
        names = sorted(set().union(*(layer.metric_names() for layer in self.layers.values())))
        current = self.metric_choice.currentText()
        if names != [self.metric_choice.itemText(i) for i in range(self.metric_choice.count())]:
            self.metric_choice.blockSignals(True)
            self.metric_choice.clear()
            self.metric_choice.addItems(names)
            preferred = next((n for n in PRIMARY_METRICS if n in names), names[0] if names else "")
            self.metric_choice.setCurrentText(current if current in names else preferred)
            self.metric_choice.blockSignals(False)

    def redraw(self) -> None:
        """Everything from the runs' tables (a new metric, a loaded run); live candidates use ``flush``."""
        for layer in self.layers.values():
            if layer.loaded:
                layer.merge_pending()
        self._sync_metrics()
        metric = self.metric_name()
        self.hover_label.hide()  # it named a point by the values drawn before
        self.state.fitted = False  # another metric (or everything anew): the axes fit again, unless the user's
        self.plot.setLabel("left", _axis_label(metric))
        # The legend goes where no candidate can be: beyond the front on the side of few MACs and good
        # scores (no sub-network there beats the front), i.e. top left for higher-is-better, bottom left else.
        self.legend.setOffset(LEGEND_OFFSETS[HIGHER_IS_BETTER.get(metric or "", False)])
        for layer in self.layers.values():
            self._draw_layer(layer, metric)
        self._draw_decorations()

    def _budget_x(self) -> float | None:
        """The shown run's budget on the x axis shown (MACs in M, or ms), if it has one."""
        budget = self.state.budget_on(self.x_column())
        return budget[0] if budget else None

    def has_latency(self, column: str) -> bool:
        """Whether the shown run has latencies in ``column`` (``latency_ms`` predicted, ``measured_ms``) to plot:
        a candidate with one, or (before any arrived) a latency budget decided that way."""
        layer = self.layers.get(self.run_id) if self.run_id is not None else None
        if layer is not None and bool(np.isfinite(getattr(layer.table, column)).any()):
            return True
        return self.state.latency_decided_on(column)

    def _offer_x_axes(self) -> None:
        """A latency axis is offered only for a run that has such latencies; else the plot is against MACs."""
        for name, (column, _, _) in X_AXES.items():
            if column == "macs":
                continue
            has = self.has_latency(column)
            item = self.x_choice.model().item(list(X_AXES).index(name))
            item.setEnabled(has)
            item.setToolTip("" if has else NO_LATENCY[column])
            if not has and self.x_column() == column and self.run_id is not None:
                self.x_choice.setCurrentText("MACs")  # redraws against MACs

    def _draw_decorations(self) -> None:
        """The selected run's front line, its budget, the highlight and the status line."""
        self._offer_x_axes()
        self._draw_front_line()
        budget = self.state.budget_on(self.x_column())
        if budget:
            value, conditions = budget
            self.budget_line.setValue(value)
            self.budget_line.label.setFormat(f"budget ({conditions})" if conditions else "budget")
            self.budget_line.show()
        else:
            self.budget_line.hide()
        level = self._teacher_level()
        if level is not None:
            teacher = self.references.teachers[self.run_id]  # type: ignore[index]
            self.teacher_line.setValue(level)
            self.teacher_line.show()  # before the text: a hidden label does not take it
            text = (f"teacher {self.metric_name()} {level:.4g} "
                    f"({teacher.macs / 1e9:.3g}G MACs, {teacher.split} split)")
            self.teacher_line.label.setFormat(text.replace("{", "{{").replace("}", "}}"))
        else:
            self.teacher_line.hide()
        self._draw_highlight()
        self._grow_axes()
        self._update_status()

    def _teacher_level(self) -> float | None:
        return self.state.teacher_level(self.metric_name())

    # --- axes ---------------------------------------------------------------------------------------
    def _bounds(self) -> tuple[float, float, float, float] | None:
        """x from 0 to the farthest point or the budget; y over the points and the teacher's level."""
        xs, ys = [], []
        for layer in self.layers.values():
            if len(layer.y):
                finite = ~np.isnan(layer.y) & ~np.isnan(layer.x)
                if finite.any():
                    xs.append(float(layer.x[finite].max()))
                    ys += [float(layer.y[finite].min()), float(layer.y[finite].max())]
        budget = self._budget_x()
        if budget:
            xs.append(budget)
        level = self._teacher_level()
        if level is not None:
            ys += [level, level]
        if not xs or not ys:
            return None
        return 0.0, max(xs), min(ys), max(ys)

    def fit_axes(self) -> None:
        self.state.auto_axes = True
        self._grow_axes(refit=True)

    def _grow_axes(self, refit: bool = False) -> None:
        """Stable axes while points arrive: the range is set with headroom, and changes only when a point
        falls outside it (or on "Fit"), never with every new point."""
        bounds = self._bounds()
        if not self.state.auto_axes or bounds is None:
            return
        x0, x1, y0, y1 = bounds
        (cx0, cx1), (cy0, cy1) = self.plot.getViewBox().viewRange()
        if not refit and cx0 <= x0 and x1 <= cx1 and cy0 <= y0 and y1 <= cy1 and self.state.fitted:
            return
        span = (y1 - y0) or max(abs(y1), 1.0) * 0.1
        self.plot.getViewBox().setRange(xRange=(0.0, x1 * 1.08 or 1.0), yRange=(y0 - 0.12 * span, y1 + 0.12 * span),
                                        padding=0)
        self.state.fitted = True

    def _user_moved_axes(self, *_: object) -> None:
        self.state.user_moved_axes()

    # --- the x axis -----------------------------------------------------------------------------------
    def x_column(self) -> str:
        """``macs``, ``latency_ms`` (predicted) or ``measured_ms``: what the x axis shows."""
        return X_AXES[self.x_choice.currentText()][0]

    def _x_column(self, layer: _RunLayer) -> np.ndarray:
        return getattr(layer.table, self.x_column()).astype(float)

    def _front_scores(self, layer: _RunLayer, metric: str | None) -> np.ndarray:
        """The scores the front is made of: none for candidates without the x value (no prediction)."""
        scores = layer.table.scores(metric).astype(float)
        return np.where(np.isnan(self._x_column(layer)), math.nan, scores)

    def plot_x(self, value: float) -> float:
        """A candidate's x value (MACs, or ms) in the plotted unit."""
        return value / X_AXES[self.x_choice.currentText()][1]

    def _metric_changed(self) -> None:
        # Another metric has another scale (ssim in 0-1 against psnr in dB): a range the user chose for the old
        # one says nothing about the new one, so the axes fit it.
        self.state.fit_anew()
        self.redraw()

    def _x_changed(self) -> None:
        self.plot.setLabel("bottom", X_AXES[self.x_choice.currentText()][2])
        self.state.fit_anew()
        self.redraw()

    def _update_xy(self, layer: _RunLayer, metric: str | None) -> None:
        values = layer.table.metrics.get(metric or "")
        layer.x = self.plot_x(self._x_column(layer))
        layer.y = values if values is not None else np.full(len(layer.table), math.nan)

    def _draw_layer(self, layer: _RunLayer, metric: str | None) -> None:
        layer.front = ParetoFront(self._x_column(layer), self._front_scores(layer, metric))
        self._update_xy(layer, metric)
        self._draw_chunks(layer, first_chunk=0)
        self._draw_front_marks(layer)

    def _draw_chunks(self, layer: _RunLayer, first_chunk: int) -> None:
        """Chunks from ``first_chunk`` on are drawn again, a few per pass of the event loop (one chunk takes a
        few ms), so that drawing a run of 10^5 points never holds the loop for long."""
        needed = -(-len(layer.table) // CHUNK)
        while len(layer.chunks) > needed:
            self.plot.removeItem(layer.chunks.pop())
        while len(layer.chunks) < needed:
            chunk = pg.ScatterPlotItem(size=7, pen=pg.mkPen(None), brush=pg.mkBrush(layer.colour))
            chunk.setVisible(False)  # shown once drawn
            self.plot.addItem(chunk)
            layer.chunks.append(chunk)
        if first_chunk == 0:
            # Drawn again from the start: hidden meanwhile, so the passes in between do not paint them.
            for chunk in layer.chunks:
                chunk.setVisible(False)
        layer.dirty_from = min(layer.dirty_from, first_chunk)
        if layer.dirty_from < needed and not self._chunk_timer.isActive():
            self._chunk_timer.start()

    def _draw_dirty_chunks(self) -> None:
        started = time.perf_counter()
        for layer in self.layers.values():
            while layer.dirty_from < len(layer.chunks):
                index = layer.dirty_from
                rows = slice(index * CHUNK, (index + 1) * CHUNK)
                x, y = layer.x[rows], layer.y[rows]
                finite = ~np.isnan(y) & ~np.isnan(x)
                layer.chunks[index].setData(x=x[finite], y=y[finite])
                layer.dirty_from += 1
                if time.perf_counter() - started > PASS_BUDGET_S and layer.dirty_from < len(layer.chunks):
                    self._chunk_timer.start()  # the rest in the next pass
                    # No repaint of what is drawn already between passes (10^5 points cost ~30 ms each time).
                    self.plot.viewport().setUpdatesEnabled(False)
                    return
            shown = self.include_dominated.isChecked()
            for chunk in layer.chunks:
                if chunk.isVisible() != shown:
                    chunk.setVisible(shown)
        if not self.plot.viewport().updatesEnabled():
            self.plot.viewport().setUpdatesEnabled(True)
            self.plot.viewport().update()
        self._update_status()

    def drawing(self) -> bool:
        return any(layer.dirty_from < len(layer.chunks) for layer in self.layers.values())

    def _draw_front_marks(self, layer: _RunLayer) -> None:
        if layer.front_marks.scene() is None:
            self.plot.addItem(layer.front_marks)
        rows = layer.front.rows
        layer.front_marks.setData(x=layer.x[rows], y=layer.y[rows])

    def _draw_front_line(self) -> None:
        layer = self.layers.get(self.run_id) if self.run_id is not None else None
        if layer is None or not len(layer.front):
            self.front.setData([], [])
            return
        self.front.setData(layer.x[layer.front.rows], layer.y[layer.front.rows])

    def _show_dominated(self, shown: bool) -> None:
        for layer in self.layers.values():
            for chunk in layer.chunks:
                chunk.setVisible(shown)

    def _draw_highlight(self) -> None:
        metric = self.metric_name()
        x = self.selected.get(self.x_column()) if self.selected is not None else None
        if self.selected is not None and metric in self.selected["metrics"] and x is not None:
            self.highlight.setData([self.plot_x(x)], [self.selected["metrics"][metric]])
        else:
            self.highlight.setData([], [])

    def _update_status(self) -> None:
        if self.run_id is None:
            self.status.setText("Select a run")
            return
        layer = self.layers.get(self.run_id)
        if layer is not None and not layer.loaded:
            self.status.setText(f"reading the candidates of run {self.run_id}…")
            return
        if self.drawing():
            self.status.setText("drawing…")
            return
        own = len(layer.table) if layer is not None else 0
        front = len(layer.front) if layer is not None else 0
        text = f"run {self.run_id}: {own} candidates, {front} on its front"
        overlaid = [other for run_id, other in self.layers.items() if run_id != self.run_id]
        others = sum(len(other.table) for other in overlaid)
        if overlaid:
            text += f"; {others} more of {len(overlaid)} overlaid run{'s' if len(overlaid) > 1 else ''}"
        total = own + others
        if self.x_column() == "latency_ms":
            predicted = sum(int((~np.isnan(layer.table.latency_ms)).sum()) for layer in self.layers.values())
            if predicted < total:
                text += (f"; {total - predicted} without a predicted latency (not drawn: their search had no "
                         "latency budget and no search.predict_latency)")
        elif self.x_column() == "measured_ms":
            measured = sum(int((~np.isnan(layer.table.measured_ms)).sum()) for layer in self.layers.values())
            if measured < total:
                text += (f"; {total - measured} without a measured latency (not drawn: their search did not "
                         "decide a latency budget on measurement)")
        self.status.setText(text)

    # --- hover and click --------------------------------------------------------------------------
    def nearest(self, scene_pos: QPointF, radius_px: float = PICK_RADIUS_PX) -> dict[str, Any] | None:
        """The candidate drawn nearest to a scene position (within ``radius_px``), as a row dict."""
        view_box = self.plot.getViewBox()
        if not view_box.sceneBoundingRect().contains(scene_pos):
            return None
        at = view_box.mapSceneToView(scene_pos)
        width, height = view_box.viewPixelSize()
        best: tuple[float, _RunLayer, int] | None = None
        for layer in self.layers.values():
            if not len(layer.y):
                continue
            if self.include_dominated.isChecked():
                rows = None
                dx, dy = (layer.x - at.x()) / width, (layer.y - at.y()) / height
            else:
                rows = np.array(layer.front.rows, dtype=int)
                dx, dy = (layer.x[rows] - at.x()) / width, (layer.y[rows] - at.y()) / height
            distance = dx * dx + dy * dy
            if np.isnan(distance).all():
                continue
            index = int(np.nanargmin(distance))
            if best is None or distance[index] < best[0]:
                best = (float(distance[index]), layer, index if rows is None else int(rows[index]))
        if best is None or best[0] > radius_px * radius_px:
            return None
        return best[1].table.row(best[2])

    def view_to_scene(self, x: float, value: float) -> QPointF:
        """Where a candidate with x value ``x`` (MACs, or ms, as the axis shows) and ``value`` is drawn."""
        return self.plot.getViewBox().mapViewToScene(QPointF(self.plot_x(x), value))

    def hideEvent(self, event) -> None:
        self.hover_label.hide()  # a tab switch: the pointer is no longer over the plot
        super().hideEvent(event)

    def leaveEvent(self, event) -> None:
        self.hover_label.hide()
        super().leaveEvent(event)

    def _hovered(self, args: tuple) -> None:
        if not self.isVisible() or self.run_id is None:  # a late move of a plot no longer shown
            self.hover_label.hide()
            return
        row = self.nearest(args[0])
        metric = self.metric_name()
        x = row.get(self.x_column()) if row is not None else None
        if row is None or x is None or metric not in row["metrics"]:
            self.hover_label.hide()
            return
        self.hover_label.setText(_tip(row))
        self.hover_label.setPos(self.plot_x(x), row["metrics"][metric])
        self.hover_label.show()

    def _clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        row = self.nearest(event.scenePos())
        if row is not None:
            self.select(row)

    def select(self, row: dict[str, Any]) -> None:
        self.state.selected = row
        self._draw_highlight()
        self.candidate_selected.emit(row["run_id"], row["arch"])

    def show_selected(self, run_id: int, arch: str | None) -> None:
        """Highlight what another view selected (the compare view's budget slider), without echoing it back; an
        arch this view does not hold (or None: the final student) clears the highlight."""
        self.state.selected = self.row_of(run_id, arch)
        self._draw_highlight()

    def row_of(self, run_id: int, arch: str | None) -> dict[str, Any] | None:
        """The candidate ``arch`` of ``run_id`` as this view holds it, or None (not read, or the final student)."""
        layer = self.layers.get(run_id)
        index = layer.table.row_of(arch) if layer is not None and arch is not None else None
        return layer.table.row(index) if index is not None else None  # type: ignore[union-attr]

    def front_points(self) -> list[dict[str, Any]]:
        """The selected run's front for the shown metric, fewest MACs (or least predicted latency) first."""
        layer = self.layers.get(self.run_id) if self.run_id is not None else None
        return [] if layer is None else [layer.table.row(r) for r in layer.front.rows]

    # --- export -----------------------------------------------------------------------------------
    def suggested_path(self, suffix: str) -> str:
        """The save dialogs start in the workspace's export folder with a name saying what the file holds."""
        return str(self.state.suggested_name(self.metric_name(), suffix))

    def _ask_and_export(self, export, suffix: str, file_filter: str) -> None:
        if self.state.export_dir is not None:
            self.state.export_dir.mkdir(parents=True, exist_ok=True)
        path, _ = QFileDialog.getSaveFileName(self, "Export", self.suggested_path(suffix), file_filter)
        if path:
            self.export_to(export, Path(path))

    def export_to(self, export, path: Path) -> None:
        """Write one export and say where it went (or why not) beside the buttons."""
        try:
            export(path)
        except OSError as exc:
            self.export_note.setText(f"not saved: {exc.strerror or exc} ({path})")
            self.export_note.setStyleSheet("color: #b00020")
            return
        self.export_note.setText(f"saved {path.name}")
        self.export_note.setToolTip(str(path))
        self.export_note.setStyleSheet("color: #1b5e20")

    def export_png(self, path: Path) -> None:
        exporter = pyqtgraph.exporters.ImageExporter(self.plot.plotItem)
        exporter.parameters()["width"] = 1200
        exporter.export(str(path))

    def export_csv(self, path: Path) -> None:
        self.flush()
        write_candidates_csv(path, list(self.layers.values()))
