"""Weight initialisation of pytorch-CycleGAN-and-pix2pix and gan-compression (``init_type='normal'``):
convolution and linear weights from N(0, gain), biases 0, batch-norm scales from N(1, gain)."""

from torch import nn

INIT_TYPES = ("normal", "pytorch", "xavier", "kaiming")


def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """``normal``: the reference's; ``xavier``: Xavier-normal with ``gain`` (its GauGAN's, as NVlabs/SPADE);
    ``kaiming``: Kaiming-normal, fan in (its MUNIT's);
    ``pytorch``: leave PyTorch's default (Kaiming-uniform) as built. Spectral-normalised layers keep their
    own initialisation (their weight is recomputed from ``weight_orig`` at each call, as in the reference)."""
    if init_type not in INIT_TYPES:
        raise ValueError(f"init must be one of {', '.join(INIT_TYPES)}, not {init_type!r}")
    if init_type == "pytorch":
        return net
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if not isinstance(module.weight, nn.Parameter):
                continue
            if init_type == "xavier":
                nn.init.xavier_normal_(module.weight, gain=gain)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(module.weight, a=0, mode="fan_in")
            else:
                nn.init.normal_(module.weight, 0.0, gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d) and module.weight is not None:
            nn.init.normal_(module.weight, 1.0, gain)
            nn.init.zeros_(module.bias)
    return net
