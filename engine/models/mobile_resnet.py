"""The mobile ResNet generator (depthwise-separable residual blocks) and its elastic supernet.

An architecture is written as 8 numbers, ``16_16_24_16_32_64_16_24``, one per position
``[stem, down1, down2, blocks 1-3, blocks 4-6, blocks 7-9, up1, up2]``, in the convention of
gan-compression: the channel count of a position is its number times a fixed multiplier
(1, 2, 4, 4, 4, 4, 2, 1), so ``64_64_64_64_64_64_64_64`` has the widths of the ngf=64 teacher.
"""

from __future__ import annotations

from torch import nn

from engine.arch import Arch
from engine.errors import ConfigError
from engine.models import elastic
from engine.models.norms import norm_layer, uses_bias
from engine.models.registry import GENERATORS
from engine.models.resnet import block_thirds

POSITIONS = ("stem", "down1", "down2", "blocks1", "blocks2", "blocks3", "up1", "up2")
MULTIPLIERS = (1, 2, 4, 4, 4, 4, 2, 1)


def parse_arch(text: str | Arch | None, ngf: int = 64) -> Arch:
    """An 8-position arch (the uniform ``ngf`` one when None)."""
    return Arch((ngf,) * len(POSITIONS)) if text is None else Arch.parse(text, len(POSITIONS))


def channels(arch: Arch) -> tuple[int, ...]:
    """The channel count of each position: its width times the position's multiplier."""
    return tuple(v * m for v, m in zip(arch.values, MULTIPLIERS))


def block_group(index: int, n_blocks: int) -> int:
    """Which third of the residual stack (0, 1, 2) block ``index`` belongs to."""
    ends = block_thirds(n_blocks)
    return next(group for group, end in enumerate(ends) if index < end)


class SeparableConv2d(nn.Module):
    """3x3 depthwise convolution, norm, 1x1 pointwise convolution."""

    def __init__(self, in_channels: int, out_channels: int, norm: str, kernel_size: int = 3):
        super().__init__()
        bias = uses_bias(norm)
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, groups=in_channels, bias=bias)
        self.norm = norm_layer(norm)(in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=bias)

    def forward(self, x):
        return self.pointwise(self.norm(self.depthwise(x)))


class MobileResnetBlock(nn.Module):
    def __init__(self, dim: int, inner_dim: int, norm: str, dropout_rate: float = 0.0):
        super().__init__()
        self.pad1 = nn.ReflectionPad2d(1)
        self.conv1 = SeparableConv2d(dim, inner_dim, norm)
        self.norm1 = norm_layer(norm)(inner_dim)
        self.relu = nn.ReLU(True)
        self.dropout = nn.Dropout(dropout_rate)
        self.pad2 = nn.ReflectionPad2d(1)
        self.conv2 = SeparableConv2d(inner_dim, dim, norm)
        self.norm2 = norm_layer(norm)(dim)

    def forward(self, x):
        h = self.dropout(self.relu(self.norm1(self.conv1(self.pad1(x)))))
        return x + self.norm2(self.conv2(self.pad2(h)))


@GENERATORS.register("mobile_resnet")
class MobileResnetGenerator(nn.Module):
    def __init__(self, input_nc: int = 3, output_nc: int = 3, arch: str | Arch | None = None,
                 ngf: int = 64, n_blocks: int = 9, norm: str = "instance", dropout_rate: float = 0.0):
        super().__init__()
        if n_blocks < 3:
            raise ConfigError(f"a mobile ResNet needs at least 3 residual blocks (one per third), not {n_blocks}")
        self.arch = parse_arch(arch, ngf)
        self.input_nc, self.output_nc, self.n_blocks, self.norm = input_nc, output_nc, n_blocks, norm
        self.dropout_rate = dropout_rate
        c = channels(self.arch)
        norm_cls, bias = norm_layer(norm), uses_bias(norm)
        self.stem = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(input_nc, c[0], kernel_size=7, bias=bias),
                                  norm_cls(c[0]), nn.ReLU(True))
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1, bias=bias),
                          norm_cls(c_out), nn.ReLU(True))
            for c_in, c_out in ((c[0], c[1]), (c[1], c[2])))
        self.blocks = nn.ModuleList(MobileResnetBlock(c[2], c[3 + block_group(i, n_blocks)], norm, dropout_rate)
                                    for i in range(n_blocks))
        self.up = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(c_in, c_out, kernel_size=3, stride=2, padding=1, output_padding=1,
                                             bias=bias), norm_cls(c_out), nn.ReLU(True))
            for c_in, c_out in ((c[2], c[6]), (c[6], c[7])))
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(c[7], output_nc, kernel_size=7), nn.Tanh())

    def distill_points(self) -> list[int]:
        """After the downsampling and after the blocks ending each third; -1 stands for 'after down'."""
        return [-1] + [k - 1 for k in block_thirds(self.n_blocks)]

    def forward_with_features(self, x):
        x = self.stem(x.clamp(-1, 1))  # as the reference: inputs outside [-1, 1] are clamped
        for layer in self.down:
            x = layer(x)
        features = [x]
        ends = set(self.distill_points())
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in ends:
                features.append(x)
        for layer in self.up:
            x = layer(x)
        return self.head(x), features

    def forward(self, x):
        return self.forward_with_features(x)[0]


