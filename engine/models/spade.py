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

from engine.arch import Arch
from engine.data.labels import edge_map, one_hot_map
from engine.models import elastic
from engine.models.registry import DISCRIMINATORS, GENERATORS

Upsampling = Literal["normal", "more", "most"]
#: How many times the generator doubles its resolution, per ``num_upsampling_layers`` setting.
UPSAMPLINGS: dict[str, int] = {"normal": 5, "more": 6, "most": 7}


def upsampling_factor(upsampling: str) -> int:
    if upsampling not in UPSAMPLINGS:
        raise ValueError(f"upsampling must be one of {', '.join(UPSAMPLINGS)}, not {upsampling!r}")
    return 2 ** UPSAMPLINGS[upsampling]


def check_size(size: tuple[int, int], upsampling: str) -> None:
    """Refuse an output size the generator's doublings cannot reach from a whole starting size."""
    factor = upsampling_factor(upsampling)
    height, width = size
    if height % factor or width % factor:
        raise ValueError(f"with upsampling {upsampling!r} the image size must be a multiple of {factor} on both "
                         f"sides, not {width}x{height}")
    if height * width <= factor * factor:
        # The student's separable convolutions normalise each channel over the starting map's pixels.
        raise ValueError(f"with upsampling {upsampling!r} the image must be at least {2 * factor} pixels on one side "
                         f"(it starts from 1/{factor} of each side), not {width}x{height}")


def start_size(size: tuple[int, int], upsampling: str) -> tuple[int, int]:
    """The (height, width) of the label map the generator starts from, for an output of ``size``."""
    check_size(size, upsampling)
    factor = upsampling_factor(upsampling)
    return size[0] // factor, size[1] // factor


