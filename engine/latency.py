"""One latency protocol for every number the product shows (CLI summary, model card, export dialog,
compare view, benchmarks).

Warm-up, then rounds in which every model runs once, interleaved (the order alternates from round to
round), until each model's median has settled or a time cap is reached. Each model's reading is the
median with its p10-p90 spread; the speed-up of one model over another is the median of their ratios
*within* rounds, so a machine that gets busier half-way slows both sides of each ratio alike. A wide
spread is reported as a busy machine. On CUDA every timed run is synchronised."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

#: (p90 - p10) / median above this: the machine was busy while measuring (the figure is less certain).
BUSY_SPREAD = 0.25


@dataclass(frozen=True)
class Timing:
    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int

    @property
    def spread(self) -> float:
        return (self.p90_ms - self.p10_ms) / self.median_ms if self.median_ms > 0 else 0.0

    @classmethod
    def of(cls, times_ms: list[float]) -> Timing:
        p10, p90 = np.percentile(times_ms, [10, 90])
        return cls(float(statistics.median(times_ms)), float(p10), float(p90), len(times_ms))

    def label(self) -> str:
        return f"{self.median_ms:.2f} ms (p10-p90 {self.p10_ms:.2f}-{self.p90_ms:.2f})"


@dataclass(frozen=True)
class LatencyReading:
    """Latencies of several models measured together, with the conditions they were measured in."""

    device: str
    backend: str
    threads: int
    batch: int
    size: tuple[int, int]  # (height, width)
    timings: dict[str, Timing]
    ratios: dict[str, Timing] = field(default_factory=dict)  # "teacher/student": per-round ratio
    seconds: float = 0.0
    #: The precision the runtime was asked for (OpenVINO's hint); PyTorch and ONNX Runtime run the files' f32.
    precision: str = "f32"

    @property
    def busy(self) -> bool:
        return any(t.spread > BUSY_SPREAD for t in self.timings.values())

    def median_ms(self) -> dict[str, float]:
        return {name: t.median_ms for name, t in self.timings.items()}

    def select(self, names: dict[str, str], backend: str) -> LatencyReading:
        """The reading of some of its models (``{new name: measured name}``) as measured with ``backend``: their
        timings, and the per-round ratios between them, from the same interleaved rounds."""
        back = {old: new for new, old in names.items()}
        ratios = {}
        for key, timing in self.ratios.items():
            a, b = key.split("/")
            if a in back and b in back:
                ratios[f"{back[a]}/{back[b]}"] = timing
        return replace(self, backend=backend, timings={new: self.timings[old] for new, old in names.items()},
                       ratios=ratios)

    def conditions(self) -> str:
        height, width = self.size
        text = (f"{self.backend} on {self.device}, {self.threads} thread{'s' if self.threads != 1 else ''}, "
                f"batch {self.batch}, {width}x{height}")
        if self.backend == "openvino" or self.precision != "f32":  # OpenVINO runs what its hint asks
            text += f", {self.precision} precision hint"
        return text + (", machine busy (wide spread)" if self.busy else "")

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "backend": self.backend, "threads": self.threads, "batch": self.batch,
                "size": list(self.size), "busy": self.busy, "seconds": round(self.seconds, 2),
                "timings": {k: {**vars(t), "spread": round(t.spread, 4)} for k, t in self.timings.items()},
                "ratios": {k: vars(t) for k, t in self.ratios.items()}, "precision": self.precision}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyReading:
        timing = lambda d: Timing(d["median_ms"], d["p10_ms"], d["p90_ms"], d["runs"])  # noqa: E731
        return cls(data["device"], data["backend"], data["threads"], data["batch"], tuple(data["size"]),
                   {k: timing(v) for k, v in data["timings"].items()},
                   {k: timing(v) for k, v in data.get("ratios", {}).items()}, data.get("seconds", 0.0),
                   data.get("precision", "f32"))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _settled(times: list[float], window: int, tolerance: float) -> bool:
    """The median of all runs moved less than ``tolerance`` (relative) over the last ``window`` runs."""
    if len(times) < 2 * window:
        return False
    now, before = statistics.median(times), statistics.median(times[:-window])
    return abs(now - before) <= tolerance * now


def measure(runners: dict[str, Callable[[], Any]], *, device: torch.device | str = "cpu", backend: str = "pytorch",
            batch: int = 1, size: tuple[int, int] = (0, 0), warmup: int = 3, min_rounds: int = 10,
            max_rounds: int = 1000, time_cap_s: float = 20.0, tolerance: float = 0.02,
            pairs: list[tuple[str, str]] | None = None, threads: int | None = None,
            clock: Callable[[], float] = time.perf_counter) -> LatencyReading:
    """Time each of ``runners`` (name -> one run of a model on its input) with the protocol above;
    ``pairs`` (default: the first name over each other) get the per-round ratio."""
    device = torch.device(device)
    names = list(runners)
    for _ in range(warmup):
        for name in names:
            runners[name]()
    _synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in names}
    started = clock()
    rounds = 0
    while rounds < max_rounds:
        order = names if rounds % 2 == 0 else names[::-1]
        for name in order:
            _synchronize(device)
            t0 = clock()
            runners[name]()
            _synchronize(device)
            times[name].append((clock() - t0) * 1000)
        rounds += 1
        if rounds >= min_rounds:
            window = max(5, rounds // 4)
            if all(_settled(t, window, tolerance) for t in times.values()) or clock() - started >= time_cap_s:
                break
    pairs = pairs if pairs is not None else [(names[0], other) for other in names[1:]]
    ratios = {f"{a}/{b}": Timing.of([x / y for x, y in zip(times[a], times[b]) if y > 0]) for a, b in pairs}
    return LatencyReading(device=str(device), backend=backend, threads=threads or torch.get_num_threads(), batch=batch,
                          size=tuple(size), timings={n: Timing.of(t) for n, t in times.items()}, ratios=ratios,
                          seconds=clock() - started)


def speedup(reading: dict[str, Any], slow: str = "teacher", fast: str = "student") -> float | None:
    """The per-round median ratio ``slow/fast`` of a reading (``as_dict`` form), if it was measured."""
    ratio = reading.get("ratios", {}).get(f"{slow}/{fast}")
    return ratio["median_ms"] if ratio else None


def faster(ratio: float) -> str:
    """A speed ratio (old time / new time) in words that stay true below 1."""
    return f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"


def describe(reading: LatencyReading | dict[str, Any], slow: str = "teacher", fast: str = "student") -> str:
    """One line for people: the conditions, each model's median and spread, and the speed-up (of a reading, or
    its ``as_dict`` form as result files keep it)."""
    parsed = reading if isinstance(reading, LatencyReading) else LatencyReading.from_dict(reading)
    parts = [f"{name} {timing.label()}" for name, timing in parsed.timings.items()]
    ratio = parsed.ratios.get(f"{slow}/{fast}")
    text = f"{parsed.conditions()}: {', '.join(parts)}"
    if ratio is not None:
        text += f"; {fast} {faster(ratio.median_ms)} (ratio p10-p90 {ratio.p10_ms:.2f}-{ratio.p90_ms:.2f})"
    return text
