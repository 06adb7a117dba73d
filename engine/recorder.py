"""The store's consumer of a run's event stream. Stages report progress only as events; what the store keeps
of it (stage status and step, loss series, scored candidates, artifacts, the log, the run's outcome) is
written here from those same events, so the store, the command line and the workbench, which render the
same stream, cannot disagree.

Operations that are not reports of progress stay direct calls on the store: claiming a run, resetting a
stage to redo it, forgetting a resumed stage's series after its checkpoint, recording a checkpoint's path."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from engine.events import (
    ArtifactWritten,
    CandidateScored,
    Event,
    RunFinished,
    StageCancelled,
    StageFailed,
    StageFinished,
    StageStarted,
    StepProgress,
    log_line,
)
from engine.files import in_run
from engine.store import CandidateRecord, ListedResult, Status, Store

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 10.0


class Heartbeat:
    """Writes the run's heartbeat on a timer, from a thread of the running process, whatever the run is doing:
    a long step-less phase (a latency table, statistics, an export) is as alive as a training step. Used as a
    context manager around the run; a run whose heartbeat stops (its process gone) is found stale."""

    def __init__(self, store: Store, run_id: int, interval_s: float = HEARTBEAT_INTERVAL_S):
        self.store, self.run_id, self.interval_s = store, run_id, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-run-{run_id}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.store.heartbeat(self.run_id)
            except Exception:  # a store that refuses a write (full disk) is reported by the run's own writes
                log.debug("heartbeat of run %s not written", self.run_id, exc_info=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class StoreRecorder:
    """Records one run's events in the store. A stage's step and losses are written every ``log_every``
    steps (and at its last step); scored candidates in batches (one transaction per ``batch``, at least every
    ``max_wait_s``, and whenever a stage ends, fails or stops), so a search scoring many a second is not
    slowed by a commit each and at most the last ``max_wait_s`` of scores is scored again after a kill."""

    def __init__(self, store: Store, run_id: int, stages: list[str], log_every: int, *, batch: int = 64,
                 max_wait_s: float = 2.0, run_dir: Path | None = None):
        self.store, self.run_id, self.stages, self.log_every = store, run_id, list(stages), log_every
        self.run_dir = run_dir  # the run's files are recorded relative to it
        self.batch, self.max_wait_s = batch, max_wait_s
        self.pending: list[CandidateRecord] = []
        self.metric: str | None = None
        self.totals: dict[str, int | None] = {}
        self.last_step: dict[str, int] = {}  # by stage: the last step reported (the store keeps every log_every-th)
        self._last_flush = time.monotonic()
        self._log_failed = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, (StepProgress, ArtifactWritten)) and event.stage not in self.stages:
            return  # work outside the run's stages (building a sample dataset): shown, not the run's record
        if isinstance(event, StepProgress):
            self._step(event)
        elif isinstance(event, CandidateScored):
            self.metric = self.metric or event.metric
            self.pending.append(CandidateRecord(event.arch, event.macs, event.params, event.metrics,
                                                event.latency_ms, event.measured_ms))
            if len(self.pending) >= self.batch or time.monotonic() - self._last_flush >= self.max_wait_s:
                self.flush()
        elif isinstance(event, ArtifactWritten):
            self.store.add_artifact(self.run_id, Path(event.path), event.artifact_kind, stage=event.stage,
                                    recorded_as=in_run(event.path, self.run_dir) if self.run_dir else None)
        elif isinstance(event, StageStarted):
            self.store.update_stage(self.run_id, event.stage, status=Status.running)
        elif isinstance(event, StageFinished):
            self.flush()
            self.store.update_stage(self.run_id, event.stage, status=Status.finished)
        elif isinstance(event, StageCancelled):
            self.flush()
            if event.stage in self.stages and self.store.stage_status(self.run_id, event.stage) is not Status.finished:
                # The step it stopped at (the store keeps only every log_every-th): the list agrees with the monitor.
                self.store.update_stage(self.run_id, event.stage, status=Status.cancelled, error=event.reason,
                                        **self._stopped_at(event.stage))
            self.store.mark_run(self.run_id, Status.cancelled, error=event.reason)
        elif isinstance(event, StageFailed):
            self._failed(event)
        elif isinstance(event, RunFinished):
            self.store.mark_run(self.run_id, Status.finished, result=ListedResult.of_summary(event.summary))
        self._log(event)

    def flush(self) -> None:
        if self.pending:
            self.store.add_candidates(self.run_id, self.pending, metric=self.metric)
            self.pending = []
        self._last_flush = time.monotonic()

    def _step(self, event: StepProgress) -> None:
        self.last_step[event.stage] = event.step
        if event.total_steps != self.totals.get(event.stage, -1):
            self.totals[event.stage] = event.total_steps
            self.store.update_stage(self.run_id, event.stage, total_steps=event.total_steps)
        if event.step % self.log_every == 0 or event.step == event.total_steps:
            self.store.update_stage(self.run_id, event.stage, step=event.step)
            if event.losses:
                self.store.record_metrics(self.run_id, event.stage, event.step, event.losses)

    def _stopped_at(self, stage: str) -> dict[str, int]:
        return {"step": self.last_step[stage]} if stage in self.last_step else {}

    def _failed(self, event: StageFailed) -> None:
        # The store may be what failed (a full disk): the failure is still reported on; a run left
        # "running" is found dead by its heartbeat on the next start.
        try:
            self.flush()
        except Exception as exc:  # the search's resume scores them again
            log.error("could not record the last scored candidates of run %s (%s)", self.run_id,
                      str(getattr(exc, "orig", None) or exc).splitlines()[0])
        try:
            if event.stage in self.stages:
                self.store.update_stage(self.run_id, event.stage, status=Status.failed, error=event.error,
                                        **self._stopped_at(event.stage))
            self.store.mark_run(self.run_id, Status.failed, error=event.error)
        except Exception as exc:  # one line, not the store's traceback chained to the run's
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            log.error("could not record the failure of run %s in the store (%s): it is listed as running (not "
                      "responding) until `python main.py resume %s` (once there is space) or `python main.py runs "
                      "mark-failed %s`", self.run_id, reason, self.run_id, self.run_id)

    def _log(self, event: Event) -> None:
        line = log_line(event)
        if line is None or self._log_failed:
            return
        try:
            self.store.add_log_line(self.run_id, *line)
        except Exception as exc:  # e.g. the store's disk is full: the run's own failure handling says so
            self._log_failed = True
            log.error("could not record a log line of run %s in the store (%s); no further lines are recorded",
                      self.run_id, str(getattr(exc, "orig", None) or exc).splitlines()[0])
