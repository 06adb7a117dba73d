"""The model card written beside every exported student: one builder for the export stage and for the export of
any candidate (``export RUN --arch``, the export dialog), so the two cannot drift apart."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine import __version__
from engine.config import RunConfig
from engine.export import Parity
from engine.families.capabilities import export_input_names
from engine.latency import LatencyReading
from engine.onnx_variants import card_variants, skipped_variants
from engine.profile import ModelProfile

#: A candidate of the search: its weights are the supernet's, shared and not fine-tuned.
FROM_SUPERNET = "supernet sub-network (shared weights, not fine-tuned)"


def weights_of(candidate: bool, finetune: dict[str, Any] | None) -> str:
    """Which weights a student has, in words (the card, the compare view's readout): the final student and the
    supernet's sub-network of the same arch differ. ``finetune``: the run's fine-tuning result."""
    if candidate:
        return FROM_SUPERNET
    finetune = finetune or {}
    if finetune.get("kept") == "finetuned":
        return "final student (fine-tuned)"
    if finetune.get("steps"):
        return "final student (the supernet's sub-network: fine-tuning did not improve it, so it was not kept)"
    return "final student (the supernet's sub-network: not fine-tuned, 0 steps)"


@dataclass(frozen=True)
class ModelCard:
    """What a user needs to deploy a student and to trust its numbers."""

    family: str
    model: dict[str, Any]
    arch: str
    weights: str  # ``weights_of``
    image_size: int | str
    inputs: list[str]
    outputs: list[str]
    macs: int
    params: int
    latency_ms: dict[str, float]  # median per backend, on the CPU
    latency: dict[str, dict[str, Any]]  # each backend's reading: conditions, rounds, teacher beside it
    onnx: str
    onnx_max_abs_diff: float
    onnx_variants: dict[str, dict[str, Any]]  # each with its backend, precision, check and speed
    source_run: dict[str, Any]
    recipe: dict[str, Any]
    departures_from_reference: dict[str, dict[str, Any]]
    #: The paper preset the run is compared with, and "paper protocol" when it departs from it in nothing.
    protocol: dict[str, Any] | None = None
    #: The run's metrics on the test split (the export stage scores them; a candidate's export does not).
    metric: dict[str, float] | None = None
    metrics: dict[str, float] | None = None
    metrics_split: str | None = None
    teacher: dict[str, Any] | None = None
    predicted_latency: dict[str, Any] | None = None
    #: Under a latency budget decided on measurement: the search's reading of this student and how it was taken.
    measured_latency: dict[str, Any] | None = None
    onnx_variants_skipped: dict[str, str] = field(default_factory=dict)  # variant -> why none was built
    latency_device: str = "cpu"
    onnx_opset: int = 17
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    workbench_version: str = __version__

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.as_dict(), indent=1, default=str))
        return path


def protocol_of(config: RunConfig) -> dict[str, Any] | None:
    """{"name", "paper_protocol", "departures", "words"}: how the run stands to its paper experiment."""
    name = config.protocol_name
    if name is None:
        return None
    count = len(config.departures)
    words = "paper protocol" if count == 0 else \
        f"departs from the paper protocol ({name}) in {count} setting{'s' if count != 1 else ''}"
    return {"name": name, "paper_protocol": count == 0, "departures": count, "words": words}


def build_model_card(config: RunConfig, *, arch: str, weights: str, profile: ModelProfile,
                     readings: dict[str, LatencyReading], onnx_path: Path, parity: Parity,
                     variants: dict[str, dict[str, Any]], source_run: dict[str, Any],
                     metrics: dict[str, float] | None = None, metric: str | None = None,
                     teacher: dict[str, Any] | None = None,
                     predicted_latency: dict[str, Any] | None = None,
                     measured_latency: dict[str, Any] | None = None) -> ModelCard:
    """The card of a student of the run ``config`` exported to ``onnx_path`` (its readings timed beside the
    teacher, as everywhere)."""
    family, options = config.family_impl, config.options
    return ModelCard(
        family=config.family, model=options.model_dump(), arch=arch, weights=weights, image_size=config.image_size,
        inputs=list(export_input_names(family, options)), outputs=list(family.output_names),
        macs=profile.macs, params=profile.params,
        latency_ms={backend: reading.timings["student"].median_ms for backend, reading in readings.items()},
        latency={backend: reading.as_dict() for backend, reading in readings.items()},
        onnx=onnx_path.name, onnx_max_abs_diff=parity.max_abs_diff, onnx_variants=card_variants(variants),
        onnx_variants_skipped=skipped_variants(tuple(config.export.variants)),
        source_run=source_run, recipe=config.recipe_card, departures_from_reference=config.departures,
        protocol=protocol_of(config),
        metric={metric: metrics[metric]} if metrics is not None and metric is not None else None,
        metrics=metrics, metrics_split="test" if metrics is not None else None, teacher=teacher,
        predicted_latency=predicted_latency, measured_latency=measured_latency)
