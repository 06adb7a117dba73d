"""Search candidates scored by this program and by the paper's own code, side by side: candidates per second
at an identical FID, and the section `scoring-vs-reference` of docs/benchmarks.md.

    python benchmarks/reference_scoring.py --reference REF [--images 50] [--rounds 3] [--sizes 64 256]

``REF`` is a checkout of mit-han-lab/gan-compression (the reference; none of its code is in this repository). Its
side runs in a process of its own, as its evolution search scores a candidate (``EvolutionSearcher.evaluate``):
the CycleGAN supernet at the candidate's config generates the images one by one, ``util.tensor2im`` makes them
8-bit, and its ``metric.fid_score`` takes pytorch-fid's InceptionV3 features in batches of one and the Fréchet
distance to the real statistics (the four lines of its ``metric.get_fid`` are repeated here: importing its
``metric`` package would import its segmenters too). Ours runs in this process as the search does
(``engine.stages.search``: the candidate's images generated on the backend ``search.scoring_backend: auto``
chooses once per run after its parity check and timing, ``engine.stages.generation``, then the run's ``Scorer``,
its feature network on the backend the same setting chooses after its own parity check).

Both sides get the same supernet weights (ours, loaded into the reference's supernet in its parameter order, as
tests/engine/families/test_reference_oracle.py does), the same input images and real statistics, and the same
InceptionV3 weights: the FID weights file if it is on disk, else a random InceptionV3 whose BatchNorm statistics
are set on random images (the network and its cost are FID's; its numbers are not), written where both sides
look for it. Rounds alternate which side goes first; each side's models are loaded and warmed up before it is
timed. Two shims let the reference run beside today's torch, in its process only: ``torchvision`` is a stand-in
whose ``inception_v3`` and Inception blocks are this program's (``engine.metrics.inception``, the same layers
and parameter names), ``ConvTranspose2d``'s output padding takes its old arguments, and OpenCV (which its ``fid_score`` imports to read
image files, never called when it scores generated images) is an empty module where it is not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import publish  # noqa: E402

#: Sub-networks of the 64-wide supernet scored one after the other, as a search scores its candidates: the first
#: is candidate_scoring.py's, the others the same widths in other places (3.8-5.0 G MACs at 256 px).
ARCHS = ((32, 32, 48, 32, 48, 48, 16, 16), (32, 48, 32, 32, 48, 32, 16, 16), (48, 32, 32, 48, 32, 48, 16, 16),
         (32, 32, 32, 48, 48, 48, 16, 16))
WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"


def _supernet():
    from engine.families import get_family

    family = get_family("cyclegan")
    options = family.options({"ngf": 64, "n_blocks": 9})
    return family, options, family.build_supernet(options, family.search_space(options)).eval()


def prepare(folder: Path, sizes: list[int], images: int) -> dict:
    """The shared inputs: supernet weights, Inception weights, images and real statistics per size."""
    from engine.metrics.inception import FIDInceptionV3, find_weights, load_fid_inception

    torch.manual_seed(0)
    _, _, supernet = _supernet()
    torch.save(list(supernet.state_dict().values()), folder / "supernet.pt")
    (folder / "hub" / "checkpoints").mkdir(parents=True)
    found = find_weights(None)
    if found is not None:
        inception = load_fid_inception(found)
        torch.save(torch.load(found, weights_only=True), folder / "hub" / "checkpoints" / WEIGHTS_NAME)
    else:
        inception = FIDInceptionV3()
        for module in inception.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = None  # running statistics: the mean over the calibration batch
        inception.train()
        with torch.no_grad():
            inception(torch.rand(16, 3, 128, 128) * 2 - 1)
        inception.eval()
        torch.save(inception.state_dict(), folder / "hub" / "checkpoints" / WEIGHTS_NAME)
    for size in sizes:
        inputs = torch.rand(images, 3, size, size) * 2 - 1
        with torch.no_grad():
            real = inception(torch.rand(max(images, 64), 3, size, size) * 2 - 1).double().numpy()
        torch.save(inputs, folder / f"inputs-{size}.pt")
        np.savez(folder / f"real-{size}.npz", mu=real.mean(0), sigma=np.cov(real, rowvar=False))
    return {"inception_weights": found is not None}


class Ours:
    """The search's scoring of one candidate, set up once per size (the feature network compiled, as a run does)."""

    def __init__(self, folder: Path, size: int) -> None:
        from engine.metrics import RealStatistics
        from engine.metrics.feature_backend import choose_backend
        from engine.metrics.features import inception_extractor
        from engine.stages.evaluate import Scorer, to_8bit

        from engine.arch import Arch
        from engine.stages.generation import CandidateGenerator, choose_generation

        self.family, self.options, self.supernet = _supernet()
        self.supernet.load_state_dict(dict(zip(self.supernet.state_dict(), torch.load(folder / "supernet.pt"))))
        self.inputs = torch.load(folder / f"inputs-{size}.pt")
        stats = np.load(folder / f"real-{size}.npz")
        real = RealStatistics(stats["mu"], stats["sigma"])
        extractor = inception_extractor(folder / "hub" / "checkpoints" / WEIGHTS_NAME)
        started = time.perf_counter()
        extractor, self.backend = choose_backend(extractor, "auto", to_8bit(self.inputs[:8]), real, "cpu")
        self.setup_s = time.perf_counter() - started
        self.scorer = Scorer("fid", False, False, self.inputs, extractor, real)
        # Where the candidates' images are generated, decided as the search decides it (its probe: the space's
        # middle sub-network on the first 8 images).
        started = time.perf_counter()
        self.generation = choose_generation(self.supernet, Arch.middle(self.family.search_space(self.options)),
                                            self.inputs[:8], (), "auto", torch.device("cpu"), self.scorer.primary,
                                            len(self.inputs))
        self.generation_setup_s = time.perf_counter() - started
        self.generate = CandidateGenerator(self.supernet, torch.device("cpu"), self.generation)
        self.archs = [self.family.parse_arch("_".join(map(str, arch))) for arch in ARCHS]
        self.candidates(self.archs[:1])  # warm-up

    def candidates(self, archs: list | None = None) -> dict:
        """The candidates scored in turn as the search's ``Candidates.metrics_of`` scores them: each one's
        successor set up (on its own thread, where generation is OpenVINO's) while its images are scored. Times
        per candidate, the mean over them."""
        archs = archs or self.archs
        generation = scoring = 0.0
        fids = []
        for number, arch in enumerate(archs):
            started = time.perf_counter()
            outputs = self.generate(arch, self.inputs)
            generated = time.perf_counter()
            if number + 1 < len(archs):
                self.generate.prepare(archs[number + 1], (self.inputs,))
            fids.append(self.scorer.all(outputs)["fid"])
            generation, scoring = generation + generated - started, scoring + time.perf_counter() - generated
        return {"generation_s": generation / len(archs), "scoring_s": scoring / len(archs), "fids": fids}


