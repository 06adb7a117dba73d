"""Scoring generated images of a run: the run's primary metric (FID, its labelled fallback rFID, or
PSNR), plus PSNR/SSIM to the ground truth for paired tasks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.errors import ConfigError
from engine.families.capabilities import label_ids
from engine.metrics import (HIGHER_IS_BETTER, FeatureExtractor, RealStatistics, frechet_to_real, psnr,
                            resolve_extractor, ssim)
from engine.metrics.feature_backend import BackendChoice, choose_backend
from engine.metrics.segmentation import SegmentationNetwork, miou, read_label_maps, resolution_words
from engine.stages.context import StageContext
from engine.stages.data import RunData, real_statistics

_EXTRACTORS: dict[tuple[str, str, str], tuple[str, FeatureExtractor]] = {}
#: Extractors on their backend, per extractor, requested backend and image shape: compiled once per process.
_ON_BACKEND: dict[tuple, tuple[FeatureExtractor, BackendChoice]] = {}
#: Real images the backends are compared on before a run scores anything.
PROBE_IMAGES = 8


def to_8bit(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] as the 8-bit files the reference scores: ``tensor2im`` scales to [0, 255],
    clips and truncates to integers; returned in [-1, 1] again."""
    # The same operations in the same order, in place on clamp's copy: the same values to the last bit, in a
    # quarter of the time (a search makes 50 images 8-bit per candidate: 0.13 s against 0.03 s at 256 px).
    levels = images.clamp(-1, 1).add_(1).div_(2).mul_(255).floor_()
    return levels.div_(255).mul_(2).sub_(1)


@dataclass
class Scorer:
    metric: str
    higher_is_better: bool
    ground_truth: bool
    targets: torch.Tensor
    extractor: FeatureExtractor | None = None
    real: RealStatistics | None = None
    eight_bit: bool = True
    #: mIoU: the segmentation network and the split's label ids it should recover: (N, H, W) at the run's size,
    #: or one array per image at the label maps' own resolution.
    segmentation: SegmentationNetwork | None = None
    label_truth: torch.Tensor | list | None = None
    #: Where the feature network runs, and how that was checked (None: no feature network).
    backend: BackendChoice | None = None
    #: Where the segmentation network runs, and how that was checked, in words (None: no segmenter).
    segmentation_backend: str | None = None

    @property
    def backend_note(self) -> str | None:
        """Where the networks behind the metrics run, in words for the log, the result and the summary."""
        notes = [note for note in (self.backend.note if self.backend else None, self.segmentation_backend) if note]
        return "; ".join(notes) or None

    def _scored_images(self, outputs: torch.Tensor) -> torch.Tensor:
        """What the networks behind FID and mIoU see: the 8-bit images the reference scores, or the floats."""
        return to_8bit(outputs) if self.eight_bit else outputs

    def primary(self, outputs: torch.Tensor) -> float:
        if self.metric == "psnr":
            return psnr(outputs, self.targets)
        images = self._scored_images(outputs)
        if self.metric == "miou":
            return miou(self.segmentation, images, self.label_truth)  # type: ignore[arg-type]
        return frechet_to_real(self.extractor(images), self.real)  # type: ignore[misc,arg-type]

    def all(self, outputs: torch.Tensor) -> dict[str, float]:
        values = {self.metric: self.primary(outputs)}
        if self.segmentation is not None and self.metric != "miou":
            values["miou"] = miou(self.segmentation, self._scored_images(outputs),
                                  self.label_truth)  # type: ignore[arg-type]
        if self.ground_truth:
            values.setdefault("psnr", psnr(outputs, self.targets))
            values["ssim"] = ssim(outputs, self.targets)
        return values

    def better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b

    @property
    def notes(self) -> dict[str, str]:
        """What a metric's number is where its name does not say (mIoU: percent, and at which resolution)."""
        return {} if self.label_truth is None else {"miou": resolution_words(self.label_truth)}


def _extractor(ctx: StageContext) -> tuple[str, FeatureExtractor]:
    # On the run's device: on a GPU, features on the CPU would make scoring CPU-bound.
    key = (ctx.config.metric, str(ctx.settings.inception_weights), str(ctx.device))
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = resolve_extractor(ctx.config.metric, ctx.settings.inception_weights, str(ctx.device),
                                             lambda text: ctx.message(text, level="warning"))
    return _EXTRACTORS[key]


