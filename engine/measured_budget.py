"""A latency budget decided on measurement, not on the table's prediction.

The table predicts OpenVINO's end-to-end time with a mean error near 30% (``docs/benchmarks.md``), so a student
"under 20 ms" by the table can take 30. Measuring one sub-network end to end takes about a second where scoring
it takes 10-25 s, so the search measures every candidate it could keep: the table only decides which ones
are worth measuring (those predicted within ``margin`` of the budget), each measurement is kept per
sub-network (a resumed search reuses it), and the budget is decided on it. By default (``search.measure:
kept``) a candidate is measured only when the search would keep it (the best so far, or a parent), after it is
scored; ``drawn`` measures every candidate the pre-filter passes before it is scored (``engine.search``).

Measurements must hold on a busy machine, so no candidate is timed alone: each is timed interleaved with one
fixed reference network (the space's smallest sub-network) in the same rounds, and what is kept is the
median of the per-round ratios, which a machine that slows down slows on both sides alike. The reference's
own latency, and the teacher's (for a budget given as a speed-up over it), are measured once as the search
starts, the same way. A reading whose per-round ratios spread more than ``BUSY_SPREAD`` was taken while the
machine was busy: it is repeated (up to ``attempts`` times) and the steadiest kept, and the result says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from engine.arch import Arch
from engine.latency import BUSY_SPREAD, LatencyReading

#: Candidates predicted at most this much over the budget (relative) are measured; the rest are refused on the
#: prediction alone. The table's mean error is 30% for OpenVINO: 0.5 keeps its worst cases in.
DEFAULT_MARGIN = 0.5

#: Times ``{"reference": ..., "candidate": ...}`` of one sub-network, interleaved: a reading with the per-round
#: ratio "reference/candidate".
PairTimer = Callable[[Arch], LatencyReading]


@dataclass(frozen=True)
class Measurement:
    """One sub-network measured end to end against the reference, as kept per sub-network."""

    arch: str
    ms: float  # the reference's own latency over the per-round ratio
    speedup_over_reference: float  # median per-round ratio reference / candidate
    ratio_spread: float  # (p90 - p10) / median of those ratios
    attempts: int
    busy: bool  # every attempt's ratios spread over BUSY_SPREAD: the figure is less certain
    conditions: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})

    def how(self) -> str:
        """How it was measured, in words, for the result and the card."""
        busy = "; the machine stayed busy, so it is less certain" if self.busy else ""
        return (f"measured end to end ({self.conditions}), interleaved with the reference network over "
                f"{self.attempts} reading{'s' if self.attempts != 1 else ''} (ratio spread "
                f"{self.ratio_spread:.0%}){busy}")


@dataclass(frozen=True)
class Baseline:
    """The reference network's latency, and the teacher's speed relative to it, measured once per search."""

    reference_ms: float
    teacher_over_reference: float | None  # median per-round ratio teacher / reference (None: not measured)

    @property
    def teacher_ms(self) -> float | None:
        return None if self.teacher_over_reference is None else self.reference_ms * self.teacher_over_reference


def describe_kept(found: dict[str, Any]) -> str:
    """The kept student's measurement as a search result holds it (``latency_measured``), in words: its latency,
    its speed-up over the teacher where measured, and how it was measured (the CLI, the summary and the compare
    view say it alike)."""
    speedup = found.get("speedup_over_teacher")
    speedup_words = "" if speedup is None else f", {speedup:.3g}x faster than the teacher"
    return f"{found['ms']:.3g} ms{speedup_words}, {found['how']}"


def on_reference(predicted: Callable[[Arch], float], reference: Arch,
                 reference_ms: float) -> tuple[Callable[[Arch], float], float]:
    """The table's predictions put on the reference network's time as measured now, and the factor: a table is
    fitted once, when it is built, and the machine may run faster or slower since (a shared host ran the same
    network 3.3 and 5.7 ms minutes apart, and a search then measured 200-300 candidates the stale table had let
    through where 40-50 had done). Only the pre-filter uses it: which candidates are measured, never a decision."""
    scale = reference_ms / predicted(reference)
    return (lambda arch: scale * predicted(arch)), scale


def steadiest(take: Callable[[], LatencyReading], key: str, attempts: int) -> tuple[LatencyReading, int]:
    """The steadiest of up to ``attempts`` readings ``take()`` gives (by the spread of their per-round ratio
    ``key``; a new one only while the last was busy), and how many were taken."""
    readings = []
    for _ in range(attempts):
        readings.append(take())
        if readings[-1].ratios[key].spread <= BUSY_SPREAD:
            break
    return min(readings, key=lambda reading: reading.ratios[key].spread), len(readings)


class MeasuredBudget:
    """Whether a sub-network meets a latency budget (``budget_ms``) and/or a speed-up over the teacher
    (``speedup``), decided on measurement; ``predicted`` (the table) pre-filters with ``margin``."""

    def __init__(self, timer: PairTimer, baseline: Baseline, *, budget_ms: float | None = None,
                 speedup: float | None = None, predicted: Callable[[Arch], float] | None = None,
                 predicted_teacher_ms: float | None = None, margin: float = DEFAULT_MARGIN,
                 cache: dict[str, Measurement] | None = None, attempts: int = 3,
                 saved: Callable[[Measurement], None] | None = None) -> None:
        if budget_ms is None and speedup is None:
            raise ValueError("a measured budget needs budget_ms, speedup or both")
        if speedup is not None and baseline.teacher_over_reference is None:
            raise ValueError("a speed-up budget needs the teacher measured against the reference")
        self.timer, self.baseline = timer, baseline
        self.budget_ms, self.speedup, self.margin = budget_ms, speedup, margin
        self.predicted, self.predicted_teacher_ms = predicted, predicted_teacher_ms
        self.cache = dict(cache or {})
        self.attempts = attempts
        self.saved = saved
        self.measured = 0  # measurements taken by this search (not read from the cache)
        self.seconds = 0.0  # spent measuring
        self.refused_on_prediction = 0

    def limit_ms(self) -> float:
        """The latency a sub-network must meet: the tighter of the budget and the teacher's over the speed-up."""
        limits = [] if self.budget_ms is None else [self.budget_ms]
        if self.speedup is not None:
            limits.append(self.baseline.teacher_ms / self.speedup)  # type: ignore[operator]
        return min(limits)

    def worth_measuring(self, arch: Arch) -> bool:
        """The table's prediction is within the margin of the limit (or there is no table)."""
        if self.predicted is None or str(arch) in self.cache:
            return True
        limit = self.budget_ms
        if self.speedup is not None and self.predicted_teacher_ms is not None:
            by_speedup = self.predicted_teacher_ms / self.speedup
            limit = by_speedup if limit is None else min(limit, by_speedup)
        return limit is None or self.predicted(arch) <= limit * (1 + self.margin)

    def measure(self, arch: Arch) -> Measurement:
        """The sub-network's measurement: from the cache, or timed against the reference (repeated while the
        machine is busy) and added to it."""
        key = str(arch)
        if key in self.cache:
            return self.cache[key]
        ratio_key = "reference/candidate"
        started = time.perf_counter()
        reading, attempts = steadiest(lambda: self.timer(arch), ratio_key, self.attempts)
        ratio = reading.ratios[ratio_key]
        measurement = Measurement(key, self.baseline.reference_ms / ratio.median_ms, ratio.median_ms, ratio.spread,
                                  attempts, ratio.spread > BUSY_SPREAD, reading.conditions().split(", machine busy")[0])
        self.cache[key] = measurement
        self.measured += 1
        self.seconds += time.perf_counter() - started
        if self.saved is not None:
            self.saved(measurement)
        return measurement

    def drawable(self, arch: Arch) -> bool:
        """The pre-filter alone (counting its refusals): whether the search may draw and score the sub-network
        before it is measured."""
        if not self.worth_measuring(arch):
            self.refused_on_prediction += 1
            return False
        return True

    def fits(self, arch: Arch) -> bool:
        if not self.drawable(arch):
            return False
        measurement = self.measure(arch)
        return measurement.ms <= self.limit_ms()

    def speedup_of(self, arch: Arch) -> float | None:
        """The measured speed-up of a sub-network over the teacher (None without the teacher measured)."""
        if self.baseline.teacher_over_reference is None:
            return None
        return self.baseline.teacher_over_reference * self.measure(arch).speedup_over_reference

    def describe(self) -> str:
        parts = [] if self.budget_ms is None else [f"{self.budget_ms:g} ms"]
        if self.speedup is not None:
            parts.append(f"{self.speedup:g}x faster than the teacher ({self.baseline.teacher_ms:.3g} ms)")
        return " and ".join(parts) + " measured end to end"
