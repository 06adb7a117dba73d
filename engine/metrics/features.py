"""Feature extractors behind the distribution metrics.

- ``inception``: pytorch-fid's InceptionV3 (pool3, 2048-d): with it the distance is FID proper.
- ``random``: a small CNN with fixed, seeded random weights (multi-scale mean and standard deviation of
  its activations, 480-d). Needs no download. The Fréchet distance on these features ("rFID") measures
  how far two image distributions are in colour, texture and local structure, and is stable for a given
  seed, but its values are NOT comparable with published FID numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.metrics import inception

log = logging.getLogger(__name__)


class RandomFeatureNet(nn.Module):
    def __init__(self, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        widths = [3, 32, 64, 128, 256]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(widths, widths[1:]))
        with torch.no_grad():
            for conv in self.convs:
                fan_in = conv.in_channels * 9
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                conv.bias.zero_()
        self.requires_grad_(False)
        self.dim = 2 * sum(widths[2:])

    def forward(self, x):
        pooled = []
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            if i > 0:  # the first layer's statistics are little more than the pixels' colours
                pooled += [x.mean(dim=(2, 3)), x.std(dim=(2, 3))]
            x = F.avg_pool2d(x, 2) if min(x.shape[-2:]) >= 2 else x
        return torch.cat(pooled, 1)


class CompiledFeatures(Protocol):
    """A feature network compiled for one image shape by another runtime (``feature_backend``)."""

    def fits(self, batch: torch.Tensor) -> bool: ...

    def __call__(self, batch: torch.Tensor) -> np.ndarray: ...


@dataclass
class FeatureExtractor:
    name: str  # "inception" or "random"
    network: nn.Module
    description: str
    #: The network compiled by OpenVINO for one image shape (``feature_backend.choose_backend``, which checks
    #: it against PyTorch first); batches of another shape run in PyTorch.
    compiled: CompiledFeatures | None = None

    @property
    def backend(self) -> str:
        return "pytorch" if self.compiled is None else "openvino"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch_size: int = 50) -> np.ndarray:
        """Features of images in [-1, 1] (N, 3, H, W); grayscale images are repeated to 3 channels."""
        device = next(self.network.parameters()).device
        out = []
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            if batch.shape[1] == 1:
                batch = batch.repeat(1, 3, 1, 1)
            if self.compiled is not None and self.compiled.fits(batch):
                out.append(self.compiled(batch))
            else:
                out.append(self.network(batch.to(device).float()).double().cpu().numpy())
        return np.concatenate(out)


def random_extractor(seed: int = 0, device: str = "cpu") -> FeatureExtractor:
    return FeatureExtractor("random", RandomFeatureNet(seed).eval().to(device),
                            f"Fréchet distance on features of a fixed random CNN (seed {seed}); "
                            "not comparable with published FID")


def inception_extractor(weights: Path, device: str = "cpu") -> FeatureExtractor:
    return FeatureExtractor("inception", inception.load_fid_inception(weights).to(device),
                            f"FID with pytorch-fid's InceptionV3 ({weights.name})")


def resolve_extractor(metric: str, inception_setting: Path | None, device: str,
                      warn: Callable[[str], None]) -> tuple[str, FeatureExtractor]:
    """The metric actually used and its extractor; ``fid`` falls back to ``rfid`` without the weights,
    saying so in one line through ``warn``."""
    if metric == "fid":
        weights = inception.find_weights(inception_setting)
        if weights is not None:
            return "fid", inception_extractor(weights, device)
        looked = ", ".join(str(p) for p in inception.candidate_paths(inception_setting))
        warn(f"Inception weights for FID not found (looked at {looked}); using rfid, the Fréchet distance on "
             "a fixed random CNN's features (not comparable with published FID). Set GCW_INCEPTION_WEIGHTS to "
             "pt_inception-2015-12-05-6726825d.pth for real FID.")
    return "rfid", random_extractor(device=device)
