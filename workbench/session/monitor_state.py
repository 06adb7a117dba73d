"""What the monitor view shows, Qt-free: the run and its live progress (``RunMonitor``), whether the plotted stage
follows the running one, the series the user hid, the curves read from the store and their order, the log lines
shown so far, and whether the run's process is running (which of cancel and resume applies)."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.api import Curve
from workbench.session.state import RunMonitor


@dataclass
class MonitorState:
    run: RunMonitor = field(default_factory=RunMonitor)
    follow_stage: bool = True  # until the user picks a stage for this run
    hidden_series: set[str] = field(default_factory=set)  # the user's choice: kept from run to run
    curve_data: dict[str, Curve] = field(default_factory=dict)
    loss_order: tuple[str, ...] = ()  # the shown run's family's loss names (``Family.loss_names``)
    curve_width: int = 1  # steps per plotted point of the curves shown (1: every recorded point)
    log_after: int = 0  # the id of the last log line shown
    log_from_store: bool = False  # the log shows the store's lines (not a run's story told from its stages)
    running: bool = False  # the run's process is running

    @property
    def run_id(self) -> int | None:
        return self.run.run_id

    def set_run(self, run_id: int | None) -> bool:
        """Another run: its own progress, curves and log from the start. False: the same run."""
        if run_id == self.run_id:
            return False
        self.run = RunMonitor(run_id)
        self.follow_stage, self.curve_data, self.log_after, self.log_from_store = True, {}, 0, False
        return True

    def series_order(self) -> list[str]:
        """The curves' names: the family's declared losses first, in its order (so each keeps its colour), then
        any others by name."""
        order = self.loss_order
        return sorted(self.curve_data, key=lambda n: (order.index(n) if n in order else len(order), n))

    def new_log_lines(self, lines: list[tuple]) -> tuple[list[tuple], bool]:
        """Of the lines read (``(id, ...)``), those not shown yet (a read asked for before the last one may come
        after it), and whether they replace what the log shows (the stage story told before the store's log)."""
        fresh = [line for line in lines if line[0] > self.log_after]
        replace = bool(fresh) and not self.log_from_store
        if fresh:
            self.log_after, self.log_from_store = fresh[-1][0], True
        return fresh, replace

    def can_cancel(self) -> bool:
        return self.run_id is not None and self.running

    def can_resume(self, status: str | None) -> bool:
        return self.run_id is not None and not self.running and status in ("failed", "cancelled", "pending")
