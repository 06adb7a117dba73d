"""Qt-free state of the views (runs being watched, Pareto sets, selection): plain objects with
callbacks, so that they are testable without a QApplication and views only subscribe to them."""

from __future__ import annotations

import bisect
import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.api import CandidateTable, Store, TeacherReference
from engine.events import CandidateScored, Event, StageFailed, StageFinished, StageStarted, StepProgress
from engine.settings import Settings


@dataclass(frozen=True)
class Point:
    run_id: int
    arch: str
    macs: int
    params: int
    metrics: dict[str, float]
    latency_ms: float | None = None


def front_rows(macs: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats on both MACs (fewer) and score (lower is better), in
    MACs order; NaN scores are ignored. Vectorised, O(n log n)."""
    usable = np.flatnonzero(~np.isnan(scores))
    if not len(usable):
        return usable
    order = usable[np.lexsort((scores[usable], macs[usable]))]
    ordered = scores[order]
    best_before = np.minimum.accumulate(np.concatenate([[np.inf], ordered[:-1]]))
    return order[ordered < best_before]


def pareto_front(points: list[Point], metric: str, higher_is_better: bool) -> list[Point]:
    """The points no other point beats on both MACs (fewer) and metric, sorted by MACs."""
    usable = [p for p in points if metric in p.metrics]
    sign = -1.0 if higher_is_better else 1.0
    rows = front_rows(np.array([p.macs for p in usable], dtype=float),
                      np.array([sign * p.metrics[metric] for p in usable], dtype=float))
    return [usable[i] for i in rows]


class ParetoFront:
    """The front of a growing set of points, kept as points arrive: each one costs a binary search plus
    the front points it removes, never a pass over all points. ``rows`` are the points' indices in
    MACs order; their scores (lower is better) strictly decrease along it."""

    def __init__(self, macs: np.ndarray | None = None, scores: np.ndarray | None = None):
        self.macs: list[float] = []
        self.scores: list[float] = []
        self.rows: list[int] = []
        if macs is not None and scores is not None and len(macs):
            rows = front_rows(macs, scores)
            self.rows = [int(r) for r in rows]
            self.macs = [float(m) for m in macs[rows]]
            self.scores = [float(s) for s in scores[rows]]

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, macs: float, score: float, row: int) -> bool:
        """Consider point ``row``; True if it joined the front."""
        if math.isnan(score):
            return False
        right = bisect.bisect_right(self.macs, macs)
        if right > 0 and self.scores[right - 1] <= score:
            return False  # a point with no more MACs scores at least as well
        start = bisect.bisect_left(self.macs, macs)
        stop = start
        while stop < len(self.scores) and self.scores[stop] >= score:
            stop += 1  # the front points the new one dominates follow it contiguously
        self.macs[start:stop] = [macs]
        self.scores[start:stop] = [score]
        self.rows[start:stop] = [row]
        return True


def table_of_events(run_id: int, events: list[CandidateScored]) -> CandidateTable:
    """Candidates that arrived as events, as a table (their store ids are not known: 0)."""
    return CandidateTable.from_rows(run_id, [0] * len(events), [e.arch for e in events], [e.macs for e in events],
                                    [e.params for e in events], [e.latency_ms for e in events],
                                    [e.metrics for e in events], [e.measured_ms for e in events])


class RunPoints:
    """One run's candidates as the Pareto plot holds them: the table read from the store, the candidates that
    arrived as events since (merged once the read is in: the store may hold some of them already), and the
    front for the shown metric and axis. The plot draws them; the CSV export writes them."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.table = CandidateTable(run_id)
        self.loaded = False
        self.pending: list[CandidateScored] = []
        self.front = ParetoFront()

    def count(self) -> int:
        return len(self.table) + len(self.pending)

    def receive(self, event: CandidateScored) -> None:
        self.pending.append(event)

    def load(self, table: CandidateTable) -> int:
        """The store's read arrived: it, plus what arrived meanwhile; how many of its rows those replaced."""
        self.table, self.loaded = table, True
        return self.merge_pending()

    def merge_pending(self) -> int:
        """Move the buffered candidates into the table; how many earlier rows they replaced."""
        events, self.pending = self.pending, []
        return self.table.extend(table_of_events(self.run_id, events))

    def metric_names(self) -> set[str]:
        return set(self.table.metrics) | {m for event in self.pending[:1] for m in event.metrics}

    def on_front(self) -> np.ndarray:
        flags = np.zeros(len(self.table), dtype=bool)
        flags[self.front.rows] = True
        return flags


def write_candidates_csv(path: Path, runs: list[RunPoints]) -> None:
    """Every candidate of ``runs``: one row each, a column per metric any of them has (empty where a run has
    not that metric or a latency was not predicted or measured), and whether it is on the front shown."""
    names = sorted({m for run in runs for m in run.table.metrics})
    with Path(path).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run_id", "arch", "macs", "params", *names, "latency_ms", "measured_ms", "on_front"])
        for run in runs:
            table, on_front = run.table, run.on_front()
            columns = [table.metrics.get(n, np.full(len(table), math.nan)) for n in names]
            for i in range(len(table)):
                writer.writerow([run.run_id, table.archs[i], int(table.macs[i]), int(table.params[i]),
                                 *["" if math.isnan(c[i]) else float(c[i]) for c in columns],
                                 *["" if math.isnan(c[i]) else float(c[i]) for c in (table.latency_ms,
                                                                                      table.measured_ms)],
                                 bool(on_front[i])])


class Observable:
    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def changed(self) -> None:
        for listener in list(self._listeners):
            listener()


class Session(Observable):
    """The window's settings and the store they open: what every view reads from. Views follow it (``follow``)
    and take a new store or new settings themselves when it changes; no view sets another's."""

    def __init__(self, settings: Settings, store: Store) -> None:
        super().__init__()
        self.settings, self.store = settings, store

    def use(self, settings: Settings, store: Store | None = None) -> None:
        """New settings, and the store they open where it is another one (the caller closed the old one)."""
        self.settings = settings
        if store is not None:
            self.store = store
        self.changed()


@dataclass(frozen=True)
class Selected:
    """What the window shows: a run, and a candidate of its search (``arch``) or its final student (None)."""

    run_id: int | None = None
    arch: str | None = None
    source: str = ""  # the view that chose it ("runs", "pareto", "compare"): it needs no echo of its own choice


class Selection(Observable):
    """The window's one selection, shared by the runs list, the Pareto plot, the compare view, the export dialog
    and the status bar: each view that lets the user choose calls ``select``; each that shows the choice
    subscribes and draws ``current``."""

    def __init__(self) -> None:
        super().__init__()
        self.current = Selected()

    def select_run(self, run_id: int | None) -> None:
        """Another run: its final student, until a candidate of it is chosen."""
        if run_id != self.current.run_id:
            self.current = Selected(run_id, None, "runs")
            self.changed()

    def select(self, run_id: int, arch: str | None, source: str) -> None:
        """A candidate (or, with ``arch`` None, the final student) of ``run_id``; listeners hear only of a change."""
        if (run_id, arch) != (self.current.run_id, self.current.arch):
            self.current = Selected(run_id, arch, source)
            self.changed()

    def candidate_of(self, run_id: int | None) -> str | None:
        """The selected candidate's arch where it belongs to ``run_id`` (None: the final student, or another run)."""
        return self.current.arch if run_id is not None and self.current.run_id == run_id else None

    def describe(self, status: str | None = None, stage: str | None = None) -> str:
        """The status bar's words; ``status`` and ``stage`` are the selected run's (a run that has not finished
        has no final student to show)."""
        chosen = self.current
        if chosen.run_id is None:
            return ""
        if chosen.arch is not None:
            return f"selected {chosen.arch} of run {chosen.run_id}"
        if status in (None, "finished"):
            return f"showing the final student of run {chosen.run_id}"
        where = f" in its {stage} stage" if stage and status == "running" else ""
        return f"showing run {chosen.run_id} ({status}{where}: no final student yet)"


@dataclass
class RunReferences:
    """What a run's search is measured against in the Pareto plot, by run: its MACs budget, its latency budget (ms
    and the prediction's conditions) and its teacher's scores on the search split."""

    budgets: dict[int, float] = field(default_factory=dict)
    latency_budgets: dict[int, tuple[float, str]] = field(default_factory=dict)
    teachers: dict[int, TeacherReference] = field(default_factory=dict)
    measured: set[int] = field(default_factory=set)  # runs whose latency budget is decided on measurement

    def update(self, run_id: int, budget: float | None = None, teacher: TeacherReference | None = None,
               latency_budget: tuple[float, str] | None = None, measured: bool = False) -> bool:
        """Keep what is known (None: not known yet, what was known stays); True if anything changed."""
        before = (self.budgets.get(run_id), self.teachers.get(run_id), self.latency_budgets.get(run_id),
                  run_id in self.measured)
        if budget is not None:
            self.budgets[run_id] = budget
        if teacher is not None:
            self.teachers[run_id] = teacher
        if latency_budget is not None:
            self.latency_budgets[run_id] = latency_budget
            (self.measured.add if measured else self.measured.discard)(run_id)
        return before != (self.budgets.get(run_id), self.teachers.get(run_id), self.latency_budgets.get(run_id),
                          run_id in self.measured)

    def knows_teacher(self, run_id: int) -> bool:
        return run_id in self.teachers


#: Time constant (seconds) of the smoothing of a stage's rate: an ETA that follows a change of speed
#: within a minute or so, and does not jump with each step's own duration.
RATE_SMOOTHING_S = 30.0


@dataclass
class StageProgress:
    name: str
    step: int = 0
    total: int | None = None
    started: float | None = None
    last: float | None = None
    status: str = "pending"
    rate: float | None = None  # steps per second, smoothed over time

    def advance(self, step: int, total: int | None, at: float) -> None:
        """A step reported at time ``at``; progress never goes backwards (a late report of an earlier step,
        as the store's, which records every ``log_every`` steps, is ignored)."""
        if total != self.total:
            # The stage's start report (at its checkpoint's step when resumed): a baseline, not a rate, since
            # the steps before it were made by another process.
            self.total, self.rate, self.step, self.last, self.status = total, None, step, at, "running"
            self.started = self.started if self.started is not None else at
            return
        if step < self.step:
            return
        if self.started is None:
            self.started = at
        if self.last is not None and step > self.step and at > self.last:
            instant = (step - self.step) / (at - self.last)
            weight = 1.0 - math.exp(-(at - self.last) / RATE_SMOOTHING_S)
            self.rate = instant if self.rate is None else self.rate + weight * (instant - self.rate)
        elif self.last is None and step > 0 and at > self.started:
            self.rate = step / (at - self.started)
        self.step, self.last, self.status = step, at, "running"

    def eta_seconds(self) -> float | None:
        if not self.total or not self.rate or self.status != "running":
            return None
        return max(self.total - self.step, 0) / self.rate


class RunMonitor(Observable):
    """The live progress of one run's stages, built from its events (the monitor view's bars and ETAs). Only
    what the view shows is kept: the loss series, candidates and log are read from the store, so a training
    of 10^5 steps does not pile up in the window's memory."""

    def __init__(self, run_id: int | None = None):
        super().__init__()
        self.run_id = run_id
        self.stages: dict[str, StageProgress] = {}
        self.error: str | None = None

    def stage(self, name: str) -> StageProgress:
        return self.stages.setdefault(name, StageProgress(name))

    def handle(self, event: Event) -> None:
        if event.run_id is not None:
            self.run_id = event.run_id
        if isinstance(event, StageStarted):
            self.stages[event.stage] = StageProgress(event.stage, status="running", started=event.time,
                                                     total=event.total_steps)
        elif isinstance(event, StepProgress):
            self.stage(event.stage).advance(event.step, event.total_steps, event.time)
        elif isinstance(event, StageFinished):
            stage = self.stage(event.stage)
            stage.status = "finished"
            if stage.total:
                stage.step = stage.total
        elif isinstance(event, StageFailed):
            self.stage(event.stage).status = "failed"
            self.error = event.error
        self.changed()
