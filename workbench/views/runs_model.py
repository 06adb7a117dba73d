"""Table model of the runs list, filled from the store's run summaries."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from engine.api import STAGES, RunSummary, not_responding, primary_metric

COLUMNS = ("Name", "Task", "Status", "Progress", "Best (search)", "Student (test)", "Fewer MACs", "Started")
#: What each column holds, shown as its header's tooltip.
TOOLTIPS = {1: "the model family and the dataset folder (the full path in each cell's tooltip)",
            2: "the run's status, with its number of processes when it runs on several (torchrun)",
            3: "the current (or last) stage and its progress",
            4: "the best candidate's score so far on the search split (held-out training images) and its MACs",
            5: "the final student's metric on the test split, with the teacher's: the numbers of the summary "
               "and the model card",
            6: "the compression: the teacher's MACs divided by the final student's (the paper's convention)"}


def _dataset_name(dataset: str) -> str:
    return Path(dataset).name or dataset


def _cell(run: RunSummary, column: int) -> str:
    if column == 0:
        return run.name
    if column == 1:
        return f"{run.family} · {_dataset_name(run.dataset)}"
    if column == 2:
        if run.damaged:
            return "damaged"
        if not_responding(run):
            return "running · not responding"
        if run.processes > 1:
            machines = len(run.hosts or []) or 1
            return f"{run.status} · {run.processes} processes" + (f", {machines} machines" if machines > 1 else "")
        return run.status
    if column == 3:
        if not run.stage:
            return "-"
        return f"{run.stage} {100 * run.step / run.total_steps:.0f}%" if run.total_steps else run.stage
    if column == 4:
        metric = primary_metric(run.best_metric or {})
        if not metric:
            return "-"
        macs = f" · {run.best_macs / 1e6:.1f}M" if run.best_macs else ""
        return f"{metric} {run.best_metric[metric]:.4g}{macs}"
    if column == 5:
        result = run.result
        if not result:
            return "-"
        metric = result.metric
        return f"{metric} {result.student[metric]:.4g} (teacher {result.teacher[metric]:.4g})"
    if column == 6:
        ratio = run.result.macs_ratio if run.result else None
        return f"{ratio:.1f}x" if ratio else "-"
    started = run.started_at or run.created_at
    return started.astimezone().strftime("%Y-%m-%d %H:%M")


def _tooltip(run: RunSummary, column: int) -> str | None:
    if run.damaged:
        return f"Its record in the store is damaged: {run.damaged}. Delete it (Run > Delete…) or restore it from a " \
               "backup of the store; the other runs are not affected."
    if run.error:
        return run.error
    if column == 1:
        return f"{run.family} on {run.dataset}"
    if column == 2 and run.processes > 1:
        return f"{run.processes} processes (torchrun) on {', '.join(run.hosts or ['?'])}"
    if column == 5 and run.result:
        return f"measured on the {run.result.split} split"
    if column == 7:
        started = run.started_at or run.created_at
        return started.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return None


class RunsTableModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._runs: list[RunSummary] = []
        self._live: dict[int, tuple[str, int, int | None]] = {}  # run id: a watched run's latest live step

    def set_runs(self, runs: list[RunSummary]) -> None:
        runs = [self._with_live(run) for run in runs]
        if runs == self._runs:
            return
        self.beginResetModel()
        self._runs = runs
        self.endResetModel()

    def _with_live(self, run: RunSummary) -> RunSummary:
        """A run read from the store, with the live step where that is further on (no jump back on a refresh)."""
        live = self._live.get(run.id)
        if live is None or run.status != "running":
            self._live.pop(run.id, None)
            return run
        stage, step, total = live
        if run.stage == stage and run.step >= step:
            return run
        if run.stage not in (None, stage) and (run.stage not in STAGES or STAGES.index(run.stage) > STAGES.index(stage)):
            return run  # the store is already past it
        return replace(run, stage=stage, step=step, total_steps=total)

    def live_progress(self, run_id: int, stage: str, step: int, total: int | None) -> None:
        """A watched run's progress from its live events: the store records a step only every ``log_every``
        steps, so the list would lag the monitor (50% against 80%); the live step is shown until the store
        catches up."""
        row = self.row_of(run_id)
        if row is None:
            return
        run = self._runs[row]
        if run.stage == stage and run.step >= step and run.total_steps == total:
            return
        self._live[run_id] = (stage, step, total)
        self._runs[row] = replace(run, stage=stage, step=step, total_steps=total)
        self.dataChanged.emit(self.index(row, 3), self.index(row, 3))

    def run_at(self, row: int) -> RunSummary:
        return self._runs[row]

    def row_of(self, run_id: int) -> int | None:
        return next((i for i, run in enumerate(self._runs) if run.id == run_id), None)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._runs)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        run = self._runs[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return _cell(run, index.column())
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(run, index.column())
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return TOOLTIPS.get(section)
        return None
