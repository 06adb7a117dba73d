"""Where a run's feature network runs: OpenVINO only where it matches PyTorch on real images, features and
score alike; anything else is said in one line and PyTorch is used."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import openvino_runtime
from engine.metrics import RealStatistics, frechet_to_real, gaussian_stats, random_extractor
from engine.metrics.feature_backend import FEATURE_TOLERANCE, OpenVINOFeatures, choose_backend

needs_openvino = pytest.mark.skipif(not openvino_runtime.available(), reason=openvino_runtime.MISSING)


def _images(count: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _real(extractor) -> RealStatistics:
    return RealStatistics(*gaussian_stats(extractor(_images(40, seed=1))))


@needs_openvino
def test_openvino_features_match_pytorch_and_are_used():
    extractor = random_extractor()
    real = _real(extractor)
    chosen, choice = choose_backend(extractor, "auto", _images(8), real, "cpu")
    assert choice.backend == "openvino" and chosen.backend == "openvino"
    assert choice.feature_difference <= FEATURE_TOLERANCE and choice.score_difference <= 1e-4
    assert "OpenVINO" in choice.note and "checked against PyTorch on 8 real images" in choice.note
    # Every batch size, one compile: the run's candidates score the same in both backends.
    images = _images(13, seed=3)
    fast, exact = chosen(images, batch_size=5), extractor(images)
    assert np.abs(fast - exact).max() / np.abs(exact).max() <= FEATURE_TOLERANCE
    assert frechet_to_real(fast, real) == pytest.approx(frechet_to_real(exact, real), rel=1e-4)
    # Another image size than the compiled one runs in PyTorch, exactly.
    other = _images(3, size=48)
    assert np.array_equal(chosen(other), extractor(other))


@needs_openvino
def test_a_backend_that_drifts_is_refused_in_one_line_and_pytorch_used():
    class Drifting(OpenVINOFeatures):
        def __call__(self, batch):
            return super().__call__(batch) * 1.01

    extractor = random_extractor()
    chosen, choice = choose_backend(extractor, "auto", _images(8), _real(extractor), "cpu", compile_features=Drifting)
    assert choice.backend == "pytorch" and chosen.compiled is None
    assert "\n" not in choice.note and "differs from it on 8 real images" in choice.note
    assert choice.feature_difference == pytest.approx(0.01, rel=0.01)


def test_a_backend_that_cannot_compile_is_said_and_pytorch_used():
    def broken(network, shape, threads):
        raise RuntimeError("unsupported operation aten::frobnicate")

    if not openvino_runtime.available():
        pytest.skip(openvino_runtime.MISSING)
    extractor = random_extractor()
    chosen, choice = choose_backend(extractor, "openvino", _images(4), None, "cpu", compile_features=broken)
    assert chosen.compiled is None and choice.backend == "pytorch"
    assert "could not compile the random network (RuntimeError: unsupported operation aten::frobnicate)" in choice.note


def test_pytorch_forced_or_off_the_cpu_never_compiles():
    def never(*_):
        raise AssertionError("compiled although PyTorch was asked for")

    extractor = random_extractor()
    for requested, device, words in (("pytorch", "cpu", "scoring_backend: pytorch"), ("auto", "cuda:0", "on cuda:0")):
        chosen, choice = choose_backend(extractor, requested, _images(2), None, device, compile_features=never)
        assert chosen.compiled is None and choice.backend == "pytorch" and words in choice.note
