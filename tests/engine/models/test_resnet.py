"""The ResNet generator must load checkpoints of pytorch-CycleGAN-and-pix2pix as they are."""

import pytest
import torch

from engine.models import ResnetGenerator, build_generator
from tests.engine.models.reference_checkpoints import reference_resnet_state


@pytest.mark.parametrize("kwargs", [dict(), dict(ngf=8, n_blocks=6, norm="batch", dropout=True),
                                    dict(input_nc=1, output_nc=3, ngf=4, n_blocks=3)])
def test_loads_a_pytorch_cyclegan_checkpoint_strictly(tmp_path, kwargs):
    state = reference_resnet_state(**kwargs)
    path = tmp_path / "latest_net_G.pth"
    torch.save(state, path)
    loaded = torch.load(path, weights_only=True)
    model = ResnetGenerator(input_nc=kwargs.get("input_nc", 3), output_nc=kwargs.get("output_nc", 3),
                            ngf=kwargs.get("ngf", 64), n_blocks=kwargs.get("n_blocks", 9),
                            norm=kwargs.get("norm", "instance"), use_dropout=kwargs.get("dropout", False))
    model.load_state_dict(loaded, strict=True)
    assert torch.equal(model.model[1].weight, state["model.1.weight"])


def test_forward_keeps_the_image_size_and_range():
    model = build_generator("resnet", ngf=4, n_blocks=3).eval()
    out = model(torch.randn(2, 3, 32, 48))
    assert out.shape == (2, 3, 32, 48)
    assert out.abs().max() <= 1.0


def test_features_are_taken_after_downsampling_and_each_third_of_the_blocks():
    model = ResnetGenerator(ngf=4, n_blocks=9).eval()
    assert model.distill_points() == [9, 12, 15, 18]
    x = torch.randn(1, 3, 32, 32)
    out, features = model.forward_with_features(x)
    assert torch.equal(out, model(x))
    assert [tuple(f.shape) for f in features] == [(1, 16, 8, 8)] * 4
    assert torch.equal(features[-1], model.model[:19](x.clamp(-1, 1)))  # inputs are clamped, as the reference
