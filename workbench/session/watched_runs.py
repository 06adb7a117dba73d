"""The runs this window watches, Qt-free: the processes it started (before their run has an id, and after), the
stops it asked for until the list shows them happened, what to select and say once the refreshed list is shown,
the notifications given and the summary on screen. The window starts and signals the processes; this decides what
follows from their events and from each refreshed list."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

from engine.api import RunSummary


class Process(Protocol):
    """What the state needs of a run's process (``workbench.background.process.RunProcess``)."""

    def is_running(self) -> bool: ...


P = TypeVar("P", bound=Process)


class WatchedRuns(Generic[P]):
    def __init__(self) -> None:
        self.processes: dict[int, P] = {}  # by run id: the processes this window started or resumed
        self.starting: list[P] = []  # started, no run id reported yet
        self.cancelling: set[int] = set()  # runs asked to stop, until the list shows them stopped
        self.select_when_listed: int | None = None  # a run to select once the refreshed list holds it
        self.say_when_listed = ""  # what an action did, for the status bar once the refreshed list is shown
        self.notifications: list[tuple[str, str]] = []  # (title, text) of each run-end notification
        self.summary_shown: RunSummary | None = None  # the run's row the summary view was drawn from

    # --- processes --------------------------------------------------------------------------------
    def started(self, process: P) -> None:
        self.starting.append(process)

    def resumed(self, run_id: int, process: P) -> None:
        self.processes[run_id] = process
        self.cancelling.discard(run_id)

    def is_running(self, run_id: int | None) -> bool:
        """Whether this window's own process of the run is alive."""
        return run_id in self.processes and self.processes[run_id].is_running()

    def identified(self, process: P, run_id: int | None) -> bool:
        """A process reported an event: True when it is one just started that now has its run id (the run is
        selected once the refreshed list holds it)."""
        if run_id is None or process not in self.starting:
            return False
        self.starting.remove(process)
        self.processes[run_id] = process
        self.select_when_listed = run_id
        return True

    def ended(self, process: P) -> None:
        """Its process exited; one that never had a run id (a bad configuration, missing data) is forgotten."""
        if process in self.starting:
            self.starting.remove(process)

    def forget(self, run_id: int) -> None:
        """The run was deleted."""
        self.processes.pop(run_id, None)

    def all_processes(self) -> list[P]:
        return [*self.processes.values(), *self.starting]

    # --- what follows a refreshed list -------------------------------------------------------------------
    def cancel_asked(self, run_id: int) -> None:
        self.cancelling.add(run_id)

    def stopped(self, runs: Iterable[RunSummary]) -> list[str]:
        """Each stop asked for that the list shows happened, in words (said once: the request's would go stale)."""
        said = []
        for run in runs:
            if run.id in self.cancelling and run.status != "running":
                self.cancelling.discard(run.id)
                said.append(f"run {run.id} is {run.status}" + (
                    ": Resume continues it from its checkpoint" if run.status == "cancelled" else ""))
        return said

    def select_once_listed(self, run_id: int) -> None:
        self.select_when_listed = run_id

    def say_once_listed(self, words: str) -> None:
        self.say_when_listed = words

    def to_select(self, listed: Callable[[int], bool]) -> int | None:
        """The run to select now that the list is shown, once ``listed`` says the list holds it."""
        run_id = self.select_when_listed
        if run_id is None or not listed(run_id):
            return None
        self.select_when_listed = None
        return run_id

    def words_when_listed(self) -> str:
        """What to say now that the refreshed list is shown (once)."""
        words, self.say_when_listed = self.say_when_listed, ""
        return words

    def notified(self, title: str, text: str) -> None:
        self.notifications.append((title, text))

    def summary_changed(self, listed: RunSummary | None, reload: bool = False) -> bool:
        """Whether the summary must be drawn again for ``listed`` (the selected run's row as listed now)."""
        if not reload and listed == self.summary_shown:
            return False
        self.summary_shown = listed
        return True
