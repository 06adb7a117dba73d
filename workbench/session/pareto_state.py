"""What the Pareto view shows besides its points, Qt-free: the run shown, the candidate selected, the runs that can
be overlaid and every run's image size, each run's budgets and teacher, whether the axes are still the view's to
fit (until the user zooms or pans), and where exports go. The view draws from it; the decisions (what a new run
resets, where the budget line goes on the axis shown, what the overlay note says) are made here."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from workbench.session.state import RunReferences


def size_text(size: Any) -> str:
    return f"{size} px" if isinstance(size, int) or str(size).isdigit() else str(size)


class ParetoState:
    def __init__(self) -> None:
        self.run_id: int | None = None
        self.selected: dict[str, Any] | None = None  # the candidate highlighted (a row of the run's table)
        self.overlay_runs: list[tuple[int, str]] = []  # (id, name) of the runs offered as overlays
        self.sizes: dict[int, Any] = {}  # every listed run's image size, where known
        self.references = RunReferences()  # budgets and teachers, by run
        self.auto_axes = True  # until the user zooms or pans: then the axes are theirs until "Fit"
        self.fitted = False  # the axes were fitted to what is drawn now
        self.export_dir: Path | None = None  # where the PNG/CSV save dialogs start

    # --- which run, which candidate ---------------------------------------------------------------------
    def show_run(self, run_id: int | None) -> bool:
        """Another run shown: nothing selected, the axes fitted to it anew. False: the same run."""
        if run_id == self.run_id:
            return False
        self.run_id, self.selected = run_id, None
        self.fit_anew()
        return True

    def offer_runs(self, runs: Iterable[tuple[int, str]], sizes: dict[int, Any] | None = None) -> bool:
        """The runs that can be overlaid and every run's size; True when the list of runs changed."""
        self.sizes = dict(sizes or {})
        runs = list(runs)
        if runs == self.overlay_runs:
            return False
        self.overlay_runs = runs
        return True

    def size_note(self, overlaid: set[int]) -> str:
        """Said where overlaid runs were searched at another image size: their MACs (and latency) are for their
        own size, not comparable point for point with the shown run's ('' when none is)."""
        own = self.sizes.get(self.run_id) if self.run_id is not None else None
        differing = {run_id: self.sizes[run_id] for run_id in sorted(overlaid - {self.run_id})
                     if self.sizes.get(run_id) is not None and own is not None and str(self.sizes[run_id]) != str(own)}
        if not differing:
            return ""
        return ("At another image size: " + ", ".join(f"run {r} ({size_text(s)})" for r, s in differing.items())
                + f"; their MACs are for that size, not comparable with run {self.run_id}'s ({size_text(own)}).")

    # --- the axes ----------------------------------------------------------------------------------------
    def fit_anew(self) -> None:
        """Another run, metric or axis: the axes fit what is drawn (a range the user chose says nothing of it)."""
        self.auto_axes, self.fitted = True, False

    def user_moved_axes(self) -> None:
        self.auto_axes = False

    # --- what the shown run is measured against ----------------------------------------------------------
    def latency_axis_first(self, run_id: int, budget: float | None, latency_budget: tuple[float, str] | None,
                           measured: bool) -> str | None:
        """The axis a run searched by latency alone is shown against (its budget measured or predicted), while it
        is the run shown and nothing is selected; None: leave the axis as it is."""
        if latency_budget is None or budget is not None or self.selected is not None or run_id != self.run_id:
            return None
        return "Measured latency" if measured else "Predicted latency"

    def budget_on(self, x_column: str) -> tuple[float, str | None] | None:
        """The shown run's budget on the x axis ``x_column`` (MACs in M, or ms) with the latency's conditions,
        or None: it has none there (a limit decided on measurement is not drawn on the predicted axis)."""
        if self.run_id is None:
            return None
        if x_column == "macs":
            budget = self.references.budgets.get(self.run_id)
            return (budget / 1e6, None) if budget else None
        latency = self.references.latency_budgets.get(self.run_id)
        decided_on = "measured_ms" if self.run_id in self.references.measured else "latency_ms"
        return (latency[0], latency[1]) if latency and x_column == decided_on else None

    def latency_decided_on(self, column: str) -> bool:
        """Whether the shown run's latency budget is decided in ``column`` (``latency_ms`` predicted,
        ``measured_ms``): the axis is offered before any candidate has such a latency."""
        if self.run_id not in self.references.latency_budgets:
            return False
        return (column == "measured_ms") == (self.run_id in self.references.measured)

    def teacher_level(self, metric: str | None) -> float | None:
        """The shown run's teacher's score in ``metric`` on the search split, where known."""
        teacher = self.references.teachers.get(self.run_id) if self.run_id is not None else None
        value = teacher.metrics.get(metric or "") if teacher is not None else None
        return float(value) if value is not None else None

    def suggested_name(self, metric: str | None, suffix: str) -> Path:
        """Where a save dialog starts: the workspace's export folder, a name saying what the file holds."""
        return (self.export_dir or Path.home()) / f"run-{self.run_id}-pareto-{metric or 'candidates'}.{suffix}"
