import numpy as np
import pytest
import torch

from engine.metrics import frechet_distance, gaussian_stats, load_stats, psnr, random_extractor, save_stats, ssim


def test_one_dimensional_closed_form():
    # N(m1, s1) vs N(m2, s2): (m1 - m2)^2 + s1 + s2 - 2 sqrt(s1 s2)
    value = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]]))
    assert value == pytest.approx(4.0 + 4.0 + 9.0 - 2 * 6.0)


def test_diagonal_covariances_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    d1, d2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(d1) - np.sqrt(d2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(d1), mu2, np.diag(d2)) == pytest.approx(expected)


def test_identical_distributions_are_at_distance_zero_even_when_singular():
    features = np.random.default_rng(0).normal(size=(10, 30))  # fewer samples than dimensions
    mu, sigma = gaussian_stats(features)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6)


def test_stats_files_are_pytorch_fid_compatible(tmp_path):
    mu, sigma = np.arange(3.0), np.eye(3)
    save_stats(tmp_path / "real.npz", mu, sigma, {"extractor": "test"})
    with np.load(tmp_path / "real.npz") as data:
        assert set(data.files) >= {"mu", "sigma"}
    loaded_mu, loaded_sigma = load_stats(tmp_path / "real.npz")
    assert np.array_equal(loaded_mu, mu) and np.array_equal(loaded_sigma, sigma)


def test_psnr_and_ssim():
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    assert ssim(images, images) == pytest.approx(1.0, abs=1e-4)
    assert psnr(images, images) > 90
    noisy = (images + 0.1 * torch.randn_like(images)).clamp(-1, 1)
    assert 15 < psnr(noisy, images) < 40
    assert ssim(noisy, images) < 0.99
    # PSNR of a constant error of 0.1 (in [0, 1] units): 20 dB.
    assert psnr(torch.full((1, 1, 4, 4), 0.2) - 1, torch.full((1, 1, 4, 4), 0.0) - 1) == pytest.approx(20.0, abs=1e-4)


def test_random_features_are_fixed_and_tell_distributions_apart():
    extractor_a, extractor_b = random_extractor(seed=0), random_extractor(seed=0)
    generator = torch.Generator().manual_seed(0)
    smooth = torch.rand(40, 3, 1, 1, generator=generator).expand(40, 3, 16, 16) * 2 - 1
    noise = torch.rand(40, 3, 16, 16, generator=generator) * 2 - 1
    assert np.array_equal(extractor_a(smooth), extractor_b(smooth))
    smooth_2 = torch.rand(40, 3, 1, 1, generator=generator).expand(40, 3, 16, 16) * 2 - 1
    same = frechet_distance(*gaussian_stats(extractor_a(smooth)), *gaussian_stats(extractor_a(smooth_2)))
    different = frechet_distance(*gaussian_stats(extractor_a(smooth)), *gaussian_stats(extractor_a(noise)))
    assert different > 5 * same


@pytest.mark.parametrize("n, d, real_rank", [(40, 64, 64), (200, 32, 32), (30, 64, 12), (64, 64, 64)])
def test_the_factorised_distance_equals_the_direct_formula(n, d, real_rank):
    """Fewer samples than dimensions (a candidate's 50 images against 2048 features), more, and a
    low-rank real covariance: the same value as ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2))."""
    from engine.metrics import RealStatistics, frechet_to_real

    rng = np.random.default_rng(n * d + real_rank)
    mixing = rng.normal(size=(real_rank, d))
    real_mu, real_sigma = gaussian_stats(rng.normal(size=(max(3 * d, 200), real_rank)) @ mixing + 0.5)
    features = rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, size=d) + rng.normal(size=d)
    direct = frechet_distance(*gaussian_stats(features), real_mu, real_sigma)
    assert frechet_to_real(features, RealStatistics(real_mu, real_sigma)) == pytest.approx(direct, rel=1e-6)


def test_the_factorisation_is_stored_with_the_statistics_and_read_back(tmp_path):
    from engine.metrics import RealStatistics, frechet_to_real, load_real_statistics

    rng = np.random.default_rng(3)
    mu, sigma = gaussian_stats(rng.normal(size=(100, 16)))
    save_stats(tmp_path / "real.npz", mu, sigma, {"extractor": "test"})  # as pytorch-fid's: no root
    stats = load_real_statistics(tmp_path / "real.npz")
    with np.load(tmp_path / "real.npz") as data:
        assert np.allclose(data["sqrt_sigma"] @ data["sqrt_sigma"], sigma)  # added on first use
    again = load_real_statistics(tmp_path / "real.npz")
    features = rng.normal(size=(20, 16))
    assert frechet_to_real(features, again) == frechet_to_real(features, stats) \
        == pytest.approx(frechet_to_real(features, RealStatistics(mu, sigma)))
