"""The U-Net generator must load pytorch-CycleGAN-and-pix2pix checkpoints as they are."""

import pytest
import torch

from engine.models import UnetGenerator, build_generator
from engine.errors import UnknownNameError

from tests.engine.models.reference_checkpoints import reference_unet_state


@pytest.mark.parametrize("name, num_downs, norm, dropout", [("unet_256", 8, "batch", True),
                                                            ("unet_128", 7, "instance", False)])
def test_loads_a_pix2pix_unet_checkpoint_strictly(tmp_path, name, num_downs, norm, dropout):
    state = reference_unet_state(num_downs=num_downs, ngf=4, norm=norm, dropout=dropout)
    torch.save(state, tmp_path / "latest_net_G.pth")
    model = build_generator(name, ngf=4, norm=norm, use_dropout=dropout)
    model.load_state_dict(torch.load(tmp_path / "latest_net_G.pth", weights_only=True), strict=True)
    size = 2 ** num_downs
    assert model.eval()(torch.randn(1, 3, size, size)).shape == (1, 3, size, size)


def test_image_sides_must_fit_the_depth():
    with pytest.raises(ValueError, match="multiples of 128"):
        UnetGenerator(num_downs=7, ngf=2)(torch.randn(1, 3, 96, 96))


def test_unknown_generator_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="unknown generator 'unet_512'; choose one of: .*unet_256"):
        build_generator("unet_512")
