"""Losses of the method: GAN (LSGAN or vanilla, as in the original projects), reconstruction (L1),
cycle and identity (CycleGAN), and intermediate-feature distillation through learnable 1x1 mappings."""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import nn

from engine.models import elastic
from engine.models.init import init_weights


GAN_MODES = ("lsgan", "vanilla", "hinge")


class GANLoss(nn.Module):
    """LSGAN: MSE to 1/0; vanilla: binary cross-entropy on logits; hinge: ``mean(relu(1 -/+ D))`` for the
    discriminator and ``-mean(D)`` for the generator (SPADE's, which gan-compression uses for pix2pix).
    A multi-scale discriminator's list of predictions is summed over scales for lsgan and vanilla and averaged
    for hinge, as the reference's ``GANLoss`` (so MUNIT's three scales weigh three times one scale, GauGAN's
    hinge terms once)."""

    def __init__(self, mode: str = "lsgan"):
        super().__init__()
        if mode not in GAN_MODES:
            raise ValueError(f"gan_mode must be one of {', '.join(GAN_MODES)}, not {mode!r}")
        self.mode = mode

    def forward(self, prediction: torch.Tensor | list[torch.Tensor], target_is_real: bool,
                for_discriminator: bool = True) -> torch.Tensor:
        if isinstance(prediction, (list, tuple)):
            total = sum(self(p, target_is_real, for_discriminator) for p in prediction)
            return total / len(prediction) if self.mode == "hinge" else total
        if self.mode == "hinge":
            if not for_discriminator:
                return -prediction.mean()
            return F.relu(1 - prediction).mean() if target_is_real else F.relu(1 + prediction).mean()
        target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
        if self.mode == "lsgan":
            return F.mse_loss(prediction, target)
        return F.binary_cross_entropy_with_logits(prediction, target)


class ImagePool:
    """A buffer of earlier generated images; the discriminator sees a mix of old and new (Shrivastava et al.)."""

    def __init__(self, size: int = 50, rng: random.Random | None = None):
        self.size, self.images = size, []
        self.rng = rng or random.Random(0)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif self.rng.random() > 0.5:
                index = self.rng.randrange(self.size)
                out.append(self.images[index].clone())
                self.images[index] = image
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {"images": [i.clone() for i in self.images]}

    def load_state_dict(self, state: dict) -> None:
        self.images = list(state["images"])


class FeatureMappings(nn.Module):
    """One learnable 1x1 convolution per distilled layer, from the student's (largest) width to the
    teacher's. Elastic: a narrower sub-network uses the first input channels of each mapping."""

    def __init__(self, student_channels: list[int], teacher_channels: list[int], init: str = "normal"):
        super().__init__()
        self.maps = nn.ModuleList(nn.Conv2d(s, t, kernel_size=1) for s, t in zip(student_channels, teacher_channels))
        init_weights(self, init)

    def forward(self, student_features: list[torch.Tensor]) -> list[torch.Tensor]:
        return [elastic.conv2d(conv, f) for conv, f in zip(self.maps, student_features)]


def distill_loss(mappings: FeatureMappings, student_features: list[torch.Tensor],
                 teacher_features: list[torch.Tensor]) -> torch.Tensor:
    """Sum over layers of the MSE between the mapped student features and the teacher's."""
    mapped = mappings(student_features)
    return sum(F.mse_loss(m, t.detach()) for m, t in zip(mapped, teacher_features))  # type: ignore[return-value]