def reference_child(reference: Path, folder: Path, size: int) -> None:
    """The reference's side (its own process): load, warm up, score the candidate once, print the times."""
    from engine.metrics import inception as ours

    class InceptionE(ours.InceptionE):
        def __init__(self, in_channels, conv_block=None):
            super().__init__(in_channels, max_pool=False)

    vision = types.ModuleType("torchvision")
    vision.models = types.SimpleNamespace(
        inception_v3=lambda **_: ours.FIDInceptionV3(),
        inception=types.SimpleNamespace(InceptionA=ours.InceptionA, InceptionC=ours.InceptionC, InceptionE=InceptionE))
    sys.modules["torchvision"] = vision
    transpose = torch.nn.modules.conv._ConvTransposeNd
    padding = transpose._output_padding
    transpose._output_padding = lambda self, x, output_size, stride, pad, kernel, num_spatial_dims=2, dilation=None: \
        padding(self, x, output_size, stride, pad, kernel, num_spatial_dims, dilation)
    try:
        import cv2  # noqa: F401 (only whether it is there)
    except ImportError:  # fid_score reads image files with it; scoring generated images does not
        sys.modules["cv2"] = types.SimpleNamespace(imread=None)
    metric = types.ModuleType("metric")  # its package without its __init__ (which imports the segmenters)
    metric.__path__ = [str(reference / "metric")]
    sys.modules["metric"] = metric
    sys.path.insert(0, str(reference))
    import functools

    from metric.fid_score import _compute_statistics_of_ims, calculate_frechet_distance
    from metric.inception import InceptionV3
    from models.modules.resnet_architecture.super_mobile_resnet_generator import SuperMobileResnetGenerator
    from utils import util

    norm = functools.partial(torch.nn.InstanceNorm2d, affine=False, track_running_stats=False)
    net = SuperMobileResnetGenerator(3, 3, ngf=64, norm_layer=norm, dropout_rate=0, n_blocks=9).eval()
    net.load_state_dict(dict(zip(net.state_dict(), torch.load(folder / "supernet.pt"))))
    inception = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    npz = np.load(folder / f"real-{size}.npz")
    inputs = torch.load(folder / f"inputs-{size}.pt")

    def candidate(arch: tuple[int, ...], count: int) -> tuple[float, float, float]:
        net.configs = {"channels": list(arch)}  # as its evaluate hands each child's config to its model
        started = time.perf_counter()
        fakes = []
        with torch.no_grad():
            for i in range(count):  # its dataloader: one image a batch
                fakes.append(net(inputs[i:i + 1]).cpu())
        generated = time.perf_counter()
        images = util.tensor2im(torch.cat(fakes, dim=0)).astype(float)  # metric.get_fid
        mu, sigma = _compute_statistics_of_ims(images, inception, 1, 2048, "cpu", tqdm_position=-1)
        fid = calculate_frechet_distance(npz["mu"], npz["sigma"], mu, sigma)
        return generated - started, time.perf_counter() - generated, float(fid)

    candidate(ARCHS[0], 2)  # warm-up
    times = [candidate(arch, len(inputs)) for arch in ARCHS]  # its evaluate: the child pool in turn
    print(json.dumps({"generation_s": sum(t[0] for t in times) / len(times),
                      "scoring_s": sum(t[1] for t in times) / len(times), "fids": [t[2] for t in times]}))


