"""The GauGAN (SPADE) generator of Park et al. as gan-compression compresses it: a label map (one channel per
class, plus an instance-edge channel when the dataset has one) goes in, an image comes out. Its layers
carry the parameter names of NVlabs/SPADE and gan-compression (``fc``, ``head_0``, ``G_middle_0/1``,
``up_0``..``up_3``, ``conv_img``; in each block ``conv_0/1``, ``conv_s`` and their ``norm_*`` SPADE layers
with ``param_free_norm``, ``mlp_shared.0``, ``mlp_gamma``, ``mlp_beta``), so their checkpoints load once
their spectral norms are folded into plain weights.

Every normalisation is SPADE: a parameter-free BatchNorm (synchronised over the processes of a
multi-process run, ``engine.distributed``) whose scale and shift are convolutions of the label map resized
to the activation. Beside them: GauGAN's multi-scale discriminator and its feature matching loss."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from engine.models.registry import DISCRIMINATORS, GENERATORS

Upsampling = Literal["normal", "more", "most"]
#: How many times the generator doubles its resolution, per ``num_upsampling_layers`` setting.
UPSAMPLINGS: dict[str, int] = {"normal": 5, "more": 6, "most": 7}


def start_size(size: tuple[int, int], upsampling: str) -> tuple[int, int]:
    """The (height, width) of the label map the generator starts from, for an output of ``size``."""
    if upsampling not in UPSAMPLINGS:
        raise ValueError(f"upsampling must be one of {', '.join(UPSAMPLINGS)}, not {upsampling!r}")
    factor = 2 ** UPSAMPLINGS[upsampling]
    height, width = size
    if height % factor or width % factor:
        raise ValueError(f"with upsampling {upsampling!r} the image size must be a multiple of {factor} on both "
                         f"sides, not {width}x{height}")
    return height // factor, width // factor


class SPADE(nn.Module):
    """Normalise ``x`` without parameters, then scale and shift it by maps computed from the label map."""

    def __init__(self, channels: int, label_channels: int, hidden: int, kernel: int = 3):
        super().__init__()
        self.param_free_norm = nn.BatchNorm2d(channels, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_channels, hidden, kernel, padding=kernel // 2), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, channels, kernel, padding=kernel // 2)
        self.mlp_beta = nn.Conv2d(hidden, channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        labels = F.interpolate(labels, size=x.shape[2:], mode="nearest")
        shared = self.mlp_shared(labels)
        return self.param_free_norm(x) * (1 + self.mlp_gamma(shared)) + self.mlp_beta(shared)


class SPADEResBlock(nn.Module):
    """Two SPADE-normalised 3x3 convolutions with a residual path (a learned 1x1 one when the width changes)."""

    def __init__(self, fin: int, fout: int, label_channels: int, hidden: int):
        super().__init__()
        middle = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.norm_0 = SPADE(fin, label_channels, hidden)
        self.conv_0 = nn.Conv2d(fin, middle, 3, padding=1)
        self.norm_1 = SPADE(middle, label_channels, hidden)
        self.conv_1 = nn.Conv2d(middle, fout, 3, padding=1)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, label_channels, hidden)
            self.conv_s = nn.Conv2d(fin, fout, 1, bias=False)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, labels)) if self.learned_shortcut else x
        out = self.conv_0(F.leaky_relu(self.norm_0(x, labels), 0.2))
        out = self.conv_1(F.leaky_relu(self.norm_1(out, labels), 0.2))
        return shortcut + out


@GENERATORS.register("spade")
class SPADEGenerator(nn.Module):
    """``label_channels`` in, RGB out at ``size`` (height, width); starts from the label map resized to the
    size divided by 2^(number of upsamplings) and doubles it block by block (nearest neighbour)."""

    def __init__(self, label_channels: int, ngf: int = 64, size: tuple[int, int] = (256, 512),
                 upsampling: Upsampling = "more", hidden: int | None = None):
        super().__init__()
        self.upsampling = upsampling
        self.start = start_size(size, upsampling)
        hidden = hidden or 2 * ngf  # the reference: nhidden = 2 x ngf (128 at ngf 64, as NVlabs/SPADE)
        self.fc = nn.Conv2d(label_channels, 16 * ngf, 3, padding=1)
        self.head_0 = SPADEResBlock(16 * ngf, 16 * ngf, label_channels, hidden)
        self.G_middle_0 = SPADEResBlock(16 * ngf, 16 * ngf, label_channels, hidden)
        self.G_middle_1 = SPADEResBlock(16 * ngf, 16 * ngf, label_channels, hidden)
        self.up_0 = SPADEResBlock(16 * ngf, 8 * ngf, label_channels, hidden)
        self.up_1 = SPADEResBlock(8 * ngf, 4 * ngf, label_channels, hidden)
        self.up_2 = SPADEResBlock(4 * ngf, 2 * ngf, label_channels, hidden)
        self.up_3 = SPADEResBlock(2 * ngf, ngf, label_channels, hidden)
        final = ngf
        if upsampling == "most":
            self.up_4 = SPADEResBlock(ngf, ngf // 2, label_channels, hidden)
            final = ngf // 2
        self.conv_img = nn.Conv2d(final, 3, 3, padding=1)

    def _blocks(self) -> list[tuple[str, bool]]:
        """(block, whether the resolution doubles before it), in order."""
        more = self.upsampling in ("more", "most")
        blocks = [("head_0", False), ("G_middle_0", True), ("G_middle_1", more), ("up_0", True), ("up_1", True),
                  ("up_2", True), ("up_3", True)]
        return blocks + ([("up_4", True)] if self.upsampling == "most" else [])

    def forward_with_features(self, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The image and each block's output (the points the reference distils from), by block name."""
        x = self.fc(F.interpolate(labels, size=self.start, mode="nearest"))
        features = {"fc": x}
        for name, doubles in self._blocks():
            if doubles:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = getattr(self, name)(x, labels)
            features[name] = x
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2))), features

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(labels)[0]


