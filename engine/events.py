"""The one small progress interface of the engine.

Stages call an ``EventSink`` (any callable taking an ``Event``). The command line renders events as
progress bars (``TerminalRenderer``) or as JSON lines (``JsonLinesRenderer``, what the workbench reads
from a child process); ``event_from_dict`` turns such a line back into the event.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, TextIO


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: ClassVar[str] = "event"
    run_id: int | None = None
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, **asdict(self)}


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    name: str
    stages: list[str]


@dataclass(frozen=True, kw_only=True)
class StageStarted(Event):
    kind: ClassVar[str] = "stage_started"
    stage: str
    total_steps: int | None = None


@dataclass(frozen=True, kw_only=True)
class StepProgress(Event):
    kind: ClassVar[str] = "step"
    stage: str
    step: int
    total_steps: int | None = None
    losses: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class CandidateScored(Event):
    kind: ClassVar[str] = "candidate"
    arch: str
    macs: int
    params: int
    metrics: dict[str, float] = field(default_factory=dict)
    latency_ms: float | None = None  # predicted by the latency table
    metric: str | None = None  # the metric the search ranks candidates by
    measured_ms: float | None = None  # measured end to end (a latency budget decided on measurement)


@dataclass(frozen=True, kw_only=True)
class ArtifactWritten(Event):
    kind: ClassVar[str] = "artifact"
    stage: str | None = None
    path: str
    artifact_kind: str


@dataclass(frozen=True, kw_only=True)
class StageFinished(Event):
    kind: ClassVar[str] = "stage_finished"
    stage: str
    seconds: float


@dataclass(frozen=True, kw_only=True)
class StageFailed(Event):
    kind: ClassVar[str] = "stage_failed"
    stage: str
    error: str


@dataclass(frozen=True, kw_only=True)
class StageCancelled(Event):
    """The run stopped in this stage at a checkpoint, as asked (cancel, ``--stop-after``); it resumes."""

    kind: ClassVar[str] = "stage_cancelled"
    stage: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Message(Event):
    kind: ClassVar[str] = "message"
    level: str = "info"
    text: str


EventSink = Callable[[Event], None]

_EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (RunStarted, StageStarted, StepProgress, CandidateScored, ArtifactWritten,
                StageFinished, StageFailed, StageCancelled, RunFinished, Message)
}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from ``Event.to_dict()`` output (e.g. a JSON line of a child process)."""
    kind = data.get("event")
    cls = _EVENT_TYPES.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"not an engine event: {kind!r}")
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def log_line(event: Event) -> tuple[str, str] | None:
    """(level, text) of the run-log line an event makes, or None for the events that make none (steps,
    candidates, artifacts): the one wording of the log kept in the store and shown by the monitor."""
    if isinstance(event, RunStarted):
        return "info", f"run started: {event.name}"
    if isinstance(event, StageStarted):
        return "info", f"[{event.stage}] started"
    if isinstance(event, StageFinished):
        return "info", f"[{event.stage}] finished in {event.seconds:.1f} s"
    if isinstance(event, StageFailed):
        return "error", f"[{event.stage}] failed: {event.error}"
    if isinstance(event, StageCancelled):
        return "warning", event.reason
    if isinstance(event, RunFinished):
        return "info", "run finished"
    if isinstance(event, Message):
        return event.level, event.text
    return None


def format_log_line(level: str, text: str) -> str:
    return text if level == "info" else f"{level.upper()}: {text}"


def null_sink(event: Event) -> None:
    """A sink that drops events, for library use without any progress display."""


class Fanout:
    """Send each event to several sinks (a renderer and the store, say). A sink named in ``optional`` (a
    renderer: a terminal, or the pipe to a window) that fails is no longer served, and the run goes on: a
    window closed or crashed while its run works must not fail the run. Any other sink's failure propagates
    (the store is the run's record)."""

    def __init__(self, *sinks: EventSink, optional: tuple[EventSink, ...] = ()):
        self.sinks = list(sinks)
        self.optional = list(optional)
        self.dropped: list[tuple[EventSink, str]] = []

    def __call__(self, event: Event) -> None:
        for sink in list(self.sinks):
            try:
                sink(event)
            except Exception as exc:
                if not any(sink is o for o in self.optional):
                    raise
                self.sinks.remove(sink)
                self.dropped.append((sink, f"{type(exc).__name__}: {exc}"))
                logging.getLogger(__name__).warning("an event subscriber failed (%s: %s) and is no longer served; "
                                                    "the run goes on", type(exc).__name__, exc)