def reference_round(reference: Path, folder: Path, size: int) -> dict:
    env = {**os.environ, "TORCH_HOME": str(folder)}
    done = subprocess.run([sys.executable, __file__, "--child", str(reference), str(folder), str(size)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def render(info: dict, rows: list[dict]) -> str:
    lines = ["## Scoring search candidates: this program against the reference's code", "",
             f"Measured by `python benchmarks/reference_scoring.py --reference REF --images {info['images']} --rounds "
             f"{info['rounds']} --sizes {' '.join(map(str, info['sizes']))}` (REF: mit-han-lab/gan-compression at "
             f"{info['commit']}) on {info['platform']}, {info['cores']} CPU cores, torch {info['torch']}; "
             f"{len(ARCHS)} CycleGAN candidates of the 64-wide supernet "
             f"({', '.join('`' + '_'.join(map(str, a)) + '`' for a in ARCHS)}) scored in turn as a search scores "
             f"them (ours: each one's successor set up while it is scored), {info['images']} images each, FID "
             "2048-d, the same supernet, images, real statistics and InceptionV3 weights on both sides, rounds "
             "alternating which side goes first; times per candidate (the mean over the candidates), medians over "
             "the rounds.", "",
             "| size | side | generation | features and distance | whole candidate | candidates per minute | first FID |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        for side in ("reference", "ours"):
            cell = row[side]
            whole = cell["generation_s"] + cell["scoring_s"]
            lines.append(f"| {row['size']} px | {side} | {cell['generation_s']:.2f} s | {cell['scoring_s']:.2f} s | "
                         f"{whole:.2f} s | {60 / whole:.1f} | {cell['fids'][0]:.6g} |")
    lines.append("")
    for row in rows:
        ours, theirs = (row[s]["generation_s"] + row[s]["scoring_s"] for s in ("ours", "reference"))
        lines.append(f"- {row['size']} px: **{theirs / ours:.2f}x the reference's candidates per second** (per "
                     f"round: {', '.join(f'{r:.2f}x' for r in row['round_ratios'])}); largest FID relative "
                     f"difference {row['fid_difference']:.1e}; ours scored its features on "
                     f"{row['backend']} (set up once per run: {row['setup_s']:.1f} s); generation decided once per "
                     f"run in {row['generation_setup_s']:.1f} s: {row['generation']}.")
    if not info["inception_weights"]:
        lines += ["", "The FID weights were not on disk: both sides used the same InceptionV3 with random weights "
                  "(BatchNorm statistics set on random images): FID's network and cost, not FID's numbers."]
    return "\n".join(lines) + "\n"


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        reference_child(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help="a checkout of mit-han-lab/gan-compression")
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="*", default=[64, 256])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--commit", help="the reference's commit, where REF is an exported tree, not a checkout")
    args = parser.parse_args()
    commit = args.commit or subprocess.run(["git", "-C", str(args.reference), "rev-parse", "--short", "HEAD"],
                                           capture_output=True, text=True).stdout.strip() or "unknown"
    rows = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        shared = prepare(folder, args.sizes, args.images)
        for size in args.sizes:
            ours_side = Ours(folder, size)
            times: dict[str, list[dict]] = {"ours": [], "reference": []}
            for number in range(args.rounds):
                order = ("ours", "reference") if number % 2 == 0 else ("reference", "ours")
                for side in order:
                    times[side].append(ours_side.candidates() if side == "ours" else
                                       reference_round(args.reference, folder, size))
                    print(size, side, times[side][-1], flush=True)
            row = {side: {"generation_s": statistics.median(t["generation_s"] for t in times[side]),
                          "scoring_s": statistics.median(t["scoring_s"] for t in times[side]),
                          "fids": times[side][0]["fids"]} for side in times}
            row.update(size=size, backend=ours_side.backend.backend, setup_s=ours_side.setup_s,
                       generation=ours_side.generation.note, generation_setup_s=ours_side.generation_setup_s,
                       fid_difference=max(abs(o - r) / abs(r) for ours, theirs in zip(times["ours"], times["reference"])
                                          for o, r in zip(ours["fids"], theirs["fids"])),
                       round_ratios=[(t["generation_s"] + t["scoring_s"]) / (o["generation_s"] + o["scoring_s"])
                                     for o, t in zip(times["ours"], times["reference"])])
            rows.append(row)
    info = {"images": args.images, "rounds": args.rounds, "sizes": args.sizes, "commit": commit,
            "platform": platform.platform(), "cores": os.cpu_count(), "torch": torch.__version__, **shared}
    publish(args.output, "scoring-vs-reference", render(info, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