@GENERATORS.register("mobile_resnet_supernet")
class MobileResnetSupernet(MobileResnetGenerator):
    """Once-for-all mobile ResNet: one set of weights at the largest widths, run at any arch that fits.

    Its parameters have the names and (largest) shapes of a ``MobileResnetGenerator`` at ``max_arch``,
    so ``elastic.extract_subnet(supernet, arch)`` copies the first-k slices into a plain generator.
    """

    def __init__(self, input_nc: int = 3, output_nc: int = 3, max_arch: str | Arch | None = None,
                 ngf: int = 64, n_blocks: int = 9, norm: str = "instance", dropout_rate: float = 0.0):
        if norm == "batch":
            raise ConfigError("the elastic supernet uses instance norm (BatchNorm statistics differ per sub-network)")
        super().__init__(input_nc, output_nc, arch=max_arch, ngf=ngf, n_blocks=n_blocks, norm=norm,
                         dropout_rate=dropout_rate)
        self.max_arch = self.arch

    def check_arch(self, arch: str | Arch | None) -> Arch:
        return elastic.fitting_arch(arch, self.max_arch)

    def make_subnet(self, arch: str | Arch) -> MobileResnetGenerator:
        return MobileResnetGenerator(self.input_nc, self.output_nc, arch=self.check_arch(arch),
                                     n_blocks=self.n_blocks, norm=self.norm, dropout_rate=self.dropout_rate)

    def forward_with_features(self, x, arch: str | Arch | None = None):
        c = channels(self.check_arch(arch))
        x = elastic.run(self.stem, x.clamp(-1, 1), c[0])
        x = elastic.run(self.down[0], x, c[1])
        x = elastic.run(self.down[1], x, c[2])
        features = [x]
        ends = set(self.distill_points())
        for i, block in enumerate(self.blocks):
            inner = c[3 + block_group(i, self.n_blocks)]
            h = elastic.run(block.pad1, x)
            h = elastic.run(block.conv1.depthwise, h)
            h = elastic.run(block.conv1.norm, h)
            h = elastic.run(block.conv1.pointwise, h, inner)
            h = block.dropout(block.relu(elastic.run(block.norm1, h)))
            h = elastic.run(block.pad2, h)
            h = elastic.run(block.conv2.depthwise, h)
            h = elastic.run(block.conv2.norm, h)
            h = elastic.run(block.conv2.pointwise, h, c[2])
            x = x + elastic.run(block.norm2, h)
            if i in ends:
                features.append(x)
        x = elastic.run(self.up[0], x, c[6])
        x = elastic.run(self.up[1], x, c[7])
        return elastic.run(self.head, x, self.output_nc), features

    def forward(self, x, arch: str | Arch | None = None):
        return self.forward_with_features(x, arch)[0]


def mobile_resnet_macs(widths: tuple[int, ...], height: int, width: int, n_blocks: int,
                       input_nc: int = 3, output_nc: int = 3) -> int:
    """MACs of a mobile ResNet generator with these 8 position channel counts (``channels(arch)``) in
    closed form, in the convention of ``engine.profile.count_macs`` (the tests check they are equal);
    search uses it to reject candidates over budget without tracing each one."""
    c0, c1, c2, i1, i2, i3, c6, c7 = widths
    h1, w1 = -(-height // 2), -(-width // 2)
    h2, w2 = -(-h1 // 2), -(-w1 // 2)
    p0, p1, p2 = height * width, h1 * w1, h2 * w2
    up1, up2 = (2 * h2) * (2 * w2), (4 * h2) * (4 * w2)
    macs = p0 * c0 * (input_nc * 49 + 1) + p1 * c1 * (c0 * 9 + 1) + p2 * c2 * (c1 * 9 + 1)
    for index in range(n_blocks):
        inner = (i1, i2, i3)[block_group(index, n_blocks)]
        macs += p2 * (c2 * 9 + c2 + inner * c2 + inner + inner * 9 + inner + c2 * inner + c2)
    macs += up1 * c6 * (c2 * 9 + 1) + up2 * c7 * (c6 * 9 + 1) + up2 * output_nc * c7 * 49
    return macs
