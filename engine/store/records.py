"""Plain data that the store's bulk reads return: no ORM objects, so that a run with 10^5 candidates or a
series of 10^5 points is read into a few arrays at once."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from engine.metric_names import HIGHER_IS_BETTER


@dataclass(frozen=True)
class RunSummary:
    """What a runs list shows of one run."""

    id: int
    name: str
    family: str
    dataset: str
    status: str
    stage: str | None
    step: int
    total_steps: int | None
    best_macs: int | None
    best_metric: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    error: str | None
    candidates: int = 0
    best_arch: str | None = None
    #: Finished runs: student vs teacher on the test split.
    result: ListedResult | None = None
    processes: int = 1
    hosts: list[str] | None = None
    #: Where a running run's process is and when it last wrote its heartbeat (``engine.liveness``).
    host: str | None = None
    pid: int | None = None
    heartbeat_at: datetime | None = None
    #: Its configuration's image size (a side, or "WxH"): MACs of runs at other sizes are not comparable.
    image_size: int | str | None = None
    #: What is wrong with its stored record (a field that is not valid JSON), so that it is listed as damaged with
    #: how to remove it, and every other run as usual; None for a sound record.
    damaged: str | None = None


@dataclass(frozen=True)
class ListedResult:
    """What the store keeps of a finished run for the runs list: student and teacher on the summary's split."""

    metric: str
    split: str
    student: dict[str, float]
    teacher: dict[str, float]
    arch: str | None = None
    macs_ratio: float | None = None

    @classmethod
    def of_summary(cls, summary: dict[str, Any]) -> ListedResult:
        """From a finished run's summary (its export stage's result)."""
        return cls(summary["metric"], summary.get("metrics_split", "test"), summary["student"]["metrics"],
                   summary["teacher"]["metrics"], summary["student"]["arch"], summary["macs_ratio"])

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_stored(cls, data: Any) -> ListedResult | None:
        """As the store holds it (JSON), or None where there is none or it cannot be read."""
        try:
            return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})
        except (TypeError, KeyError):
            return None


@dataclass(frozen=True)
class StageDetail:
    """One stage of a run as a view shows it."""

    name: str
    status: str  # pending, running, finished, failed, cancelled
    step: int
    total_steps: int | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class ArtifactDetail:
    kind: str
    path: str
    stage: str | None


@dataclass(frozen=True)
class RunDetail:
    """One run with its stages and artifacts, as plain data (what the monitor shows; never an ORM row)."""

    id: int
    name: str
    family: str
    dataset: str
    status: str
    error: str | None
    config: dict[str, Any]
    created_at: datetime
    stages: list[StageDetail]
    artifacts: list[ArtifactDetail]

    def stage(self, name: str) -> StageDetail | None:
        return next((s for s in self.stages if s.name == name), None)


@dataclass(frozen=True)
class CandidateRecord:
    """A scored sub-network as the search writes it."""

    arch: str
    macs: int
    params: int
    metrics: dict[str, float]
    latency_ms: float | None = None  # predicted by the latency table
    measured_ms: float | None = None  # measured end to end in the budget's backend


