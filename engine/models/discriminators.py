"""PatchGAN discriminators, with the parameter names of pytorch-CycleGAN-and-pix2pix."""

from torch import nn

from engine.models.norms import norm_layer, uses_bias
from engine.models.registry import DISCRIMINATORS


@DISCRIMINATORS.register("n_layers")
class NLayerDiscriminator(nn.Module):
    """A PatchGAN: with n_layers=3 each output judges a 70x70 patch of the input."""

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, not {n_layers}")
        norm_cls, bias = norm_layer(norm), uses_bias(norm)
        kw, padw = 4, 1
        sequence: list[nn.Module] = [nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw),
                                     nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            sequence += [nn.Conv2d(ndf * prev, ndf * mult, kernel_size=kw, stride=2, padding=padw, bias=bias),
                         norm_cls(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        sequence += [nn.Conv2d(ndf * prev, ndf * mult, kernel_size=kw, stride=1, padding=padw, bias=bias),
                     norm_cls(ndf * mult), nn.LeakyReLU(0.2, True),
                     nn.Conv2d(ndf * mult, 1, kernel_size=kw, stride=1, padding=padw)]
        self.model = nn.Sequential(*sequence)

    def forward(self, x):
        return self.model(x)


@DISCRIMINATORS.register("basic")
def basic(**kwargs) -> NLayerDiscriminator:
    return NLayerDiscriminator(n_layers=3, **kwargs)


@DISCRIMINATORS.register("pixel")
class PixelDiscriminator(nn.Module):
    """A 1x1 PatchGAN (pixelGAN)."""

    def __init__(self, input_nc: int = 3, ndf: int = 64, norm: str = "batch"):
        super().__init__()
        norm_cls, bias = norm_layer(norm), uses_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, kernel_size=1, stride=1, padding=0), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, kernel_size=1, stride=1, padding=0, bias=bias), norm_cls(ndf * 2),
            nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * 2, 1, kernel_size=1, stride=1, padding=0, bias=bias))

    def forward(self, x):
        return self.net(x)
