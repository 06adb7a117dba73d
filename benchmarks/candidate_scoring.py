"""Time to score one search candidate by a Fréchet distance, split into its parts, before and after the
factorised distance and the feature network in OpenVINO, and write the tables into docs/benchmarks.md.

    python benchmarks/candidate_scoring.py [--images 50] [--repeats 3] [--sizes 64 256] [--output docs/benchmarks.md]

Parts, measured in one run on this machine, interleaved (before, after, before, after, ...):
- features of ``--images`` generated images (128 px) by the download-free rFID network (480-d); FID's
  InceptionV3 (2048-d) is timed too when its weights are on disk;
- the distance at 2048 dimensions (FID's) and at 480 (rFID's): before, ``gaussian_stats`` +
  ``frechet_distance`` (``scipy.linalg.sqrtm`` of S1 S2); after, ``frechet_to_real`` (N x N eigenproblem),
  with the real statistics' factorisation (once per run, then stored with them) reported apart;
- a whole candidate at each of ``--sizes``: a CycleGAN supernet's sub-network generating ``--images`` images
  (in PyTorch, and in OpenVINO with the per-candidate export and compile included: the two the search chooses
  between), their features (PyTorch, then OpenVINO f32 as ``search.scoring_backend: auto``
  uses it, interleaved in the same rounds) and the distance, for FID's InceptionV3 and rFID's CNN. Without
  the FID weights on disk the InceptionV3 is timed with random weights (its cost does not depend on them)
  and the table says so. The OpenVINO compile, once per run, is reported apart.
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


def whole_candidate(size: int, images: int, repeats: int) -> dict:
    """Seconds per part of one scored candidate at ``size`` px, features in PyTorch and in OpenVINO."""
    from engine.metrics import RealStatistics, frechet_to_real, gaussian_stats, random_extractor
    from engine.metrics.feature_backend import OpenVINOFeatures, relative_difference
    from engine.metrics.features import inception_extractor
    from engine.metrics.inception import FIDInceptionV3, find_weights
    from engine.metrics.features import FeatureExtractor
    from engine.models import MobileResnetSupernet
    from engine.stages.evaluate import generate
    from engine.stages.generation import CandidateGenerator, GenerationChoice

    torch.manual_seed(0)
    supernet = MobileResnetSupernet(3, 3, max_arch="_".join(["64"] * 8)).eval()
    arch = "32_32_48_32_48_48_16_16"
    inputs = torch.rand(images, 3, size, size) * 2 - 1
    weights = find_weights(None)
    inception = (inception_extractor(weights) if weights is not None else
                 FeatureExtractor("inception", FIDInceptionV3().eval(), "InceptionV3 with random weights"))
    rows = {}
    for name, extractor in (("fid (InceptionV3, 2048-d)", inception), ("rfid (random CNN, 480-d)", random_extractor())):
        compile_s, compiled = _timed(lambda: OpenVINOFeatures(extractor.network, (3, size, size)))
        fast = type(extractor)(extractor.name, extractor.network, extractor.description, compiled)
        real = RealStatistics(*gaussian_stats(extractor(torch.rand(max(images, 64), 3, size, size) * 2 - 1)))
        generation, generation_before, before, after, distance, differences = [], [], [], [], [], []
        in_openvino = CandidateGenerator(supernet, torch.device("cpu"), GenerationChoice("openvino", "timed"))
        generation_openvino = []
        extractor(inputs[:2]), fast(inputs[:2]), in_openvino(arch, inputs[:2])  # warm-up
        for _ in range(repeats):
            model = lambda x: supernet(x, arch=arch)  # noqa: E731
            generation_before.append(_timed(lambda: generate(model, inputs, torch.device("cpu"), batch_size=64))[0])
            seconds, outputs = _timed(lambda: generate(model, inputs, torch.device("cpu")))
            generation.append(seconds)
            # The candidate's sub-network exported and compiled by OpenVINO, set-up included (once per candidate).
            seconds, compiled_outputs = _timed(lambda: in_openvino(arch, inputs))
            generation_openvino.append(seconds)
            differences.append(relative_difference(compiled_outputs, outputs))
            seconds, exact = _timed(lambda: extractor(outputs))
            before.append(seconds)
            seconds, quick = _timed(lambda: fast(outputs))
            after.append(seconds)
            seconds, score = _timed(lambda: frechet_to_real(quick, real))
            distance.append(seconds)
            differences.append(abs(score - frechet_to_real(exact, real)) / abs(frechet_to_real(exact, real)))
            differences.append(relative_difference(quick, exact))
        rows[name] = {"generation_s": statistics.median(generation),
                      "generation_openvino_s": statistics.median(generation_openvino),
                      "generation_before_s": statistics.median(generation_before), "pytorch_s": statistics.median(before),
                      "openvino_s": statistics.median(after), "distance_s": statistics.median(distance),
                      "compile_s": compile_s, "max_relative_difference": max(differences)}
    return {"size": size, "rows": rows, "inception_weights": weights is not None}


def render_candidates(info: dict, candidates: list[dict]) -> str:
    lines = ["", f"A whole candidate: a CycleGAN sub-network (32_32_48_32_48_48_16_16 of a 64-wide supernet) generating "
             f"{info['images']} images, their features, the distance; features in PyTorch and in OpenVINO "
             "f32 timed in the same rounds; generation before in PyTorch in batches of 64, after in PyTorch in batches "
             "sized to the image (`engine.stages.evaluate.batch_size_for`) and in OpenVINO (the candidate's "
             "sub-network exported and compiled, set-up included: paid per candidate); the candidate after takes the "
             "faster generation, which the search's `auto` picks from a probe as it starts (`engine.stages.generation`). "
             "The features' OpenVINO compile is paid once per run and image size.", "",
             "| size | metric | generation, before | generation, PyTorch | generation, OpenVINO | features, PyTorch | "
             "features, OpenVINO | distance | candidate before | candidate after | speed-up | OpenVINO compile (once) | "
             "largest relative difference (images, features, score) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for candidate in candidates:
        for name, row in candidate["rows"].items():
            before = row["generation_before_s"] + row["pytorch_s"] + row["distance_s"]
            after = min(row["generation_s"], row["generation_openvino_s"]) + row["openvino_s"] + row["distance_s"]
            lines.append(f"| {candidate['size']} px | {name} | {row['generation_before_s']:.2f} s | {row['generation_s']:.2f} s "
                         f"| {row['generation_openvino_s']:.2f} s | {row['pytorch_s']:.2f} s "
                         f"| {row['openvino_s']:.2f} s | {row['distance_s'] * 1000:.0f} ms | {before:.2f} s | {after:.2f} s "
                         f"| {before / after:.2f}x | {row['compile_s']:.1f} s | {row['max_relative_difference']:.1e} |")
    if not all(c["inception_weights"] for c in candidates):
        lines += ["", "The FID weights were not on disk: InceptionV3 was timed with random weights (same network, same "
                  "cost; its features and distance are not FID's)."]
    return "\n".join(lines) + "\n"


def render(info: dict, splits: list[dict], features: dict) -> str:
    lines = ["## Scoring one search candidate", "",
             f"Measured by `python benchmarks/candidate_scoring.py --images {info['images']} --repeats "
             f"{info['repeats']} --sizes {' '.join(map(str, info['sizes']))}` on {info['platform']}, {info['cores']} CPU cores, torch {info['torch']}; "
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
    parser.add_argument("--sizes", type=int, nargs="*", default=[64, 256])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    splits = [distance_split(dim, args.images, args.repeats, rng) for dim in (2048, 480)]
    features = feature_times(args.images, args.repeats)
    info = {"images": args.images, "repeats": args.repeats, "platform": platform.platform(),
            "cores": os.cpu_count(), "torch": torch.__version__, "sizes": args.sizes}
    candidates = [whole_candidate(size, args.images, args.repeats) for size in args.sizes]
    text = render(info, splits, features) + render_candidates(info, candidates)
    publish(args.output, "candidate-scoring", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