def make_scorer(ctx: StageContext, data: RunData, split: str) -> Scorer:
    """A scorer against the ``search`` (held-out training images) or ``test`` split."""
    targets = data.search_targets if split == "search" else data.test_targets
    family = ctx.config.family_impl
    ground_truth = "psnr" in family.metrics
    if ctx.config.metric == "psnr":
        if not ground_truth:
            raise ConfigError(f"metric psnr needs ground truth, which a {family.name} dataset has not; use metric fid")
        return Scorer("psnr", True, True, targets)
    eight_bit = ctx.config.resolved_recipe.fid_8bit
    segmentation, truth, segmentation_backend = None, None, None
    if ctx.config.segmentation is not None:
        segmentation, segmentation_backend = _segmentation(ctx, targets)
        paths = data.search_paths if split == "search" else data.test_paths
        if ctx.config.segmentation.resolution == "full" and paths:
            truth = read_label_maps([Path(p) for p in paths])  # the reference's: each map at its own resolution
        else:
            truth = label_ids(family, data.search_inputs if split == "search" else data.test_inputs)
    if ctx.config.metric == "miou":
        return Scorer("miou", True, ground_truth, targets, eight_bit=eight_bit, segmentation=segmentation,
                      label_truth=truth, segmentation_backend=segmentation_backend)
    name, extractor = _extractor(ctx)
    real_set = data.real_sets[split]
    real, _ = real_statistics(real_set, ctx.config.size_hw, extractor, ctx.settings.workspace / "stats")
    probe = torch.stack([real_set[i]["B"] for i in range(min(PROBE_IMAGES, len(real_set)))])
    key = (id(extractor), ctx.config.search.scoring_backend, tuple(probe.shape[1:]))
    if key not in _ON_BACKEND:
        _ON_BACKEND[key] = choose_backend(extractor, ctx.config.search.scoring_backend, probe, real, str(ctx.device))
    extractor, backend = _ON_BACKEND[key]
    if backend.backend == "pytorch" and ctx.config.search.scoring_backend == "openvino":
        ctx.message(f"{backend.note}; PyTorch is used", level="warning")
    return Scorer(name, HIGHER_IS_BETTER[name], ground_truth, targets, extractor, real, eight_bit=eight_bit,
                  segmentation=segmentation, label_truth=truth, backend=backend,
                  segmentation_backend=segmentation_backend)


#: Segmenters on their backend, per file, requested backend and image shape: compiled once per process.
_SEGMENTERS: dict[tuple, tuple[SegmentationNetwork, str]] = {}


def _segmentation(ctx: StageContext, real: torch.Tensor) -> tuple[SegmentationNetwork, str]:
    """The run's segmentation network, in OpenVINO where it gives ONNX Runtime's scores on ``real`` images of
    the split (``SegmentationNetwork.choose_backend``), and where it runs, in words."""
    spec = ctx.config.segmentation
    probe = real[:PROBE_IMAGES]
    key = (str(spec.onnx), str(spec.classes), ctx.config.search.scoring_backend,  # type: ignore[union-attr]
           tuple(probe.shape[1:]))
    if key not in _SEGMENTERS:
        network = SegmentationNetwork(Path(spec.onnx), spec.classes, ctx.config.threads)  # type: ignore[union-attr]
        _SEGMENTERS[key] = network, network.choose_backend(ctx.config.search.scoring_backend, probe)
    return _SEGMENTERS[key]


#: Pixels per generation batch on the CPU: a CycleGAN sub-network generates 50 images at 256 px in 10.5 s one
#: at a time against 17.1 s in one batch of 64 (its activations no longer fit the caches), and at 64 px in
#: 0.69 s in batches of 16 against 0.73 s in 64 (2-core AMD EPYC; ``benchmarks/candidate_scoring.py``).
CPU_BATCH_PIXELS = 16 * 64 * 64


def batch_size_for(inputs: torch.Tensor, device: torch.device) -> int:
    """Images per generation batch: 64 on a GPU; on the CPU as many as fit :data:`CPU_BATCH_PIXELS`."""
    if device.type != "cpu":
        return 64
    return max(1, min(64, CPU_BATCH_PIXELS // max(1, inputs.shape[-1] * inputs.shape[-2])))


@torch.no_grad()
def generate(model: Callable[..., torch.Tensor], inputs: torch.Tensor, device: torch.device,
             conditioning: tuple[torch.Tensor, ...] = (), batch_size: int | None = None) -> torch.Tensor:
    """``model(images, *conditioning)`` over ``inputs`` in batches (``RunData.*_conditioning``); each image's
    output does not depend on the batch (every model is in eval mode), only the speed does."""
    batch_size = batch_size or batch_size_for(inputs, device)
    return torch.cat([model(inputs[i:i + batch_size].to(device), *(c[i:i + batch_size].to(device) for c in conditioning)
                            ).cpu() for i in range(0, len(inputs), batch_size)])