class LabelEncoder(nn.Module):
    """The generator's own first step, so that it (and its ONNX export) takes label maps as datasets hold
    them: (N, 1, H, W) class ids, with instance ids as a second channel when instance edges are on, as
    float32. Out: one channel per class (one-hot) and, with instances, their edges
    (``engine.data.labels.one_hot_map`` and ``edge_map``, which the checked ``generator_input`` uses too)."""

    def __init__(self, classes: int, instance_edges: bool):
        super().__init__()
        self.classes, self.instance_edges = classes, instance_edges
        self.register_buffer("ids", torch.arange(classes, dtype=torch.float32).view(1, classes, 1, 1),
                             persistent=False)

    @property
    def in_channels(self) -> int:
        return 1 + int(self.instance_edges)

    @property
    def out_channels(self) -> int:
        return self.classes + int(self.instance_edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        semantics = one_hot_map(x[:, :1].round(), self.ids)
        if not self.instance_edges:
            return semantics
        return torch.cat([semantics, edge_map(x[:, 1:2])], dim=1)


def _layers(module: nn.Module) -> nn.Module:
    """What ``elastic.run`` slices: a separable convolution's layers, or the convolution itself."""
    return module.conv if isinstance(module, SeparableConv) else module


class SPADE(nn.Module):
    """Normalise ``x`` without parameters, then scale and shift it by maps computed from the label map."""

    def __init__(self, channels: int, label_channels: int, hidden: int, kernel: int = 3):
        super().__init__()
        self.param_free_norm = nn.BatchNorm2d(channels, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_channels, hidden, kernel, padding=kernel // 2), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, channels, kernel, padding=kernel // 2)
        self.mlp_beta = nn.Conv2d(hidden, channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, labels: torch.Tensor, hidden: int | None = None) -> torch.Tensor:
        """``hidden``: the width of the label map's shared convolution in an elastic supernet (None: all)."""
        labels = F.interpolate(labels, size=x.shape[2:], mode="nearest")
        shared = elastic.run(self.mlp_shared, labels, hidden)
        channels = x.shape[1]
        gamma = elastic.run(_layers(self.mlp_gamma), shared, channels)
        beta = elastic.run(_layers(self.mlp_beta), shared, channels)
        return elastic.batch_norm(self.param_free_norm, x) * (1 + gamma) + beta


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

    def forward(self, x: torch.Tensor, labels: torch.Tensor, width: int | None = None,
                hidden: int | None = None) -> torch.Tensor:
        """``width``/``hidden``: an elastic supernet's widths inside this block (None: as built)."""
        if self.learned_shortcut:
            shortcut = elastic.conv2d(self.conv_s, self.norm_s(x, labels, hidden), width)
        else:
            shortcut = x
        out = elastic.conv2d(self.conv_0, F.leaky_relu(self.norm_0(x, labels, hidden), 0.2), width)
        fout = width if self.learned_shortcut else x.shape[1]
        out = elastic.conv2d(self.conv_1, F.leaky_relu(self.norm_1(out, labels, hidden), 0.2), fout)
        return shortcut + out


class _LabelMapGenerator(nn.Module):
    """What GauGAN's teacher and students share: label map in (ids through a ``LabelEncoder``, or already one
    channel per class), the blocks at doubling resolutions, the image out."""

    fc: nn.Conv2d
    conv_img: nn.Conv2d

    def _setup(self, label_channels: int, upsampling: Upsampling, encoder: LabelEncoder | None) -> None:
        upsampling_factor(upsampling)
        if encoder is not None and encoder.out_channels != label_channels:
            raise ValueError(f"the label encoder gives {encoder.out_channels} channels, the generator takes "
                             f"{label_channels}")
        self.upsampling = upsampling
        self.label_channels = label_channels
        self.encoder = encoder

    def _blocks(self) -> list[tuple[str, bool]]:
        """(block, whether the resolution doubles before it), in order."""
        more = self.upsampling in ("more", "most")
        blocks = [("head_0", False), ("G_middle_0", True), ("G_middle_1", more), ("up_0", True), ("up_1", True),
                  ("up_2", True), ("up_3", True)]
        return blocks + ([("up_4", True)] if hasattr(self, "up_4") else [])

    def _labels(self, labels: torch.Tensor) -> torch.Tensor:
        return self.encoder(labels) if self.encoder is not None else labels

    def _start(self, labels: torch.Tensor) -> tuple[int, int]:
        return start_size(tuple(labels.shape[2:]), self.upsampling)  # type: ignore[arg-type]

    def _run(self, labels: torch.Tensor, widths: dict[str, tuple[int | None, int | None]] | None, stem: int | None):
        labels = self._labels(labels)
        x = elastic.conv2d(self.fc, F.interpolate(labels, size=self._start(labels), mode="nearest"), stem)
        features = {"fc": x}
        for name, doubles in self._blocks():
            if doubles:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            width, hidden = widths[name] if widths is not None else (None, None)
            x = getattr(self, name)(x, labels, width, hidden)
            features[name] = x
        return torch.tanh(elastic.conv2d(self.conv_img, F.leaky_relu(x, 0.2), 3)), features

    def forward_with_features(self, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The image and each block's output (the points the reference distils from), by block name."""
        return self._run(labels, None, None)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(labels)[0]


@GENERATORS.register("spade")
class SPADEGenerator(_LabelMapGenerator):
    """``label_channels`` in (or, with an ``encoder``, its label maps), RGB out at the input's size; starts
    from the label map resized to the size divided by 2^(number of upsamplings) and doubles it block by
    block (nearest neighbour)."""

    def __init__(self, label_channels: int, ngf: int = 64, upsampling: Upsampling = "more",
                 hidden: int | None = None, encoder: LabelEncoder | None = None):
        super().__init__()
        self._setup(label_channels, upsampling, encoder)
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


class MobileSPADEResBlock(SPADEResBlock):
    """The student's residual block: input and output ``fin`` wide (the residual) and ``width`` inside, or, with
    a learned shortcut (the teacher's block changes width there), ``width`` out."""

    def __init__(self, fin: int, width: int, label_channels: int, hidden: int, learned_shortcut: bool):
        nn.Module.__init__(self)
        self.learned_shortcut = learned_shortcut
        fout = width if learned_shortcut else fin
        self.norm_0 = MobileSPADE(fin, label_channels, hidden)
        self.conv_0 = nn.Conv2d(fin, width, 3, padding=1)
        self.norm_1 = MobileSPADE(width, label_channels, hidden)
        self.conv_1 = nn.Conv2d(width, fout, 3, padding=1)
        if learned_shortcut:
            self.norm_s = MobileSPADE(fin, label_channels, hidden)
            self.conv_s = nn.Conv2d(fin, fout, 1, bias=False)


#: Per arch position: the block it sets (``fc``: the stem) and the multiple of the position's value that is
#: the block's width, as the reference's config string.
STUDENT_POSITIONS: tuple[tuple[str, int], ...] = (
    ("fc", 16), ("head_0", 16), ("G_middle_0", 16), ("G_middle_1", 16), ("up_0", 8), ("up_1", 4), ("up_2", 2),
    ("up_3", 1))


def student_widths(arch: tuple[int, ...]) -> dict[str, tuple[int, int]]:
    """Each block's (width, SPADE hidden width) for an arch of 8 values; ``fc`` the stem's."""
    if len(arch) != len(STUDENT_POSITIONS):
        raise ValueError(f"a GauGAN student has {len(STUDENT_POSITIONS)} widths, got {len(arch)}")
    return {name: (value * multiple, 2 * value) for (name, multiple), value in zip(STUDENT_POSITIONS, arch)}


@GENERATORS.register("mobile_spade")
class MobileSPADEGenerator(_LabelMapGenerator):
    """The compressed GauGAN student of a config string's 8 widths (``32_32_32_48_32_24_24_32``, as the
    reference's ``channels-64`` space): position 0 sets the stem (16x), 1-3 the inside of the three blocks at the
    stem's width (16x), 4-7 the widths of the four upsampling blocks (8x, 4x, 2x, 1x); each block's SPADE
    layers are twice its position's value wide inside."""

    def __init__(self, label_channels: int, widths: tuple[int, ...], upsampling: Upsampling = "more",
                 encoder: LabelEncoder | None = None):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        blocks = student_widths(widths)
        if upsampling == "most":
            raise ValueError("the compressed GauGAN student is defined for upsampling 'normal' or 'more' (as the "
                             "reference's)")
        self._setup(label_channels, upsampling, encoder)
        self.widths = widths
        stem = blocks["fc"][0]
        self.fc = nn.Conv2d(label_channels, stem, 3, padding=1)
        for name in ("head_0", "G_middle_0", "G_middle_1"):
            width, hidden = blocks[name]
            setattr(self, name, MobileSPADEResBlock(stem, width, label_channels, hidden, learned_shortcut=False))
        fin = stem
        for name in ("up_0", "up_1", "up_2", "up_3"):
            width, hidden = blocks[name]
            setattr(self, name, MobileSPADEResBlock(fin, width, label_channels, hidden, learned_shortcut=True))
            fin = width
        self.conv_img = nn.Conv2d(fin, 3, 3, padding=1)

    @property
    def arch(self) -> Arch:
        return Arch(self.widths)


@GENERATORS.register("mobile_spade_supernet")
class MobileSPADESupernet(MobileSPADEGenerator):
    """Once-for-all mobile SPADE student: the weights of a ``MobileSPADEGenerator`` at the largest widths
    (same names and shapes, so ``elastic.extract_subnet`` slices a plain student out), run at any arch that
    fits: each layer on its first channels, as the reference's super modules. Its BatchNorm statistics follow
    whichever sub-network ran last; ``calibrate`` re-estimates them for one."""

    def check_arch(self, arch) -> tuple[int, ...]:
        """The widths of ``arch`` (None: the largest), checked to fit (``elastic.fitting_arch``)."""
        return elastic.fitting_arch(arch, Arch(self.widths)).values

    def make_subnet(self, arch) -> MobileSPADEGenerator:
        encoder = LabelEncoder(self.encoder.classes, self.encoder.instance_edges) if self.encoder is not None else None
        return MobileSPADEGenerator(self.label_channels, self.check_arch(arch), self.upsampling, encoder)

    def forward_with_features(self, labels: torch.Tensor, arch=None):
        blocks = student_widths(self.check_arch(arch))
        return self._run(labels, blocks, blocks["fc"][0])

    def forward(self, labels: torch.Tensor, arch=None) -> torch.Tensor:
        return self.forward_with_features(labels, arch)[0]


def mobile_spade_macs(arch: tuple[int, ...], size: tuple[int, int], label_channels: int,
                      upsampling: str = "more") -> int:
    """MACs of the student of ``arch`` at ``size`` in closed form, in the convention of
    ``engine.profile.count_macs`` (a convolution: output elements x inputs per group x kernel; an instance
    norm and a nearest-neighbour resize: 1 per output element; batch norms and activations: 0); the tests
    check they are equal. Search uses it to reject candidates over budget without tracing each one."""
    blocks = student_widths(arch)
    start_h, start_w = start_size(size, upsampling)
    more = upsampling != "normal"
    scale = {"head_0": 1, "G_middle_0": 2, "G_middle_1": 4 if more else 2}
    for index, name in enumerate(("up_0", "up_1", "up_2", "up_3")):
        scale[name] = scale["G_middle_1"] * 2 ** (index + 1)

    def spade(pixels: int, channels: int, hidden: int) -> int:
        separable = pixels * hidden * 9 + pixels * hidden + pixels * channels * hidden
        return pixels * label_channels + pixels * hidden * label_channels * 9 + 2 * separable

    stem = blocks["fc"][0]
    macs = start_h * start_w * label_channels + start_h * start_w * stem * label_channels * 9
    fin, previous = stem, 1
    for name in ("head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3"):
        width, hidden = blocks[name]
        pixels = start_h * start_w * scale[name] ** 2
        if scale[name] != previous:  # the doubling before the block
            macs += pixels * fin
        previous = scale[name]
        learned = name.startswith("up_")
        fout = width if learned else fin
        macs += spade(pixels, fin, hidden) + pixels * width * fin * 9
        macs += spade(pixels, width, hidden) + pixels * fout * width * 9
        if learned:
            macs += spade(pixels, fin, hidden) + pixels * fout * fin
        fin = fout
    final = start_h * start_w * scale["up_3"] ** 2
    return macs + final * 3 * fin * 9


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
