"""Equal to the paper's code: outputs that gan-compression itself computed (``tests/fixtures/``; how it
was made is in ``tests/fixtures/README.md``) are reproduced by our teacher, our supernet at the same
config string, and our GAN losses."""

from pathlib import Path

import pytest
import torch

from engine.families import get_family
from engine.losses import GANLoss
from engine.models.elastic import subnet_of

ORACLE = torch.load(Path(__file__).resolve().parents[2] / "fixtures" / "gan_compression_oracle.pt", weights_only=True)
#: float32 sums taken in another order (another thread count, another CPU) move these outputs by up to ~3e-5;
#: a different layer or norm moves them by tenths.
ATOL = 1e-4


def test_our_teacher_computes_the_reference_resnet_generator(tmp_path):
    family = get_family("cyclegan")
    options = family.options({"ngf": 8, "n_blocks": 9})
    teacher = family.build_teacher(options).eval()
    teacher.load_state_dict(family.teacher_state(ORACLE["teacher"], tmp_path / "oracle.pth", options), strict=True)
    with torch.no_grad():
        out = teacher(ORACLE["input"])  # inputs beyond [-1, 1]: both clamp
    torch.testing.assert_close(out, ORACLE["teacher_output"], rtol=0, atol=ATOL)


def test_our_supernet_computes_the_reference_supernet_at_a_config_string():
    family = get_family("cyclegan")
    options = family.options({"ngf": 8, "n_blocks": 9})
    supernet = family.build_supernet(options, [(8, 6, 4)] * 8).eval()
    ours = supernet.state_dict()
    # Parameter names differ (ours are named by role), order and shapes are the reference's.
    assert [tuple(v.shape) for v in ORACLE["supernet"].values()] == [tuple(v.shape) for v in ours.values()]
    supernet.load_state_dict(dict(zip(ours, ORACLE["supernet"].values())), strict=True)
    arch = family.parse_arch(ORACLE["config"])
    with torch.no_grad():
        out = supernet(ORACLE["input"], arch)
        extracted = subnet_of(supernet, arch).eval()(ORACLE["input"])
    torch.testing.assert_close(out, ORACLE["supernet_output"], rtol=0, atol=ATOL)
    torch.testing.assert_close(extracted, ORACLE["supernet_output"], rtol=0, atol=ATOL)


@pytest.mark.parametrize("mode", ["lsgan", "vanilla", "hinge"])
def test_our_gan_losses_are_the_references(mode):
    criterion, prediction = GANLoss(mode), ORACLE["predictions"]
    expected = ORACLE["gan_losses"][mode]
    torch.testing.assert_close(criterion(prediction, True), expected["d_real"])
    torch.testing.assert_close(criterion(prediction, False), expected["d_fake"])
    torch.testing.assert_close(criterion(prediction, True, for_discriminator=False), expected["g"])
