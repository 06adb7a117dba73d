"""MUNIT's generator (Huang et al.) as gan-compression compresses it: a content encoder, a style encoder and a
decoder whose residual blocks are normalised by AdaIN, with the AdaIN scales and shifts made from the style
code by an MLP. Layers carry NVlabs/MUNIT's parameter names (``enc_style``, ``enc_content``, ``dec``, ``mlp``;
``model.N`` inside each, ``conv``/``norm`` in each block), so its ``gen_a``/``gen_b`` state dicts load.

The AdaIN parameters are passed to the decoder as a tensor (not assigned to the layers as NVlabs does), so
a generator is a pure function of (image, style code) and exports to ONNX with both as inputs.

The compressed student of a 10-position config string (``16_16_16_24_56_16_40_40_32_24``): [0] style encoder
base width d; [1] content stem c; [2] first downsampling 2c; [3] second 4c (the content code's width, the
residual stream of encoder and decoder); [4], [5] inner width 4c of the content residual blocks 1-2 and
3-4; [6], [7] of the decoder's AdaIN blocks 1-2 and 3-4; [8] decoder upsampling 1, 2c; [9] upsampling 2, c.
Its residual blocks and upsampling convolutions are separable (depthwise, instance norm, pointwise)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from engine.arch import Arch
from engine.models import elastic
from engine.models.registry import DISCRIMINATORS, GENERATORS

#: What each of the student's 10 config positions sets, and the multiple of its value that is the width.
STUDENT_POSITIONS: tuple[tuple[str, int], ...] = (
    ("style", 1), ("content_stem", 1), ("content_down1", 2), ("content_down2", 4), ("content_res12", 4),
    ("content_res34", 4), ("decoder_res12", 4), ("decoder_res34", 4), ("decoder_up1", 2), ("decoder_up2", 1))


class LayerNorm(nn.Module):
    """MUNIT's layer norm: over all of a sample's channels and pixels (unbiased std), then a per-channel
    scale ``gamma`` and shift ``beta``."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.rand(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        mean = flat.mean(1).view(-1, 1, 1, 1)
        std = flat.std(1).view(-1, 1, 1, 1)
        c = x.shape[1]  # an elastic supernet's first channels
        return (x - mean) / (std + self.eps) * self.gamma[:c].view(1, -1, 1, 1) + self.beta[:c].view(1, -1, 1, 1)


