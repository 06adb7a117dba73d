"""Fréchet distance between Gaussians fitted to features, and the cached real statistics it compares to.

Statistics files are ``.npz`` with ``mu`` and ``sigma`` (the format of pytorch-fid and of
gan-compression's real_stat files), plus a ``provenance`` string saying what they were computed from.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import linalg

from engine.files import write_atomic

log = logging.getLogger(__name__)


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need at least 2 feature vectors, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2))."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics of different dimensions: {mu1.shape} vs {mu2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        # A singular product makes sqrtm warn; the check below handles that case.
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        # Singular products (few samples, many dimensions): regularise as pytorch-fid does.
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            log.warning("Fréchet distance: imaginary part %.3g in the covariance square root",
                        np.max(np.abs(covmean.imag)))
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """The symmetric square root of a covariance (eigenvalues below zero, rounding noise, taken as 0)."""
    values, vectors = np.linalg.eigh(np.asarray(sigma, dtype=np.float64))
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


@dataclass
class RealStatistics:
    """The real images' statistics a run scores against, with the factorisation every candidate's Fréchet
    distance reuses: ``root`` = sigma^(1/2), computed once (and stored in the statistics file)."""

    mu: np.ndarray
    sigma: np.ndarray
    root: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.root is None:
            self.root = psd_sqrt(self.sigma)
        self.trace = float(np.trace(self.sigma))


def frechet_to_real(features: np.ndarray, real: RealStatistics) -> float:
    """The Fréchet distance of the Gaussian fitted to ``features`` (N x d) to ``real``, without a general
    matrix square root: with R = sigma_real^(1/2) and X the centred features, Tr sqrt(S S_real) is the sum
    of the square roots of the eigenvalues of R S R = A^T A, A = X R / sqrt(N - 1), whose non-zero
    eigenvalues are those of the N x N matrix A A^T when N < d (a covariance of N samples has rank < N)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need at least 2 feature vectors, got shape {features.shape}")
    if features.shape[1] != real.mu.shape[0]:
        raise ValueError(f"statistics of different dimensions: {features.shape[1]} vs {real.mu.shape[0]}")
    mu = features.mean(axis=0)
    centred = features - mu
    n = len(features)
    a = centred @ real.root / np.sqrt(n - 1)
    gram = a @ a.T if n <= a.shape[1] else a.T @ a
    eigenvalues = np.clip(np.linalg.eigvalsh(gram), 0.0, None)
    diff = mu - real.mu
    trace_own = float(np.einsum("ij,ij->", centred, centred)) / (n - 1)
    return float(diff @ diff + trace_own + real.trace - 2.0 * np.sqrt(eigenvalues).sum())


def save_stats(path: Path, mu: np.ndarray, sigma: np.ndarray, provenance: dict,
               root: np.ndarray | None = None) -> None:
    """``mu``, ``sigma`` as pytorch-fid writes them (it ignores the other arrays), the provenance and, when
    given, ``sqrt_sigma`` (the factorisation scoring reuses)."""
    extra = {} if root is None else {"sqrt_sigma": root}

    def write(tmp: Path) -> None:
        with tmp.open("wb") as handle:  # a file object: savez adds no ".npz" to the temporary name
            np.savez(handle, mu=mu, sigma=sigma, provenance=json.dumps(provenance), **extra)

    write_atomic(path, write)


def load_stats(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return data["mu"], data["sigma"]


def load_real_statistics(path: Path) -> RealStatistics:
    """The statistics in ``path``; a file without ``sqrt_sigma`` (older, or pytorch-fid's) gets it added."""
    with np.load(path, allow_pickle=False) as data:
        mu, sigma = data["mu"], data["sigma"]
        root = data["sqrt_sigma"] if "sqrt_sigma" in data.files else None
        provenance = json.loads(str(data["provenance"])) if "provenance" in data.files else {}
    stats = RealStatistics(mu, sigma, root)
    if root is None:
        try:
            save_stats(path, mu, sigma, provenance, stats.root)
        except OSError as exc:  # a read-only cache still scores, only slower to open next time
            log.warning("could not store the factorised statistics in %s: %s", path, exc)
    return stats
