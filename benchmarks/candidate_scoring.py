"""Time to score one search candidate by a Fréchet distance, split into its parts, before and after the
factorised distance, and write the table into docs/benchmarks.md.

    python benchmarks/candidate_scoring.py [--images 50] [--repeats 3] [--output docs/benchmarks.md]

Parts, measured in one run on this machine, interleaved (before, after, before, after, ...):
- features of ``--images`` generated images (128 px) by the download-free rFID network (480-d); FID's
  InceptionV3 (2048-d) is timed too when its weights are on disk;
- the distance at 2048 dimensions (FID's) and at 480 (rFID's): before, ``gaussian_stats`` +
  ``frechet_distance`` (``scipy.linalg.sqrtm`` of S1 S2); after, ``frechet_to_real`` (N x N eigenproblem),
  with the real statistics' factorisation (once per run, then stored with them) reported apart.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import publish  # noqa: E402


def _timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def distance_split(dim: int, images: int, repeats: int, rng: np.random.Generator) -> dict:
    from engine.metrics import RealStatistics, frechet_distance, frechet_to_real, gaussian_stats

    real_mu, real_sigma = gaussian_stats(rng.normal(size=(3 * dim, dim)) @ rng.normal(size=(dim, dim)) / np.sqrt(dim))
    factorise, real = _timed(lambda: RealStatistics(real_mu, real_sigma))
    before, after, values = [], [], []
    for _ in range(repeats):
        features = rng.normal(size=(images, dim)) + 0.1
        seconds, old = _timed(lambda: frechet_distance(*gaussian_stats(features), real_mu, real_sigma))
        before.append(seconds)
        seconds, new = _timed(lambda: frechet_to_real(features, real))
        after.append(seconds)
        values.append(abs(new - old) / abs(old))
    return {"dim": dim, "before_s": statistics.median(before), "after_s": statistics.median(after),
            "factorise_once_s": factorise, "max_relative_difference": max(values)}


def feature_times(images: int, repeats: int) -> dict:
    from engine.metrics import random_extractor
    from engine.metrics.features import inception_extractor
    from engine.metrics.inception import find_weights

    batch = torch.rand(images, 3, 128, 128) * 2 - 1
    extractors = {"rfid (random CNN, 480-d)": random_extractor()}
    weights = find_weights(None)
    if weights is not None:
        extractors["fid (InceptionV3, 2048-d)"] = inception_extractor(weights)
    times = {}
    for name, extractor in extractors.items():
        extractor(batch[:2])  # warm-up
        times[name] = statistics.median(_timed(lambda: extractor(batch))[0] for _ in range(repeats))
    return {"seconds": times, "inception_found": weights is not None}


def render(info: dict, splits: list[dict], features: dict) -> str:
    lines = ["## Scoring one search candidate", "",
             f"Measured by `python benchmarks/candidate_scoring.py --images {info['images']} --repeats "
             f"{info['repeats']}` on {info['platform']}, {info['cores']} CPU cores, torch {info['torch']}; "
             "median of the repeats, before and after timed interleaved in the same run.", "",
             "| part | before | after | speed-up | largest relative difference |", "|---|---|---|---|---|"]
    for split in splits:
        lines.append(f"| Fréchet distance, {split['dim']}-d, {info['images']} images | {split['before_s'] * 1000:.0f} ms "
                     f"| {split['after_s'] * 1000:.1f} ms | {split['before_s'] / split['after_s']:.0f}x "
                     f"| {split['max_relative_difference']:.1e} |")
    for split in splits:
        lines.append(f"| factorisation of the real statistics, {split['dim']}-d (once per dataset, stored) | - "
                     f"| {split['factorise_once_s'] * 1000:.0f} ms | | |")
    for name, seconds in features["seconds"].items():
        lines.append(f"| features of {info['images']} images at 128 px, {name} | {seconds * 1000:.0f} ms "
                     f"| {seconds * 1000:.0f} ms | (unchanged) | |")
    if not features["inception_found"]:
        lines += ["", "InceptionV3 weights were not on disk, so FID's feature time is not in the table; its "
                  "Fréchet part is (2048-d)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    splits = [distance_split(dim, args.images, args.repeats, rng) for dim in (2048, 480)]
    features = feature_times(args.images, args.repeats)
    info = {"images": args.images, "repeats": args.repeats, "platform": platform.platform(),
            "cores": os.cpu_count(), "torch": torch.__version__}
    text = render(info, splits, features)
    publish(args.output, "candidate-scoring", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
