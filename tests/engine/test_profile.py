"""MACs in the paper's convention; the reference figures are the paper's table (../shared/paper.md)."""

import pytest
import torch
from torch import nn

from engine.families import get_family
from engine.profile import count_macs, count_params, profile_model


def _profile(family_name: str, arch: str | None = None, size=(256, 256)):
    family = get_family(family_name)
    options = family.options()
    model = family.build_teacher(options) if arch is None else family.build_student(options, family.parse_arch(arch))
    return profile_model(model, family.example_inputs(options, size))


def test_cyclegan_teacher_matches_the_paper_at_256():
    profile = _profile("cyclegan")
    assert profile.macs == pytest.approx(56.8e9, rel=0.01)
    assert profile.params == pytest.approx(11.4e6, rel=0.01)


def test_released_fast_cyclegan_config_matches_the_paper():
    profile = _profile("cyclegan", "16_16_24_16_32_64_16_24")
    assert profile.macs == pytest.approx(2.64e9, rel=0.03)
    assert profile.params == pytest.approx(0.355e6, rel=0.03)


def test_convolution_costs_output_elements_times_fan_in():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=True)
    assert count_macs(conv, torch.zeros(1, 3, 10, 10)) == 10 * 10 * 8 * 3 * 9
    depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
    assert count_macs(depthwise, torch.zeros(2, 8, 10, 10)) == 2 * 10 * 10 * 8 * 9


def test_transposed_convolution_is_counted_per_output_element():
    up = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
    assert count_macs(up, torch.zeros(1, 8, 5, 5)) == (10 * 10 * 4) * 8 * 9


def test_norms_follow_the_papers_convention():
    x = torch.zeros(1, 4, 6, 6)
    assert count_macs(nn.InstanceNorm2d(4), x) == 4 * 6 * 6
    assert count_macs(nn.BatchNorm2d(4), x) == 0
    assert count_macs(nn.Sequential(nn.ReLU(), nn.Tanh(), nn.ReflectionPad2d(1)), x) == 0


def test_counting_leaves_the_training_mode_alone():
    model = nn.Sequential(nn.Conv2d(1, 1, 1), nn.Dropout()).train()
    count_macs(model, torch.zeros(1, 1, 2, 2))
    assert model.training
    assert count_params(model) == 2


@pytest.mark.parametrize("arch, size, n_blocks", [("16_16_24_16_32_64_16_24", (256, 256), 9),
                                                  ("8_4_6_2_5_7_3_1", (64, 48), 4),
                                                  ("4_4_4_4_4_4_4_4", (36, 20), 3)])
def test_closed_form_mobile_resnet_macs_equal_the_traced_count(arch, size, n_blocks):
    from engine.arch import Arch
    from engine.models import MobileResnetGenerator
    from engine.models.mobile_resnet import channels, mobile_resnet_macs

    parsed = Arch.parse(arch)
    traced = count_macs(MobileResnetGenerator(arch=parsed, n_blocks=n_blocks), torch.zeros(1, 3, *size))
    assert mobile_resnet_macs(channels(parsed), *size, n_blocks) == traced


def test_profile_accepts_non_square_sizes_from_the_command_line(capsys):
    import json

    import main

    assert main.main(["profile", "--family", "pix2pix", "--image-size", "512x256", "--json"]) == 0
    wide = json.loads(capsys.readouterr().out)
    assert wide["macs"] == _profile("pix2pix", size=(256, 512)).macs
    assert wide["macs"] == pytest.approx(2 * _profile("pix2pix").macs, rel=1e-6)