class JsonLinesRenderer:
    """One JSON object per line, flushed at once so that a reading process sees it live."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream if stream is not None else sys.stdout

    def __call__(self, event: Event) -> None:
        self.stream.write(json.dumps(event.to_dict(), default=str) + "\n")
        self.stream.flush()


def _format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class TerminalRenderer:
    """Progress bars for a terminal (tqdm: one live bar per stage with its rate, ETA and losses, fitted to the
    terminal's width); on a pipe or file plain lines, one every tenth of a stage, instead."""

    BAR_WIDTH = 24

    def __init__(self, stream: TextIO | None = None, min_interval_s: float = 0.1):
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval_s = min_interval_s
        self._stage_start: dict[str, float] = {}
        self._last_fraction_logged = -1.0
        self._bar: Any = None  # the open tqdm bar, on a terminal

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepProgress):
            self._progress(event)
            return
        self._close_bar()
        if isinstance(event, RunStarted):
            self._line(f"run {event.run_id} '{event.name}': stages {' -> '.join(event.stages)}")
        elif isinstance(event, StageStarted):
            self._stage_start[event.stage] = event.time
            self._last_fraction_logged = -1.0
            self._line(f"[{event.stage}] started")
        elif isinstance(event, StageFinished):
            self._line(f"[{event.stage}] finished in {_format_duration(event.seconds)}")
        elif isinstance(event, CandidateScored):
            metrics = " ".join(f"{k}={v:.4g}" for k, v in event.metrics.items())
            self._line(f"  candidate {event.arch}: {event.macs / 1e9:.3f}G MACs "
                       f"{event.params / 1e6:.3f}M params {metrics}")
        elif isinstance(event, ArtifactWritten):
            self._line(f"  wrote {event.artifact_kind}: {event.path}")
        elif isinstance(event, RunFinished):
            self._line(f"run {event.run_id} finished")
        elif (line := log_line(event)) is not None:  # failures, cancels, messages: the log's own wording
            self._line(format_log_line(*line))

    def _progress(self, event: StepProgress) -> None:
        start = self._stage_start.setdefault(event.stage, event.time)
        elapsed = max(event.time - start, 1e-9)
        total = event.total_steps
        fraction = min(event.step / total, 1.0) if total else None
        losses = " ".join(f"{k}={v:.4g}" for k, v in event.losses.items())
        rate = event.step / elapsed
        if fraction is not None:
            filled = int(round(fraction * self.BAR_WIDTH))
            bar = "#" * filled + "." * (self.BAR_WIDTH - filled)
            eta = (total - event.step) / rate if rate > 0 else float("inf")
            text = (f"[{event.stage}] |{bar}| {event.step}/{total} "
                    f"{rate:.2f} it/s eta {_format_duration(eta)} {losses}").rstrip()
        else:
            text = f"[{event.stage}] step {event.step} {rate:.2f} it/s {losses}".rstrip()
        if self.interactive:
            self._draw(event, losses)
        elif fraction is None or fraction >= 1.0 or fraction - self._last_fraction_logged >= 0.1:
            self._last_fraction_logged = fraction if fraction is not None else -1.0
            self._line(text)

    def _draw(self, event: StepProgress, losses: str) -> None:
        from tqdm import tqdm

        if self._bar is None:
            # ``initial``: a resumed stage's earlier steps are not counted in its rate.
            self._bar = tqdm(total=event.total_steps, initial=event.step, desc=f"[{event.stage}]", file=self.stream,
                             dynamic_ncols=True, unit="step", mininterval=self.min_interval_s, leave=True,
                             bar_format="{desc} {percentage:3.0f}%|{bar}| {n}/{total} [{elapsed}<{remaining}, "
                                        "{rate_fmt}] {postfix}" if event.total_steps else None)
        self._bar.set_postfix_str(losses, refresh=False)
        self._bar.update(event.step - self._bar.n)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
