"""What one distillation step of each sample preset costs with its discriminator at the family's reference
width and at the preset's, and write the table into docs/benchmarks.md.

    python benchmarks/sample_step_cost.py [--presets NAME ...] [--widths 64 32 16] [--rounds 8] [--threads N]
                                          [--output docs/benchmarks.md]

A step is the family's own ``distill_step`` on the largest sub-network of the preset's supernet, at the
preset's batch size and training crop, on random inputs (the cost does not depend on the pixels). The
widths are timed in interleaved rounds of a few steps each, and each one's share is the median of its
per-round ratio to the reference width, so a machine that is busy for a moment shifts every width alike.
It is why the 64 px sample presets take a narrower discriminator than the reference's (built for 256 px).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import parse_timing_args, publish  # noqa: E402

STEPS_PER_ROUND = 3


def step_runner(config, ndf: int):
    """A function that runs ``STEPS_PER_ROUND`` distillation steps of the preset ``config`` with a
    discriminator ``ndf`` wide, and returns the seconds per step (``engine.stages.time_estimate``'s step)."""
    from engine.stages.time_estimate import step_runner as one_step

    step, _, _ = one_step(config, torch.device("cpu"), batch=config.batch_size, ndf=ndf)

    def run() -> float:
        return sum(step() for _ in range(STEPS_PER_ROUND)) / STEPS_PER_ROUND

    run()  # first steps allocate
    return run


def main() -> int:
    from engine.config import load_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["cyclegan-sample", "pix2pix-sample", "munit-sample"])
    parser.add_argument("--widths", nargs="+", type=int, default=[64, 32, 16],
                        help="discriminator widths beside the reference's and the preset's")
    parser.add_argument("--rounds", type=int, default=8)
    args = parse_timing_args(parser)
    torch.manual_seed(0)
    rows = []
    for preset in args.presets:
        config = load_config(preset)
        reference, chosen = config.family_impl.default_recipe.ndf, config.resolved_recipe.ndf
        widths = sorted(set(args.widths) | {reference, chosen}, reverse=True)
        runners = {ndf: step_runner(config, ndf) for ndf in widths}
        times: dict[int, list[float]] = {ndf: [] for ndf in widths}
        for _ in range(args.rounds):
            for ndf, run in runners.items():
                times[ndf].append(run())
        crop = config.train_crop or config.image_size
        for ndf in widths:
            share = statistics.median(t / r for t, r in zip(times[ndf], times[reference]))
            note = " ".join(n for n, w in (("reference", reference), ("preset", chosen)) if w == ndf)
            label = f"{preset} ({crop} px, batch {config.batch_size})" if ndf == widths[0] else preset
            rows.append(f"| {label} | {f'{ndf} {note}'.strip()} | {statistics.median(times[ndf]):.3f} | {share:.2f} |")
    lines = [
        "## Sample presets: cost of a distillation step by discriminator width",
        "",
        f"Measured by `python benchmarks/sample_step_cost.py` on {platform.platform()}, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads: one `distill_step` of the largest "
        f"sub-network at the preset's batch and crop, {args.rounds} interleaved rounds of {STEPS_PER_ROUND} steps; "
        "share = median per-round ratio to the reference width.",
        "",
        "| preset | discriminator ndf | s / step (median) | share of the reference's step |",
        "|---|---|---|---|",
        *rows,
    ]
    publish(args.output, "sample-step-cost", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
