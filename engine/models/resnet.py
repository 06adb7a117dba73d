"""The ResNet generator of CycleGAN and pix2pix.

Module structure and parameter names follow pytorch-CycleGAN-and-pix2pix (``model.<i>...``), so a
``latest_net_G.pth`` that project saved loads here with ``strict=True``.
"""

from torch import nn

from engine.models.norms import norm_layer, uses_bias
from engine.models.registry import GENERATORS

N_DOWNSAMPLING = 2


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, padding_type: str, norm: str, use_dropout: bool):
        super().__init__()
        norm_cls, bias = norm_layer(norm), uses_bias(norm)
        layers: list[nn.Module] = []
        for i in range(2):
            pad = 0
            if padding_type == "reflect":
                layers.append(nn.ReflectionPad2d(1))
            elif padding_type == "replicate":
                layers.append(nn.ReplicationPad2d(1))
            elif padding_type == "zero":
                pad = 1
            else:
                raise ValueError(f"padding_type must be reflect, replicate or zero, not {padding_type!r}")
            layers += [nn.Conv2d(dim, dim, kernel_size=3, padding=pad, bias=bias), norm_cls(dim)]
            if i == 0:
                layers.append(nn.ReLU(True))
                if use_dropout:
                    layers.append(nn.Dropout(0.5))
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


@GENERATORS.register("resnet")
class ResnetGenerator(nn.Module):
    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9,
                 norm: str = "instance", use_dropout: bool = False, padding_type: str = "reflect"):
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, not {n_blocks}")
        self.n_blocks = n_blocks
        norm_cls, bias = norm_layer(norm), uses_bias(norm)
        model: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=bias),
                                  norm_cls(ngf), nn.ReLU(True)]
        for i in range(N_DOWNSAMPLING):
            mult = 2 ** i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=bias),
                      norm_cls(ngf * mult * 2), nn.ReLU(True)]
        mult = 2 ** N_DOWNSAMPLING
        self.first_block_index = len(model)
        model += [ResnetBlock(ngf * mult, padding_type, norm, use_dropout) for _ in range(n_blocks)]
        for i in range(N_DOWNSAMPLING):
            mult = 2 ** (N_DOWNSAMPLING - i)
            model += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, kernel_size=3, stride=2, padding=1,
                                         output_padding=1, bias=bias),
                      norm_cls(ngf * mult // 2), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x.clamp(-1, 1))  # as the reference: inputs outside [-1, 1] are clamped

    def distill_points(self) -> list[int]:
        """Indices in ``model`` whose outputs the paper distils: the last downsampling block's output
        and the outputs of the residual blocks that end each third (3, 6 and 9 of 9 blocks)."""
        first = self.first_block_index
        return [first - 1] + [first + k - 1 for k in block_thirds(self.n_blocks) if k > 0]

    def forward_with_features(self, x):
        points, features = set(self.distill_points()), []
        x = x.clamp(-1, 1)
        for i, layer in enumerate(self.model):
            x = layer(x)
            if i in points:
                features.append(x)
        return x, features


def block_thirds(n_blocks: int) -> list[int]:
    """How many residual blocks end each third of the stack (cumulative): 9 -> [3, 6, 9]."""
    return [n_blocks // 3, 2 * (n_blocks // 3), n_blocks]
