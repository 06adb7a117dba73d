"""A finished run's result (its export stage's ``result.json``) as typed data: what the summary tab, the CLI's
summary and the runs list read, instead of a dict read by string in each of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any


@dataclass(frozen=True)
class ModelResult:
    """The teacher or the student of a finished run."""

    macs: int
    params: int
    metrics: dict[str, float]
    latency_ms: dict[str, float]  # median per backend, on the CPU
    arch: str | None = None  # the student's
    weights: str | None = None  # the student's, in words (``engine.model_card.weights_of``)


@dataclass(frozen=True)
class RunResult:
    run_id: int
    teacher: ModelResult
    student: ModelResult
    macs_ratio: float
    metric: str
    image_size: int | str
    onnx_path: str
    onnx_max_abs_diff: float
    model_card_path: str
    grid_path: str
    metrics_split: str = "test"
    #: What a metric's number is where its name does not say (mIoU: "percent, at 2048x1024").
    metric_notes: dict[str, str] = field(default_factory=dict)
    threads: int | None = None
    device: str = "cpu"  # where the latency was measured
    run_device: str | None = None  # where the run trained and searched
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)  # each backend's reading
    onnx_variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    onnx_variants_skipped: dict[str, str] = field(default_factory=dict)  # variant -> why this machine built none
    grid_columns: list[str] = field(default_factory=lambda: ["input", "teacher", "student", "difference"])
    predicted_latency: dict[str, Any] | None = None
    search: dict[str, Any] = field(default_factory=dict)
    finetune: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    #: How the run stands to its paper experiment (``model_card.protocol_of``): its name, "paper protocol" or
    #: the number of departures.
    protocol: dict[str, Any] | None = None

    @property
    def params_ratio(self) -> float:
        return self.teacher.params / max(self.student.params, 1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        """From the export stage's result (runs of earlier versions lack some keys: their defaults)."""
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known and v is not None}
        values["teacher"] = _model(data["teacher"])
        values["student"] = _model(data["student"])
        return cls(**values)


def _model(data: dict[str, Any]) -> ModelResult:
    return ModelResult(macs=data["macs"], params=data["params"], metrics=data.get("metrics", {}),
                       latency_ms=data.get("latency_ms", {}), arch=data.get("arch"), weights=_weights_used(data))


def _weights_used(data: dict[str, Any]) -> str | None:
    """Which weights the student has, in words. Runs of the previous version kept the words under "weights", which
    the run's file keys took for a file and made absolute ("/cwd/final student (fine-tuned)"): its last part."""
    if data.get("weights_used"):
        return data["weights_used"]
    words = data.get("weights")
    return PurePath(words).name if words else None
