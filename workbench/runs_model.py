"""Table model of the runs list, filled from the store's run summaries."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from engine.store import RunSummary

COLUMNS = ("Name", "Family", "Dataset", "Status", "Stage", "Progress", "Best MACs", "Search best",
           "Student (test)", "Started")
#: What each column's figures are measured on, shown as its header's tooltip.
TOOLTIPS = {7: "the best candidate's score so far on the search split (held-out training images)",
            8: "the final student's metric on the test split, with the teacher's: the numbers of the summary "
               "and the model card"}


def _cell(run: RunSummary, column: int) -> str:
    if column == 0:
        return run.name
    if column == 1:
        return run.family
    if column == 2:
        return run.dataset
    if column == 3:
        return run.status
    if column == 4:
        return run.stage or "-"
    if column == 5:
        return f"{100 * run.step / run.total_steps:.0f}%" if run.total_steps else "-"
    if column == 6:
        return f"{run.best_macs / 1e6:.1f} M" if run.best_macs else "-"
    if column == 7:
        metric = next((m for m in ("fid", "rfid", "psnr") if m in (run.best_metric or {})), None)
        return f"{metric} {run.best_metric[metric]:.4g} (search)" if metric else "-"
    if column == 8:
        result = run.result
        if not result:
            return "-"
        metric = result["metric"]
        return (f"{metric} {result['student'][metric]:.4g} vs teacher {result['teacher'][metric]:.4g} "
                f"({result['split']})")
    started = run.started_at or run.created_at
    return started.astimezone().strftime("%Y-%m-%d %H:%M")


class RunsTableModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._runs: list[RunSummary] = []

    def set_runs(self, runs: list[RunSummary]) -> None:
        if runs == self._runs:
            return
        self.beginResetModel()
        self._runs = list(runs)
        self.endResetModel()

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
        if role == Qt.ItemDataRole.ToolTipRole and run.error:
            return run.error
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return TOOLTIPS.get(section)
        return None
