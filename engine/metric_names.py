"""What the engine knows of a metric by its name alone, without importing the networks behind it, so the
store, its migrations and the views can rank candidates."""

from __future__ import annotations

from collections.abc import Iterable

#: Whether a larger value is better, per metric name.
HIGHER_IS_BETTER = {"fid": False, "rfid": False, "psnr": True, "ssim": True, "psnr_to_teacher": True, "miou": True}

#: The metric that ranks a run's candidates when the run does not name one: the first of these it has.
PRIMARY_METRICS = ("fid", "rfid", "psnr", "miou")


def primary_metric(names: Iterable[str]) -> str | None:
    present = set(names)
    return next((name for name in PRIMARY_METRICS if name in present), None)


def score(metric: str | None, metrics: dict[str, float]) -> float | None:
    """The value of ``metric`` signed so that lower is better, or None when it was not measured."""
    if metric is None or metric not in metrics or metrics[metric] is None:
        return None
    value = float(metrics[metric])
    return -value if HIGHER_IS_BETTER.get(metric, False) else value
