"""Pareto view: every scored candidate on a metric-vs-MACs scatter as its event arrives, the Pareto front
as a line, the budget as a vertical line, hover details, click to select, overlays, PNG and CSV export."""

from __future__ import annotations

import csv
from pathlib import Path

import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QPushButton, QSplitter, QVBoxLayout, QWidget)

from engine.events import CandidateScored, Event
from engine.metrics import HIGHER_IS_BETTER
from engine.store import Store
from workbench.state import Point, pareto_front

RUN_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"]


def _tip(x: float, y: float, data: Point) -> str:
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in data.metrics.items())
    latency = f"\nlatency {data.latency_ms:.2f} ms" if data.latency_ms else ""
    return (f"run {data.run_id}: {data.arch}\n{data.macs / 1e6:.2f}M MACs, {data.params / 1e6:.4f}M params\n"
            f"{metrics}{latency}")


class ParetoView(QWidget):
    candidate_selected = Signal(int, str)  # run id, arch

    def __init__(self, store: Store, parent: QWidget | None = None):
        super().__init__(parent)
        self.store = store
        self.run_id: int | None = None
        self.points: dict[int, list[Point]] = {}
        self.budgets: dict[int, float] = {}
        self.selected: Point | None = None

        self.metric_choice = QComboBox()
        self.metric_choice.currentTextChanged.connect(lambda _: self.redraw())
        self.include_dominated = QCheckBox("Show dominated points")
        self.include_dominated.setChecked(True)
        self.include_dominated.toggled.connect(lambda _: self.redraw())
        self.overlays = QListWidget()
        self.overlays.setMaximumWidth(220)
        self.overlays.itemChanged.connect(lambda _: self.reload())
        png = QPushButton("Export PNG…")
        png.clicked.connect(lambda: self._ask_and_export(self.export_png, "PNG image (*.png)"))
        csv_button = QPushButton("Export CSV…")
        csv_button.clicked.connect(lambda: self._ask_and_export(self.export_csv, "CSV (*.csv)"))
        self.status = QLabel("Points appear here as the search scores them.")

        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("bottom", "MACs (M)")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self.scatters: dict[int, pg.ScatterPlotItem] = {}
        self.front = pg.PlotDataItem(pen=pg.mkPen("#333", width=2), name="Pareto front")
        self.plot.addItem(self.front)
        self.budget_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#b00020", style=Qt.PenStyle.DashLine),
                                           label="budget", labelOpts={"position": 0.05, "color": "#b00020"})
        self.plot.addItem(self.budget_line)
        self.budget_line.hide()
        self.highlight = pg.ScatterPlotItem(size=16, pen=pg.mkPen("#000", width=2), brush=None, symbol="o")
        self.plot.addItem(self.highlight)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Metric"))
        controls.addWidget(self.metric_choice)
        controls.addWidget(self.include_dominated)
        controls.addStretch(1)
        controls.addWidget(png)
        controls.addWidget(csv_button)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.addWidget(QLabel("Overlay runs"))
        side_layout.addWidget(self.overlays)
        splitter = QSplitter()
        splitter.addWidget(self.plot)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 4)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)

    # --- data -------------------------------------------------------------------------------------
    def set_runs(self, runs: list[tuple[int, str]]) -> None:
        """The runs that can be overlaid (id, name)."""
        checked = self.overlay_ids()
        self.overlays.blockSignals(True)
        self.overlays.clear()
        for run_id, name in runs:
            item = QListWidgetItem(f"{run_id}: {name}")
            item.setData(Qt.ItemDataRole.UserRole, run_id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if run_id in checked else Qt.CheckState.Unchecked)
            self.overlays.addItem(item)
        self.overlays.blockSignals(False)

    def overlay_ids(self) -> set[int]:
        return {self.overlays.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.overlays.count())
                if self.overlays.item(i).checkState() == Qt.CheckState.Checked}

    def set_run(self, run_id: int | None, budget: float | None = None) -> None:
        self.run_id = run_id
        if run_id is not None and budget is not None:
            self.budgets[run_id] = budget
        self.reload()

    def reload(self) -> None:
        shown = ({self.run_id} if self.run_id is not None else set()) | self.overlay_ids()
        self.points = {rid: [Point(rid, c.arch, c.macs, c.params, c.metrics, c.latency_ms)
                             for c in self.store.candidates(rid)] for rid in shown}
        self.redraw()

    def handle_event(self, event: Event) -> None:
        if isinstance(event, CandidateScored) and event.run_id in self.points:
            self.points[event.run_id].append(Point(event.run_id, event.arch, event.macs, event.params, event.metrics,
                                                   event.latency_ms))
            self.redraw()

    # --- drawing ----------------------------------------------------------------------------------
    def metric_name(self) -> str | None:
        return self.metric_choice.currentText() or None

    def _sync_metrics(self) -> None:
        names = sorted({m for pts in self.points.values() for p in pts for m in p.metrics})
        current = self.metric_choice.currentText()
        if names != [self.metric_choice.itemText(i) for i in range(self.metric_choice.count())]:
            self.metric_choice.blockSignals(True)
            self.metric_choice.clear()
            self.metric_choice.addItems(names)
            preferred = next((n for n in ("fid", "rfid", "psnr") if n in names), names[0] if names else "")
            self.metric_choice.setCurrentText(current if current in names else preferred)
            self.metric_choice.blockSignals(False)

    def redraw(self) -> None:
        self._sync_metrics()
        metric = self.metric_name()
        self.plot.setLabel("left", metric or "metric")
        higher = HIGHER_IS_BETTER.get(metric or "", False)
        for rid in list(self.scatters):
            if rid not in self.points:
                self.plot.removeItem(self.scatters.pop(rid))
                self.legend.removeItem(f"run {rid}")
        for index, (rid, points) in enumerate(sorted(self.points.items())):
            usable = [p for p in points if metric in p.metrics]
            if not self.include_dominated.isChecked():
                usable = pareto_front(usable, metric, higher) if metric else []
            if rid not in self.scatters:
                colour = RUN_COLOURS[index % len(RUN_COLOURS)]
                scatter = pg.ScatterPlotItem(size=9, pen=pg.mkPen(None), brush=pg.mkBrush(colour), hoverable=True,
                                             hoverSize=13, tip=_tip, name=f"run {rid}")
                scatter.sigClicked.connect(self._clicked)
                self.scatters[rid] = scatter
                self.plot.addItem(scatter)
            self.scatters[rid].setData([{"pos": (p.macs / 1e6, p.metrics[metric]), "data": p} for p in usable])
        primary = self.points.get(self.run_id, []) if self.run_id is not None else []
        front = pareto_front(primary, metric, higher) if metric else []
        self.front.setData([p.macs / 1e6 for p in front], [p.metrics[metric] for p in front])
        budget = self.budgets.get(self.run_id) if self.run_id is not None else None
        if budget:
            self.budget_line.setValue(budget / 1e6)
            self.budget_line.show()
        else:
            self.budget_line.hide()
        self._draw_highlight()
        total = sum(len(p) for p in self.points.values())
        self.status.setText(f"{total} candidates, {len(front)} on the front of run {self.run_id}"
                            if self.run_id is not None else "Select a run")

    def _draw_highlight(self) -> None:
        metric = self.metric_name()
        if self.selected is not None and metric in self.selected.metrics:
            self.highlight.setData([self.selected.macs / 1e6], [self.selected.metrics[metric]])
        else:
            self.highlight.setData([], [])

    def _clicked(self, _scatter, spots, _event=None) -> None:
        if len(spots):
            self.select(spots[0].data())

    def select(self, point: Point) -> None:
        self.selected = point
        self._draw_highlight()
        self.candidate_selected.emit(point.run_id, point.arch)

    def front_points(self) -> list[Point]:
        metric = self.metric_name()
        return pareto_front(self.points.get(self.run_id, []), metric, HIGHER_IS_BETTER.get(metric, False)) if metric else []

    # --- export -----------------------------------------------------------------------------------
    def _ask_and_export(self, export, file_filter: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export", "", file_filter)
        if path:
            export(Path(path))

    def export_png(self, path: Path) -> None:
        exporter = pyqtgraph.exporters.ImageExporter(self.plot.plotItem)
        exporter.parameters()["width"] = 1200
        exporter.export(str(path))

    def export_csv(self, path: Path) -> None:
        front = {(p.run_id, p.arch) for p in self.front_points()}
        names = sorted({m for pts in self.points.values() for p in pts for m in p.metrics})
        with Path(path).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["run_id", "arch", "macs", "params", *names, "latency_ms", "on_front"])
            for points in self.points.values():
                for p in points:
                    writer.writerow([p.run_id, p.arch, p.macs, p.params, *[p.metrics.get(n, "") for n in names],
                                     p.latency_ms or "", (p.run_id, p.arch) in front])
