import pytest
import torch

from engine.errors import ConfigError
from engine.families import get_family
from engine.arch import Arch
from engine.models import MobileResnetGenerator, MobileResnetSupernet, extract_subnet
from engine.models.mobile_resnet import block_group, channels, parse_arch

TINY_MAX = Arch.parse("8_8_8_8_8_8_8_8")


def test_arch_strings_parse_and_print():
    arch = parse_arch("16_16_24_16_32_64_16_24")
    assert str(arch) == "16_16_24_16_32_64_16_24"
    assert channels(arch) == (16, 32, 96, 64, 128, 256, 32, 24)
    assert arch.fits_in(parse_arch(None, 64)) and not parse_arch(None, 65).fits_in(arch)
    for bad in ("16_16", "a_b_c_d_e_f_g_h", "0_16_16_16_16_16_16_16"):
        with pytest.raises(ConfigError):
            parse_arch(bad)


def test_blocks_are_grouped_by_thirds():
    assert [block_group(i, 9) for i in range(9)] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [block_group(i, 4) for i in range(4)] == [0, 1, 2, 2]


def test_the_released_compressed_cyclegan_has_its_published_size():
    model = MobileResnetGenerator(arch="16_16_24_16_32_64_16_24")
    assert sum(p.numel() for p in model.parameters()) == 355_235


@pytest.mark.parametrize("arch", ["8_8_8_8_8_8_8_8", "4_4_4_4_4_4_4_4", "4_8_4_8_4_8_4_8", "8_4_6_2_5_7_3_1"])
def test_extracted_subnet_equals_the_supernet_run_at_that_arch(arch):
    torch.manual_seed(0)
    supernet = MobileResnetSupernet(max_arch=TINY_MAX, n_blocks=3).eval()
    with torch.no_grad():  # instance norms have no weights; give the convs non-trivial biases too
        for p in supernet.parameters():
            p.normal_(0, 0.3)
    x = torch.randn(2, 3, 24, 24)
    subnet = extract_subnet(supernet, arch)
    assert type(subnet) is MobileResnetGenerator and str(subnet.arch) == arch
    with torch.no_grad():
        expected, expected_features = supernet.forward_with_features(x, arch)
        got, got_features = subnet.forward_with_features(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    for a, b in zip(got_features, expected_features):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    assert sum(p.numel() for p in subnet.parameters()) < sum(p.numel() for p in supernet.parameters()) or arch == str(TINY_MAX)


def test_subnet_weights_are_copies_not_views():
    supernet = MobileResnetSupernet(max_arch=TINY_MAX, n_blocks=3)
    subnet = extract_subnet(supernet, "4_4_4_4_4_4_4_4")
    before = supernet.stem[1].weight.detach().clone()
    with torch.no_grad():
        subnet.stem[1].weight.add_(1.0)
    assert torch.equal(supernet.stem[1].weight, before)


def test_supernet_rejects_an_arch_that_does_not_fit():
    supernet = MobileResnetSupernet(max_arch=TINY_MAX, n_blocks=3)
    with pytest.raises(ConfigError, match="does not fit"):
        supernet(torch.randn(1, 3, 16, 16), "16_8_8_8_8_8_8_8")
    with pytest.raises(ConfigError, match="instance norm"):
        MobileResnetSupernet(norm="batch")


def test_supernet_gradients_reach_only_the_used_slices():
    supernet = MobileResnetSupernet(max_arch=TINY_MAX, n_blocks=3)
    supernet(torch.randn(1, 3, 16, 16), "4_4_4_4_4_4_4_4").mean().backward()
    grad = supernet.stem[1].weight.grad
    assert grad[:4].abs().sum() > 0 and grad[4:].abs().sum() == 0


def test_family_search_spaces_are_the_references():
    cyclegan = get_family("cyclegan")
    space = cyclegan.search_space(cyclegan.options())
    assert str(Arch.largest(space)) == "64_64_64_64_64_64_64_64" and str(Arch.smallest(space)) == "16_16_16_16_16_16_16_16"
    assert space[0] == (64, 48, 32, 24, 16)  # channels-64-cycleGAN
    pix2pix = get_family("pix2pix")
    assert pix2pix.search_space(pix2pix.options())[0] == (64, 56, 48, 40, 32, 24, 16)  # channels-64-pix2pix
    with pytest.raises(ConfigError, match="outside the run's search space"):
        cyclegan.check_arch("80_16_16_16_16_16_16_16", space)