@dataclass
class CandidateTable:
    """The candidates of a run as columns: ``metrics[name][i]`` is NaN where candidate i lacks that metric,
    ``latency_ms[i]`` NaN where it was not predicted, ``measured_ms[i]`` NaN where it was not measured. Rows are
    in the order they were recorded."""

    run_id: int
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    archs: list[str] = field(default_factory=list)
    macs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    params: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    latency_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    metrics: dict[str, np.ndarray] = field(default_factory=dict)
    measured_ms: np.ndarray | None = None  # None: all NaN (set in __post_init__)
    _index: dict[str, int] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.measured_ms is None or len(self.measured_ms) != len(self.archs):
            self.measured_ms = np.full(len(self.archs), math.nan)

    def __len__(self) -> int:
        return len(self.archs)

    @classmethod
    def from_rows(cls, run_id: int, ids: list[int], archs: list[str], macs: list[int], params: list[int],
                  latency: list[float | None], metrics: list[dict[str, float]],
                  measured: list[float | None] | None = None) -> CandidateTable:
        names = sorted({name for row in metrics for name in row})
        columns = {name: np.array([row.get(name, math.nan) for row in metrics], dtype=float) for name in names}
        return cls(run_id, np.array(ids, dtype=np.int64), list(archs), np.array(macs, dtype=np.int64),
                   np.array(params, dtype=np.int64), _column(latency), columns,
                   None if measured is None else _column(measured))

    def extend(self, other: CandidateTable) -> int:
        """Append ``other``'s rows (later candidates of the same run); an arch already here, or repeated in
        ``other``, keeps only its last score. Returns how many earlier rows were so replaced (then rows
        after them moved up)."""
        if not len(other):
            return 0
        index = self._arch_index()
        n, m = len(self), len(other)
        replaced = []
        for offset, arch in enumerate(other.archs):
            if arch in index:
                replaced.append(index[arch])
            index[arch] = n + offset
        for name in set(self.metrics) | set(other.metrics):
            mine = self.metrics.get(name, np.full(n, math.nan))
            theirs = other.metrics.get(name, np.full(m, math.nan))
            self.metrics[name] = np.concatenate([mine, theirs])
        self.ids = np.concatenate([self.ids, other.ids])
        self.archs = self.archs + other.archs
        self.macs = np.concatenate([self.macs, other.macs])
        self.params = np.concatenate([self.params, other.params])
        self.latency_ms = np.concatenate([self.latency_ms, other.latency_ms])
        self.measured_ms = np.concatenate([self.measured_ms, other.measured_ms])  # type: ignore[list-item]
        if replaced:
            self._drop(replaced)
        return len(replaced)

    def _arch_index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {arch: i for i, arch in enumerate(self.archs)}
        return self._index

    def row_of(self, arch: str) -> int | None:
        return self._arch_index().get(arch)

    def _drop(self, rows: list[int]) -> None:
        keep = np.ones(len(self), dtype=bool)
        keep[rows] = False
        self.ids, self.macs, self.params = self.ids[keep], self.macs[keep], self.params[keep]
        self.latency_ms = self.latency_ms[keep]
        self.measured_ms = self.measured_ms[keep]  # type: ignore[index]
        self.archs = [arch for arch, k in zip(self.archs, keep) if k]
        self.metrics = {name: values[keep] for name, values in self.metrics.items()}
        self._index = None

    def scores(self, metric: str | None) -> np.ndarray:
        """``metric`` per candidate signed so that lower is better (``metric_names.score`` as a column);
        NaN where it was not measured."""
        values = self.metrics.get(metric or "")
        if values is None:
            return np.full(len(self), math.nan)
        return -values if HIGHER_IS_BETTER.get(metric or "", False) else values

    def row(self, index: int) -> dict[str, Any]:
        latency, measured = float(self.latency_ms[index]), float(self.measured_ms[index])  # type: ignore[index]
        return {"run_id": self.run_id, "arch": self.archs[index], "macs": int(self.macs[index]),
                "params": int(self.params[index]),
                "metrics": {name: float(values[index]) for name, values in self.metrics.items()
                            if not math.isnan(values[index])},
                "latency_ms": None if math.isnan(latency) else latency,
                "measured_ms": None if math.isnan(measured) else measured}


def _column(values: list[float | None]) -> np.ndarray:
    """A float column, None as NaN."""
    return np.array([math.nan if v is None else v for v in values], dtype=float)


@dataclass(frozen=True)
class Curve:
    """A series as a plot reads it: at ``width`` 1 the recorded points (``low`` = ``high`` = ``values``);
    wider, one row per ``width`` steps with the mean, the extremes and the middle step of each bucket."""

    steps: np.ndarray
    values: np.ndarray
    low: np.ndarray
    high: np.ndarray
    width: int
