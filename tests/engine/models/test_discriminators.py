import torch

from engine.models import build_discriminator


def test_basic_patchgan_judges_70px_patches_and_has_cyclegan_names():
    model = build_discriminator("basic", input_nc=6, ndf=8)
    names = [k for k in model.state_dict() if k.endswith("weight")]
    assert names == ["model.0.weight", "model.2.weight", "model.3.weight", "model.5.weight", "model.6.weight",
                     "model.8.weight", "model.9.weight", "model.11.weight"]
    assert model(torch.randn(2, 6, 256, 256)).shape == (2, 1, 30, 30)


def test_n_layers_is_configurable():
    shallow = build_discriminator("n_layers", n_layers=1, ndf=4, norm="instance")
    assert shallow(torch.randn(1, 3, 64, 64)).shape == (1, 1, 30, 30)
    assert build_discriminator("n_layers", n_layers=5, ndf=4)(torch.randn(1, 3, 256, 256)).shape == (1, 1, 6, 6)
    assert build_discriminator("pixel", ndf=4)(torch.randn(1, 3, 16, 16)).shape == (1, 1, 16, 16)