class Separable(nn.Module):
    """Depthwise k x k, instance norm, pointwise 1x1 (gan-compression's ``SeparableConv2d``: ``conv.0``/``conv.2``)."""

    def __init__(self, fin: int, fout: int, kernel: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(fin, fin, kernel, stride, groups=fin), nn.InstanceNorm2d(fin),
                                  nn.Conv2d(fin, fout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ConvBlock(nn.Module):
    """Padding, a convolution (plain or separable), a norm (``in``, ``ln``, ``adain`` or none), an activation."""

    def __init__(self, fin: int, fout: int, kernel: int, stride: int, padding: int, norm: str = "none",
                 activation: str = "relu", pad: str = "reflect", separable: bool = False):
        super().__init__()
        self.pad = nn.ReflectionPad2d(padding) if pad == "reflect" else nn.ZeroPad2d(padding)
        self.conv = Separable(fin, fout, kernel, stride) if separable else nn.Conv2d(fin, fout, kernel, stride)
        self.norm_kind = norm
        self.channels = fout
        if norm == "in":
            self.norm = nn.InstanceNorm2d(fout)
        elif norm == "ln":
            self.norm = LayerNorm(fout)
        self.activation = activation

    def forward(self, x: torch.Tensor, adain: tuple[torch.Tensor, torch.Tensor] | None = None,
                width: int | None = None) -> torch.Tensor:
        """``width``: the outputs an elastic supernet uses (None: all)."""
        layer = self.conv.conv if isinstance(self.conv, Separable) else self.conv
        x = elastic.run(layer, self.pad(x), width)
        if self.norm_kind == "adain":
            shift, scale = adain  # type: ignore[misc]
            x = F.instance_norm(x) * scale[:, :, None, None] + shift[:, :, None, None]
        elif self.norm_kind == "ln":
            x = self.norm(x)
        elif self.norm_kind == "in":
            x = elastic.run(self.norm, x)
        if self.activation == "relu":
            return F.relu(x)
        if self.activation == "tanh":
            return torch.tanh(x)
        if self.activation == "lrelu":
            return F.leaky_relu(x, 0.2)
        return x


class ResBlock(nn.Module):
    def __init__(self, dim: int, inner: int, norm: str, pad: str, separable: bool):
        super().__init__()
        self.model = nn.Sequential(ConvBlock(dim, inner, 3, 1, 1, norm, "relu", pad, separable),
                                   ConvBlock(inner, dim, 3, 1, 1, norm, "none", pad, separable))

    def forward(self, x: torch.Tensor, adain: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
                inner: int | None = None) -> torch.Tensor:
        first, second = (adain[0], adain[1]) if adain is not None else (None, None)
        return x + self.model[1](self.model[0](x, first, inner), second, x.shape[1])


class ResBlocks(nn.Module):
    def __init__(self, dim: int, inners: list[int], norm: str, pad: str, separable: bool):
        super().__init__()
        self.model = nn.Sequential(*(ResBlock(dim, inner, norm, pad, separable) for inner in inners))

    def forward(self, x, adain=None, inners: list[int] | None = None):
        for index, block in enumerate(self.model):
            x = block(x, adain[2 * index:2 * index + 2] if adain is not None else None,
                      inners[index] if inners is not None else None)
        return x


class StyleEncoder(nn.Module):
    def __init__(self, input_nc: int, dim: int, style_dim: int, pad: str, n_down: int = 4):
        super().__init__()
        layers: list[nn.Module] = [ConvBlock(input_nc, dim, 7, 1, 3, "none", "relu", pad)]
        for _ in range(2):
            layers.append(ConvBlock(dim, 2 * dim, 4, 2, 1, "none", "relu", pad))
            dim *= 2
        for _ in range(n_down - 2):
            layers.append(ConvBlock(dim, dim, 4, 2, 1, "none", "relu", pad))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ContentEncoder(nn.Module):
    def __init__(self, input_nc: int, widths: list[int], inners: list[int], pad: str, separable: bool):
        super().__init__()
        layers: list[nn.Module] = [ConvBlock(input_nc, widths[0], 7, 1, 3, "in", "relu", pad)]
        for fin, fout in zip(widths, widths[1:]):
            layers.append(ConvBlock(fin, fout, 4, 2, 1, "in", "relu", pad))
        layers.append(ResBlocks(widths[-1], inners, "in", pad, separable))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Decoder(nn.Module):
    def __init__(self, dim: int, inners: list[int], ups: list[int], output_nc: int, pad: str, separable: bool):
        super().__init__()
        layers: list[nn.Module] = [ResBlocks(dim, inners, "adain", pad, separable)]
        for fout in ups:
            layers += [nn.Upsample(scale_factor=2), ConvBlock(dim, fout, 5, 1, 2, "ln", "relu", pad, separable)]
            dim = fout
        layers.append(ConvBlock(dim, output_nc, 7, 1, 3, "none", "tanh", pad))
        self.model = nn.Sequential(*layers)

    def adain_channels(self) -> list[int]:
        """The width of each AdaIN layer, in the order the MLP's output holds their parameters."""
        return [block.channels for res in self.model[0].model for block in res.model]


class MLP(nn.Module):
    """Style code -> AdaIN parameters: three linear layers (``model.N.fc``), ReLU between them."""

    def __init__(self, style_dim: int, output: int, dim: int = 256):
        super().__init__()
        self.model = nn.Sequential(_Linear(style_dim, dim, True), _Linear(dim, dim, True), _Linear(dim, output, False))

    def forward(self, style: torch.Tensor) -> torch.Tensor:
        return self.model(style.flatten(1))


class _Linear(nn.Module):
    def __init__(self, fin: int, fout: int, relu: bool):
        super().__init__()
        self.fc = nn.Linear(fin, fout)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(x)
        return F.relu(x) if self.relu else x


class _AdaINGenerator(nn.Module):
    enc_style: StyleEncoder | None
    enc_content: ContentEncoder
    dec: Decoder
    mlp: MLP

    # Each part runs at ``layout``'s widths (``student_layout``; None: as built), so that one code serves the
    # plain networks and the elastic supernet.

    def _content(self, images: torch.Tensor, layout: dict | None) -> torch.Tensor:
        widths = layout["content"] if layout else [None] * 3
        x = images
        for block, width in zip(list(self.enc_content.model)[:3], widths):
            x = block(x, None, width)
        return self.enc_content.model[3](x, None, layout["content_inners"] if layout else None)

    def _style(self, images: torch.Tensor, layout: dict | None) -> torch.Tensor:
        if self.enc_style is None:
            raise ValueError("this generator has no style encoder: give a style code")
        base = layout["style"] if layout else None
        x = images
        blocks = list(self.enc_style.model)
        for index, block in enumerate(blocks[:-2]):
            x = block(x, None, None if base is None else base * 2 ** min(index, 2))
        return elastic.conv2d(blocks[-1], blocks[-2](x), self.style_dim)

    def _decode(self, content: torch.Tensor, style: torch.Tensor, layout: dict | None) -> torch.Tensor:
        params = self.mlp(style)
        # Per AdaIN layer, as NVlabs' assign_adain_params reads them: its shift (mean) then its scale (std),
        # each as wide as the layer is built; a narrower sub-network uses the first of each.
        used = [c for inner in layout["decoder_inners"] for c in (inner, content.shape[1])] if layout else None
        adain, offset = [], 0
        for index, built in enumerate(self.dec.adain_channels()):
            width = used[index] if used else built
            adain.append((params[:, offset:offset + width], params[:, offset + built:offset + built + width]))
            offset += 2 * built
        layers = list(self.dec.model)
        x = layers[0](content, adain, layout["decoder_inners"] if layout else None)
        ups = iter(layout["ups"] if layout else [None] * len(layers))
        for layer in layers[1:-1]:
            x = layer(x) if isinstance(layer, nn.Upsample) else layer(x, None, next(ups))
        return layers[-1](x, None, self.output_nc)

    def _layout(self, arch) -> dict | None:
        return None

    def encode(self, images: torch.Tensor, arch=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The content code and the style code of ``images`` (the style encoder must be there)."""
        layout = self._layout(arch)
        return self._content(images, layout), self._style(images, layout)

    def content_code(self, images: torch.Tensor, arch=None) -> torch.Tensor:
        return self._content(images, self._layout(arch))

    def style_of(self, images: torch.Tensor, arch=None) -> torch.Tensor:
        return self._style(images, self._layout(arch))

    def decode(self, content: torch.Tensor, style: torch.Tensor, arch=None) -> torch.Tensor:
        return self._decode(content, style, self._layout(arch))

    def forward_with_features(self, images: torch.Tensor, style: torch.Tensor | None = None, arch=None):
        """The image of ``images``' content in the style ``style`` (a code, N x style_dim x 1 x 1; a reference
        image, whose style the style encoder reads; None: the image's own), and the content and style codes
        (the points the reference distils)."""
        layout = self._layout(arch)
        content = self._content(images, layout)
        code = style if style is not None and style.shape[-2:] == (1, 1) else \
            self._style(images if style is None else style, layout)
        return self._decode(content, code, layout), {"content": content, "style": code}

    def forward(self, images: torch.Tensor, style: torch.Tensor | None = None, arch=None) -> torch.Tensor:
        return self.forward_with_features(images, style, arch)[0]

    def _build(self, input_nc: int, style_width: int | None, content_widths: list[int], content_inners: list[int],
               decoder_inners: list[int], ups: list[int], style_dim: int, mlp_dim: int, pad: str,
               separable: bool) -> None:
        self.style_dim, self.output_nc, self.input_nc, self.mlp_dim, self.pad = style_dim, input_nc, input_nc, mlp_dim, pad
        self.enc_style = StyleEncoder(input_nc, style_width, style_dim, pad) if style_width is not None else None
        self.enc_content = ContentEncoder(input_nc, content_widths, content_inners, pad, separable)
        self.dec = Decoder(content_widths[-1], decoder_inners, ups, input_nc, pad, separable)
        self.mlp = MLP(style_dim, 2 * sum(self.dec.adain_channels()), mlp_dim)


@GENERATORS.register("munit")
class MUNITGenerator(_AdaINGenerator):
    """NVlabs/MUNIT's ``AdaINGen`` (edges2shoes: ngf 64, 2 downsamplings, 4 residual blocks, style dim 8, MLP
    dim 256, reflect padding)."""

    def __init__(self, input_nc: int = 3, ngf: int = 64, n_downsample: int = 2, n_res: int = 4, style_dim: int = 8,
                 mlp_dim: int = 256, pad: str = "reflect", style_encoder: bool = True):
        super().__init__()
        widths = [ngf * 2 ** i for i in range(n_downsample + 1)]
        dim = widths[-1]
        ups = [dim // 2 ** (i + 1) for i in range(n_downsample)]
        self._build(input_nc, ngf if style_encoder else None, widths, [dim] * n_res, [dim] * n_res, ups, style_dim,
                    mlp_dim, pad, separable=False)


def student_layout(arch: tuple[int, ...]) -> dict[str, list[int] | int]:
    """The student's widths for a 10-value arch (2 downsamplings, 4 residual blocks, as the reference)."""
    if len(arch) != len(STUDENT_POSITIONS):
        raise ValueError(f"a MUNIT student has {len(STUDENT_POSITIONS)} widths, got {len(arch)}")
    w = [value * multiple for (_, multiple), value in zip(STUDENT_POSITIONS, arch)]
    return {"style": w[0], "content": w[1:4], "content_inners": [w[4], w[4], w[5], w[5]],
            "decoder_inners": [w[6], w[6], w[7], w[7]], "ups": w[8:10]}


@GENERATORS.register("mobile_munit")
class MobileMUNITGenerator(_AdaINGenerator):
    """The compressed MUNIT student of a 10-position config string (gan-compression's ``SubMobileAdaINGenerator``)."""

    def __init__(self, arch: tuple[int, ...], input_nc: int = 3, style_dim: int = 8, mlp_dim: int = 256,
                 pad: str = "reflect", style_encoder: bool = True):
        super().__init__()
        layout = student_layout(tuple(int(v) for v in arch))
        self.widths = tuple(int(v) for v in arch)
        self.arch = Arch(self.widths)
        self._build(input_nc, layout["style"] if style_encoder else None, layout["content"],  # type: ignore[arg-type]
                    layout["content_inners"], layout["decoder_inners"], layout["ups"], style_dim,  # type: ignore[arg-type]
                    mlp_dim, pad, separable=True)


@GENERATORS.register("mobile_munit_supernet")
class MobileMUNITSupernet(MobileMUNITGenerator):
    """Once-for-all mobile MUNIT: the weights of a ``MobileMUNITGenerator`` at the largest widths, run at any
    arch that fits (first channels of each layer, as the reference's super modules; the AdaIN parameters the
    first of each layer's shift and scale)."""

    def check_arch(self, arch) -> tuple[int, ...]:
        """The widths of ``arch`` (None: the largest), checked to fit (``elastic.fitting_arch``)."""
        return elastic.fitting_arch(arch, Arch(self.widths)).values

    def _layout(self, arch) -> dict | None:
        return student_layout(self.check_arch(arch))

    def make_subnet(self, arch) -> MobileMUNITGenerator:
        return MobileMUNITGenerator(self.check_arch(arch), self.input_nc, self.style_dim, self.mlp_dim, self.pad,
                                    style_encoder=self.enc_style is not None)

    @torch.no_grad()
    def extract(self, arch) -> MobileMUNITGenerator:
        """The plain sub-network: first-k slices everywhere, except the MLP's last layer, whose rows for each
        AdaIN layer's shift and scale are gathered from where the supernet keeps them."""
        subnet = elastic.extract_subnet(self, arch)
        rows, offset = [], 0
        used = subnet.dec.adain_channels()
        for built, width in zip(self.dec.adain_channels(), used):
            rows += list(range(offset, offset + width)) + list(range(offset + built, offset + built + width))
            offset += 2 * built
        index = torch.tensor(rows, device=self.mlp.model[2].fc.weight.device)
        subnet.mlp.model[2].fc.weight.copy_(self.mlp.model[2].fc.weight.index_select(0, index))
        subnet.mlp.model[2].fc.bias.copy_(self.mlp.model[2].fc.bias.index_select(0, index))
        return subnet


def mobile_munit_macs(arch: tuple[int, ...], size: tuple[int, int], input_nc: int = 3, style_dim: int = 8,
                      mlp_dim: int = 256, style_encoder: bool = True) -> int:
    """MACs of the student of ``arch`` at ``size`` in closed form, in the convention of
    ``engine.profile.count_macs`` (convolutions and linear layers; instance norms, nearest-neighbour resizes
    and the style encoder's average pool: 1 per element; MUNIT's layer norm, activations: 0), with the
    style encoder reading a reference image when it is kept (the paper's count) and a code given otherwise;
    the tests check it equals the traced count. Search uses it to reject candidates over budget."""
    layout = student_layout(tuple(int(v) for v in arch))
    height, width = size
    c0, c1, c2 = layout["content"]  # type: ignore[misc]
    full, half, quarter = height * width, (height // 2) * (width // 2), (height // 4) * (width // 4)

    def separable(pixels: int, fin: int, fout: int, kernel: int) -> int:
        return pixels * fin * kernel * kernel + pixels * fin + pixels * fout * fin

    def res_blocks(inners: list[int]) -> int:
        # Two separable 3x3 convolutions per block, each followed by an (adaptive) instance norm.
        return sum(separable(quarter, c2, inner, 3) + quarter * inner + separable(quarter, inner, c2, 3) + quarter * c2
                   for inner in inners)

    macs = full * c0 * input_nc * 49 + full * c0 + half * c1 * c0 * 16 + half * c1 + quarter * c2 * c1 * 16 + quarter * c2
    macs += res_blocks(layout["content_inners"]) + res_blocks(layout["decoder_inners"])  # type: ignore[arg-type]
    up1, up2 = layout["ups"]  # type: ignore[misc]
    macs += half * c2 + separable(half, c2, up1, 5) + full * up1 + separable(full, up1, up2, 5)
    macs += full * input_nc * up2 * 49
    adain = 2 * (sum(layout["decoder_inners"]) + len(layout["decoder_inners"]) * c2)  # type: ignore[arg-type]
    macs += style_dim * mlp_dim + mlp_dim * mlp_dim + mlp_dim * adain
    if style_encoder:
        d = layout["style"]
        sizes = [(height, width)]
        for _ in range(4):
            sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
        pixels = [h * w for h, w in sizes]
        widths = [d, 2 * d, 4 * d, 4 * d, 4 * d]  # type: ignore[operator]
        macs += pixels[0] * widths[0] * input_nc * 49
        macs += sum(pixels[i] * widths[i] * widths[i - 1] * 16 for i in range(1, 5))
        macs += pixels[4] * widths[4] + style_dim * widths[4]
    return int(macs)


@DISCRIMINATORS.register("ms_image")
class MsImageDiscriminator(nn.Module):
    """NVlabs/MUNIT's multi-scale image discriminator (``MsImageDis``: edges2shoes' 4 layers, dim 64, no norm,
    leaky ReLU, reflect padding, 3 scales): per scale 4x4 stride-2 convolutions doubling the width, then a
    1x1 map; each scale sees the image halved once more (3x3 average pool). Returns one map per scale."""

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 4, num_scales: int = 3):
        super().__init__()
        self.cnns = nn.ModuleList()
        for _ in range(num_scales):
            layers: list[nn.Module] = [ConvBlock(input_nc, ndf, 4, 2, 1, "none", "lrelu", "reflect")]
            dim = ndf
            for _ in range(n_layers - 1):
                layers.append(ConvBlock(dim, dim * 2, 4, 2, 1, "none", "lrelu", "reflect"))
                dim *= 2
            layers.append(nn.Conv2d(dim, 1, 1))
            self.cnns.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for cnn in self.cnns:
            outputs.append(cnn(x))
            x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
        return outputs
