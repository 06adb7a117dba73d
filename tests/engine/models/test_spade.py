"""The GauGAN (SPADE) generator and its compressed student against the paper's figures (../shared/paper.md:
Cityscapes, 512x256, 36 label channels, ngf 64)."""

import pytest
import torch

from engine.models import build_generator
from engine.models.spade import MobileSPADEGenerator, SPADEGenerator
from engine.profile import profile_model

CITYSCAPES = (256, 512)  # height, width


# upsampling 'more' (281.3G, the paper's setting) is checked through the CLI in tests/engine/families/test_gaugan.py.
@pytest.mark.parametrize("upsampling, macs", [("normal", 292.7e9)])
def test_the_teacher_has_the_papers_macs_and_parameters(upsampling, macs):
    teacher = SPADEGenerator(36, 64, upsampling).eval()
    profile = profile_model(teacher, (torch.zeros(1, 36, *CITYSCAPES),))
    assert profile.macs == pytest.approx(macs, rel=1e-3)
    assert profile.params == pytest.approx(93.05e6, rel=1e-3)


def test_the_fast_cityscapes_student_is_about_nine_times_smaller():
    student = build_generator("mobile_spade", label_channels=36, widths=(32, 32, 32, 48, 32, 24, 24, 32)).eval()
    profile = profile_model(student, (torch.zeros(1, 36, *CITYSCAPES),))
    # The paper's compressed model: 31.7G MACs, 20.4M parameters (its table); this config gives 31.2G / 20.2M.
    assert profile.macs == pytest.approx(31.7e9, rel=0.02)
    assert profile.params == pytest.approx(20.4e6, rel=0.02)


def test_the_distilled_blocks_have_the_reference_names_widths_and_resolutions():
    teacher = SPADEGenerator(36, 8).eval()
    with torch.no_grad():
        image, features = teacher.forward_with_features(torch.zeros(2, 36, 64, 128))
    assert image.shape == (2, 3, 64, 128) and image.abs().max() <= 1
    assert {name: tuple(f.shape[1:]) for name, f in features.items()} == {
        "fc": (128, 1, 2), "head_0": (128, 1, 2), "G_middle_0": (128, 2, 4), "G_middle_1": (128, 4, 8),
        "up_0": (64, 8, 16), "up_1": (32, 16, 32), "up_2": (16, 32, 64), "up_3": (8, 64, 128)}
    names = set(teacher.state_dict())
    assert {"fc.weight", "head_0.norm_0.mlp_shared.0.weight", "up_0.conv_s.weight", "up_0.norm_s.mlp_gamma.weight",
            "head_0.norm_0.param_free_norm.running_mean", "conv_img.weight"} <= names  # NVlabs/SPADE's names
    student = MobileSPADEGenerator(36, (8,) * 8).eval()
    with torch.no_grad():
        assert student(torch.zeros(1, 36, 64, 128)).shape == (1, 3, 64, 128)
    assert "head_0.norm_0.mlp_gamma.conv.0.weight" in student.state_dict()  # separable, as the reference's


def test_sizes_the_upsampling_cannot_reach_are_refused():
    with pytest.raises(ValueError, match="multiple of 64 on both sides, not 64x32"):
        SPADEGenerator(36, 8, "more")(torch.zeros(1, 36, 32, 64))
    with pytest.raises(ValueError, match="8 widths"):
        MobileSPADEGenerator(36, (8,) * 7)


def test_spectral_norm_checkpoints_load_as_the_weights_they_ran_with():
    from torch.nn.utils import spectral_norm

    from engine.checkpoints import fold_spectral_norm

    torch.manual_seed(0)
    normed = torch.nn.Sequential(spectral_norm(torch.nn.Conv2d(4, 6, 3, padding=1)), torch.nn.ReLU(),
                                 spectral_norm(torch.nn.Conv2d(6, 2, 1, bias=False)))
    x = torch.randn(2, 4, 8, 8)
    for _ in range(3):  # training passes move the power iteration's u and v
        normed(x)
    normed.eval()
    state = normed.state_dict()
    assert {"0.weight_orig", "0.weight_u", "0.weight_v"} <= set(state)
    plain = torch.nn.Sequential(torch.nn.Conv2d(4, 6, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(6, 2, 1, bias=False))
    plain.load_state_dict(fold_spectral_norm(state))  # strict: nothing left over, nothing missing
    with torch.no_grad():
        assert torch.allclose(plain(x), normed(x), atol=1e-6)


def test_the_multiscale_discriminator_gives_each_scales_stages_and_feature_matching_compares_them():
    from engine.models.spade import MultiscaleDiscriminator, feature_matching_loss

    from engine.models import build_discriminator

    netD = build_discriminator("multiscale", input_nc=36 + 3, ndf=8, n_layers=4, num_d=2)
    assert isinstance(netD, MultiscaleDiscriminator)
    x = torch.randn(2, 39, 64, 128)
    outputs = netD(x)
    assert len(outputs) == 2 and [len(scale) for scale in outputs] == [5, 5]
    assert [tuple(o.shape[1:]) for o in outputs[0]] == [(8, 33, 65), (16, 17, 33), (32, 9, 17), (64, 10, 18),
                                                      (1, 11, 19)]
    assert outputs[1][0].shape[2:] == (17, 33)  # the second scale sees the input halved
    names = set(netD.state_dict())
    assert {"discriminator_0.model0.0.weight", "discriminator_1.model1.0.weight_orig",
            "discriminator_1.model4.0.bias"} <= names  # NVlabs/SPADE's names, spectral norms
    assert feature_matching_loss(outputs, outputs).item() == 0
    other = netD(torch.randn(2, 39, 64, 128))
    loss = feature_matching_loss(other, outputs)
    expected = sum(torch.nn.functional.l1_loss(a, b) for s, t in zip(other, outputs) for a, b in zip(s[:-1], t[:-1])) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6) and loss.item() > 0
