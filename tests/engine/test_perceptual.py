"""The perceptual loss: weights found on disk only, in torchvision's layout; the loss of pix2pixHD."""

import pytest
import torch

from engine import perceptual


def test_without_weights_the_loss_is_said_to_be_off(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GCW_VGG_WEIGHTS", raising=False)
    assert perceptual.find_weights() is None
    assert "training without the perceptual loss" in perceptual.describe_missing()


def test_weights_in_torchvisions_layout_load_and_the_loss_weighs_five_taps(tmp_path, monkeypatch):
    torch.manual_seed(0)
    full = perceptual.VGG19Features()
    state = {k: v for k, v in full.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision's file holds the classifier too: ignored
    path = tmp_path / "vgg19-test.pth"
    torch.save(state, path)
    monkeypatch.setenv("GCW_VGG_WEIGHTS", str(path))
    assert perceptual.find_weights() == path
    loss = perceptual.PerceptualLoss(path)
    assert all(not p.requires_grad for p in loss.parameters())
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loss(x, x).item() == 0
    y = torch.rand(1, 3, 32, 32) * 2 - 1
    features_x, features_y = loss.vgg(x), loss.vgg(y)
    assert [f.shape[1] for f in features_x] == [64, 128, 256, 512, 512]
    expected = sum(w * torch.nn.functional.l1_loss(a, b) for (_, w), a, b in zip(perceptual.TAPS, features_x, features_y))
    assert loss(x, y).item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(full.state_dict()) == {f"features.{i}.{p}" for i in (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28)
                                      for p in ("weight", "bias")}  # torchvision's indices up to relu5_1