class SeparableConv(nn.Module):
    """A depthwise convolution, a parameter-free instance norm and a 1x1 convolution (gan-compression's
    separable convolution; ``conv.0``/``conv.2`` hold the weights, as in its checkpoints)."""

    def __init__(self, fin: int, fout: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(fin, fin, kernel, padding=kernel // 2, groups=fin),
                                  nn.InstanceNorm2d(fin), nn.Conv2d(fin, fout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class MobileSPADE(SPADE):
    """SPADE of the compressed student: the label map's shared convolution ``hidden`` wide, the scale and
    shift maps separable convolutions."""

    def __init__(self, channels: int, label_channels: int, hidden: int, kernel: int = 3):
        super().__init__(channels, label_channels, hidden, kernel)
        self.mlp_gamma = SeparableConv(hidden, channels, kernel)
        self.mlp_beta = SeparableConv(hidden, channels, kernel)


class MobileSPADEResBlock(nn.Module):
    """The student's residual block: input and output ``fin`` wide (the residual) and ``width`` inside, or, with
    a learned shortcut (the teacher's block changes width there), ``width`` out."""

    def __init__(self, fin: int, width: int, label_channels: int, hidden: int, learned_shortcut: bool):
        super().__init__()
        self.learned_shortcut = learned_shortcut
        fout = width if learned_shortcut else fin
        self.norm_0 = MobileSPADE(fin, label_channels, hidden)
        self.conv_0 = nn.Conv2d(fin, width, 3, padding=1)
        self.norm_1 = MobileSPADE(width, label_channels, hidden)
        self.conv_1 = nn.Conv2d(width, fout, 3, padding=1)
        if learned_shortcut:
            self.norm_s = MobileSPADE(fin, label_channels, hidden)
            self.conv_s = nn.Conv2d(fin, fout, 1, bias=False)

    forward = SPADEResBlock.forward


@GENERATORS.register("mobile_spade")
class MobileSPADEGenerator(SPADEGenerator):
    """The compressed GauGAN student of a config string's 8 widths (``32_32_32_48_32_24_24_32``, as the
    reference's ``channels-64`` space): position 0 sets the stem (16x), 1-3 the inside of the three blocks at the
    stem's width (16x), 4-7 the widths of the four upsampling blocks (8x, 4x, 2x, 1x); each block's SPADE
    layers are twice its position's width wide inside."""

    MULTIPLIERS = (16, 16, 16, 16, 8, 4, 2, 1)

    def __init__(self, label_channels: int, widths: tuple[int, ...], size: tuple[int, int] = (256, 512),
                 upsampling: Upsampling = "more"):
        if len(widths) != 8:
            raise ValueError(f"a GauGAN student has 8 widths, got {len(widths)}")
        if upsampling == "most":
            raise ValueError("the compressed GauGAN student is defined for upsampling 'normal' or 'more' (as the "
                             "reference's)")
        nn.Module.__init__(self)
        self.upsampling = upsampling
        self.start = start_size(size, upsampling)
        inner = [w * m for w, m in zip(widths, self.MULTIPLIERS)]
        stem = inner[0]
        self.fc = nn.Conv2d(label_channels, stem, 3, padding=1)
        for name, position in (("head_0", 1), ("G_middle_0", 2), ("G_middle_1", 3)):
            setattr(self, name, MobileSPADEResBlock(stem, inner[position], label_channels, 2 * widths[position],
                                                    learned_shortcut=False))
        fin = stem
        for name, position in (("up_0", 4), ("up_1", 5), ("up_2", 6), ("up_3", 7)):
            setattr(self, name, MobileSPADEResBlock(fin, inner[position], label_channels, 2 * widths[position],
                                                    learned_shortcut=True))
            fin = inner[position]
        self.conv_img = nn.Conv2d(fin, 3, 3, padding=1)


class PatchDiscriminator(nn.Module):
    """One scale of GauGAN's discriminator: ``n_layers`` 4x4 convolutions (the first without a norm, the
    others spectral-normalised with an instance norm, the last of them at stride 1), then a 1-channel map;
    each stage a ``model{i}`` (the names of NVlabs/SPADE), each stage's output returned for feature
    matching."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 4):
        super().__init__()
        pad = 2  # ceil((4 - 1) / 2), as the reference
        stages: list[list[nn.Module]] = [[nn.Conv2d(input_nc, ndf, 4, stride=2, padding=pad), nn.LeakyReLU(0.2)]]
        width = ndf
        for n in range(1, n_layers):
            previous, width = width, min(width * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            conv = nn.utils.spectral_norm(nn.Conv2d(previous, width, 4, stride=stride, padding=pad, bias=False))
            stages.append([conv, nn.InstanceNorm2d(width), nn.LeakyReLU(0.2)])
        stages.append([nn.Conv2d(width, 1, 4, stride=1, padding=pad)])
        for index, stage in enumerate(stages):
            self.add_module(f"model{index}", nn.Sequential(*stage))
        self.stages = len(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for index in range(self.stages):
            x = getattr(self, f"model{index}")(x)
            outputs.append(x)
        return outputs


@DISCRIMINATORS.register("multiscale")
class MultiscaleDiscriminator(nn.Module):
    """``num_d`` patch discriminators on the label map and the image concatenated, each on the input halved
    once more (3x3 average pooling, stride 2) than the one before: ``discriminator_{i}``."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 4, num_d: int = 2):
        super().__init__()
        for index in range(num_d):
            self.add_module(f"discriminator_{index}", PatchDiscriminator(input_nc, ndf, n_layers))
        self.num_d = num_d

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """Per scale, every stage's output (the last one is the real/fake map)."""
        results = []
        for index in range(self.num_d):
            results.append(getattr(self, f"discriminator_{index}")(x))
            x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)
        return results


def feature_matching_loss(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    """GauGAN's feature matching: the L1 distance between the discriminator's intermediate outputs for the
    fake and the (detached) real image, averaged over the scales, summed over the stages (the final map
    left out)."""
    total = torch.zeros((), device=fake[0][0].device)
    for fake_scale, real_scale in zip(fake, real):
        for f, r in zip(fake_scale[:-1], real_scale[:-1]):
            total = total + F.l1_loss(f, r.detach()) / len(fake)
    return total
