"""Scoring generated images of a run: the run's primary metric (FID, its labelled fallback rFID, or
PSNR), plus PSNR/SSIM to the ground truth for paired tasks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from engine.errors import ConfigError
from engine.metrics import HIGHER_IS_BETTER, FeatureExtractor, frechet_distance, gaussian_stats, psnr, resolve_extractor, ssim
from engine.stages.context import StageContext
from engine.stages.data import RunData, real_statistics

_EXTRACTORS: dict[tuple[str, str], tuple[str, FeatureExtractor]] = {}


@dataclass
class Scorer:
    metric: str
    higher_is_better: bool
    paired: bool
    targets: torch.Tensor
    extractor: FeatureExtractor | None = None
    real_mu: np.ndarray | None = None
    real_sigma: np.ndarray | None = None

    def primary(self, outputs: torch.Tensor) -> float:
        if self.metric == "psnr":
            return psnr(outputs, self.targets)
        mu, sigma = gaussian_stats(self.extractor(outputs))  # type: ignore[misc]
        return frechet_distance(mu, sigma, self.real_mu, self.real_sigma)  # type: ignore[arg-type]

    def all(self, outputs: torch.Tensor) -> dict[str, float]:
        values = {self.metric: self.primary(outputs)}
        if self.paired:
            values.setdefault("psnr", psnr(outputs, self.targets))
            values["ssim"] = ssim(outputs, self.targets)
        return values

    def better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b


def _extractor(ctx: StageContext) -> tuple[str, FeatureExtractor]:
    key = (ctx.config.metric, str(ctx.settings.inception_weights))
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = resolve_extractor(ctx.config.metric, ctx.settings.inception_weights, "cpu",
                                             lambda text: ctx.message(text, level="warning"))
    return _EXTRACTORS[key]


def make_scorer(ctx: StageContext, data: RunData, split: str) -> Scorer:
    """A scorer against the ``search`` (held-out training images) or ``test`` split."""
    targets = data.search_targets if split == "search" else data.test_targets
    if ctx.config.metric == "psnr":
        if not data.paired:
            raise ConfigError("metric psnr needs ground truth, which an unpaired (CycleGAN) dataset has not; "
                              "use metric fid")
        return Scorer("psnr", True, True, targets)
    name, extractor = _extractor(ctx)
    mu, sigma, _ = real_statistics(data.real_sets[split], ctx.config.image_size, extractor,
                                   ctx.settings.workspace / "stats")
    return Scorer(name, HIGHER_IS_BETTER[name], data.paired, targets, extractor, mu, sigma)


@torch.no_grad()
def generate(model: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, device: torch.device,
             batch_size: int = 64) -> torch.Tensor:
    return torch.cat([model(inputs[i:i + batch_size].to(device)).cpu() for i in range(0, len(inputs), batch_size)])
