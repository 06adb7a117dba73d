"""GauGAN's perceptual loss (pix2pixHD's ``VGGLoss``): L1 distances between VGG-19 features of the generated
and the real image at relu1_1, relu2_1, relu3_1, relu4_1 and relu5_1, weighted 1/32, 1/16, 1/8, 1/4 and 1.

The VGG-19 weights (torchvision's ``vgg19-dcbb9e9d.pth`` layout, ``features.N.weight``) are never downloaded:
they are looked for in ``GCW_VGG_WEIGHTS`` and torch's hub cache; a run without them trains without this
loss and says so in one line (``describe_missing``)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

WEIGHTS_GLOB = "vgg19-*.pth"
#: VGG-19's convolution widths, "M" a 2x2 max pool (the ``features`` part of torchvision's model).
LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]
#: The ``features`` index after which each compared activation is taken (relu1_1 ... relu5_1), and its weight.
TAPS = ((1, 1 / 32), (6, 1 / 16), (11, 1 / 8), (20, 1 / 4), (29, 1.0))


class VGG19Features(nn.Module):
    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU()]
                channels = int(item)
        self.features = nn.Sequential(*layers[:TAPS[-1][0] + 1])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps, outputs = dict(TAPS), []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in taps:
                outputs.append(x)
        return outputs


def candidate_paths() -> list[Path]:
    paths = [Path(os.environ["GCW_VGG_WEIGHTS"]).expanduser()] if os.environ.get("GCW_VGG_WEIGHTS") else []
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    return paths + (sorted(hub.glob(WEIGHTS_GLOB)) or [hub / "vgg19-dcbb9e9d.pth"])


def find_weights() -> Path | None:
    return next((p for p in candidate_paths() if p.is_file()), None)


def describe_missing() -> str:
    return ("VGG-19 weights not found (looked in " + ", ".join(str(p) for p in candidate_paths()) + "): training "
            "without the perceptual loss; put torchvision's vgg19-dcbb9e9d.pth there or set GCW_VGG_WEIGHTS")


class PerceptualLoss(nn.Module):
    """The weighted L1 distance of VGG-19 features (the network frozen, the real image's features detached)."""

    def __init__(self, weights: Path):
        super().__init__()
        self.vgg = VGG19Features()
        state = torch.load(weights, map_location="cpu", weights_only=True)
        wanted = set(self.vgg.state_dict())
        self.vgg.load_state_dict({k: v for k, v in state.items() if k in wanted}, strict=True)
        self.vgg.eval().requires_grad_(False)

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        total = torch.zeros((), device=fake.device)
        for (_, weight), f, r in zip(TAPS, self.vgg(fake), self.vgg(real)):
            total = total + weight * F.l1_loss(f, r.detach())
        return total
