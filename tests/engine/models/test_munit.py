"""The MUNIT generator and its compressed student against the paper's figures (../shared/paper.md:
edges2shoes, 256x256, ngf 64, 2 downsamplings, 4 residual blocks, style dim 8, MLP dim 256)."""

import pytest
import torch

from engine.models import build_generator
from engine.models.munit import MobileMUNITGenerator, MUNITGenerator
from engine.profile import count_macs, profile_model

IMAGE = torch.zeros(1, 3, 256, 256)
STYLE = torch.zeros(1, 8, 1, 1)


def test_the_teacher_has_the_papers_macs_per_part_and_parameters():
    teacher = MUNITGenerator().eval()
    # Counted as the paper counts it: content encoder + style encoder + decoder (the image's own style).
    whole = profile_model(teacher, (IMAGE,))
    assert whole.macs == pytest.approx(77.3e9, rel=1e-3) and whole.params == pytest.approx(15.0e6, rel=2e-3)
    assert count_macs(teacher.enc_content, IMAGE) == pytest.approx(24.3e9, rel=3e-3)
    assert count_macs(teacher.enc_style, IMAGE) == pytest.approx(6.3e9, rel=1e-2)
    # Given a style code, the style encoder does not run: the paper's 71.05G without it.
    assert profile_model(teacher, (IMAGE, STYLE)).macs == pytest.approx(71.05e9, rel=1e-3)


def test_the_released_student_config_has_the_papers_figures():
    student = build_generator("mobile_munit", arch=(16, 16, 16, 24, 56, 16, 40, 40, 32, 24)).eval()
    profile = profile_model(student, (IMAGE,))
    assert profile.macs == pytest.approx(2.63e9, rel=5e-3) and profile.params == pytest.approx(1.10e6, rel=5e-3)
    mlp = sum(p.numel() for p in student.mlp.parameters())
    assert 0.4 < mlp / profile.params < 0.6  # the paper: about half of the fast model's parameters


def test_a_style_code_changes_the_image_and_the_names_are_nvlabs():
    torch.manual_seed(0)
    teacher = MUNITGenerator(ngf=8, mlp_dim=16).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        a, features = teacher.forward_with_features(x, torch.randn(2, 8, 1, 1))
        b = teacher(x, torch.randn(2, 8, 1, 1))
        own = teacher(x)
    assert a.shape == b.shape == own.shape == (2, 3, 32, 32) and not torch.allclose(a, b)
    assert features["content"].shape == (2, 32, 8, 8)
    names = set(teacher.state_dict())
    assert {"enc_style.model.0.conv.weight", "enc_style.model.6.weight", "enc_content.model.3.model.0.model.1.conv.weight",
            "dec.model.0.model.3.model.0.conv.weight", "dec.model.2.norm.gamma", "dec.model.5.conv.weight",
            "mlp.model.2.fc.weight"} <= names
    student = MobileMUNITGenerator((8,) * 10, mlp_dim=16, style_encoder=False).eval()
    assert "enc_content.model.3.model.0.model.0.conv.conv.0.weight" in student.state_dict()  # separable
    with pytest.raises(ValueError, match="no style encoder"):
        student(x)
    with pytest.raises(ValueError, match="10 widths"):
        MobileMUNITGenerator((8,) * 9)


@pytest.mark.parametrize("arch", [(8, 8, 8, 8, 8, 8, 8, 8, 8, 8), (4, 8, 6, 4, 2, 8, 6, 2, 8, 4)])
def test_an_extracted_sub_network_is_the_supernet_at_that_arch(arch):
    from engine.models.munit import MobileMUNITSupernet

    torch.manual_seed(1)
    supernet = MobileMUNITSupernet((8,) * 10, mlp_dim=16).eval()
    with torch.no_grad():
        for p in supernet.parameters():
            p.normal_(0, 0.3)
    subnet = supernet.extract(arch).eval()
    x, z = torch.rand(2, 3, 32, 32) * 2 - 1, torch.randn(2, 8, 1, 1)
    with torch.no_grad():
        expected, expected_features = supernet.forward_with_features(x, z, arch=arch)
        got, got_features = subnet.forward_with_features(x, z)
        torch.testing.assert_close(subnet(x), supernet(x, arch=arch), rtol=0, atol=1e-5)  # own style too
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(got_features["content"], expected_features["content"], rtol=0, atol=1e-5)
