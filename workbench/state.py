"""Qt-free state of the views (runs being watched, Pareto sets, selection): plain objects with
callbacks, so that they are testable without a QApplication and views only subscribe to them."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

from engine.events import (CandidateScored, Event, Message, RunFinished, StageFailed, StageFinished, StageStarted,
                           StepProgress)


@dataclass(frozen=True)
class Point:
    run_id: int
    arch: str
    macs: int
    params: int
    metrics: dict[str, float]
    latency_ms: float | None = None


def pareto_front(points: list[Point], metric: str, higher_is_better: bool) -> list[Point]:
    """The points no other point beats on both MACs (fewer) and metric, sorted by MACs; O(n log n)."""
    usable = [p for p in points if metric in p.metrics]
    sign = -1.0 if higher_is_better else 1.0
    usable.sort(key=lambda p: (p.macs, sign * p.metrics[metric]))
    front: list[Point] = []
    best = float("inf")
    for point in usable:
        value = sign * point.metrics[metric]
        if value < best:
            front.append(point)
            best = value
    return front


class Observable:
    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def changed(self) -> None:
        for listener in list(self._listeners):
            listener()


@dataclass
class StageProgress:
    name: str
    step: int = 0
    total: int | None = None
    started: float | None = None
    last: float | None = None
    status: str = "pending"

    def eta_seconds(self) -> float | None:
        if not self.total or not self.step or self.started is None or self.last is None:
            return None
        rate = self.step / max(self.last - self.started, 1e-9)
        return (self.total - self.step) / rate


class RunMonitor(Observable):
    """What the monitor view shows of one run, built from its events."""

    LOG_LINES = 200

    def __init__(self, run_id: int | None = None):
        super().__init__()
        self.run_id = run_id
        self.stages: dict[str, StageProgress] = {}
        self.losses: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
        self.log: deque[str] = deque(maxlen=self.LOG_LINES)
        self.points: list[Point] = []
        self.summary: dict | None = None
        self.error: str | None = None
        self.log_total = 0  # lines ever logged, so views can append only what is new

    def _log(self, line: str) -> None:
        self.log.append(line)
        self.log_total += 1

    def log_since(self, total: int) -> list[str]:
        new = min(self.log_total - total, len(self.log))
        return list(self.log)[len(self.log) - new:] if new > 0 else []

    def stage(self, name: str) -> StageProgress:
        return self.stages.setdefault(name, StageProgress(name))

    def handle(self, event: Event) -> None:
        if event.run_id is not None:
            self.run_id = event.run_id
        if isinstance(event, StageStarted):
            stage = self.stage(event.stage)
            stage.status, stage.started, stage.total = "running", event.time, event.total_steps
            self._log(f"[{event.stage}] started")
        elif isinstance(event, StepProgress):
            stage = self.stage(event.stage)
            if stage.started is None:
                stage.started = event.time
            stage.step, stage.total, stage.last, stage.status = event.step, event.total_steps, event.time, "running"
            for name, value in event.losses.items():
                self.losses[event.stage][name].append((event.step, value))
        elif isinstance(event, StageFinished):
            stage = self.stage(event.stage)
            stage.status = "finished"
            if stage.total:
                stage.step = stage.total
            self._log(f"[{event.stage}] finished in {event.seconds:.1f} s")
        elif isinstance(event, StageFailed):
            self.stage(event.stage).status = "failed"
            self.error = event.error
            self._log(f"[{event.stage}] FAILED: {event.error}")
        elif isinstance(event, CandidateScored):
            self.points.append(Point(event.run_id or 0, event.arch, event.macs, event.params, event.metrics,
                                     event.latency_ms))
        elif isinstance(event, RunFinished):
            self.summary = event.summary
            self._log("run finished")
        elif isinstance(event, Message):
            self._log(event.text if event.level == "info" else f"{event.level.upper()}: {event.text}")
        self.changed()
