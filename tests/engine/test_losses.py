import random

import pytest
import torch

from engine.losses import FeatureMappings, GANLoss, ImagePool, distill_loss


def test_lsgan_is_mse_to_one_or_zero():
    loss = GANLoss("lsgan")
    prediction = torch.tensor([[0.5, 1.5]])
    assert loss(prediction, True).item() == pytest.approx((0.25 + 0.25) / 2)
    assert loss(prediction, False).item() == pytest.approx((0.25 + 2.25) / 2)


def test_vanilla_is_binary_cross_entropy_on_logits():
    loss = GANLoss("vanilla")
    assert loss(torch.zeros(3), True).item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    assert loss(torch.full((2,), 20.0), True).item() < 1e-6
    with pytest.raises(ValueError, match="gan_mode"):
        GANLoss("wgan")


def test_image_pool_returns_old_images_once_full():
    pool = ImagePool(size=2, rng=random.Random(0))
    first = pool.query(torch.zeros(2, 1, 1, 1))
    assert torch.equal(first, torch.zeros(2, 1, 1, 1))
    mixed = [pool.query(torch.full((1, 1, 1, 1), float(i + 1))).item() for i in range(20)]
    assert 0.0 in mixed  # some answers are images from the pool
    assert any(v > 0 for v in mixed)
    state = pool.state_dict()
    other = ImagePool(size=2)
    other.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(other.images, pool.images))


def test_distill_loss_is_zero_for_mapped_features_that_match():
    mappings = FeatureMappings([4, 4], [4, 4])
    with torch.no_grad():
        for conv in mappings.maps:
            conv.weight.copy_(torch.eye(4)[:, :, None, None])
            conv.bias.zero_()
    features = [torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)]
    assert distill_loss(mappings, features, features).item() == pytest.approx(0.0, abs=1e-10)
    shifted = [f + 1 for f in features]
    assert distill_loss(mappings, features, shifted).item() == pytest.approx(2.0)  # MSE 1 per layer


def test_mappings_accept_narrower_sub_network_features():
    mappings = FeatureMappings([8], [16])
    out = mappings([torch.randn(1, 3, 5, 5)])
    assert out[0].shape == (1, 16, 5, 5)
    distill_loss(mappings, [torch.randn(1, 3, 5, 5)], [torch.randn(1, 16, 5, 5)]).backward()
    grad = mappings.maps[0].weight.grad
    assert grad[:, :3].abs().sum() > 0 and grad[:, 3:].abs().sum() == 0
