"""Training on several processes: samples per second with 1 and 2 processes on this machine (the same
run, the same global batch), and the communication volume per step that decides how a run scales to N GPUs.
Writes the measured ratio into docs/benchmarks.md and the scaling model into docs/scaling.md.

    python benchmarks/scaling.py [--steps 150] [--batch 8] [--size 64] [--ngf 16]

Each configuration is a real run of the command line (``compress --stop-after supernet``; under
``torch.distributed.run`` for 2 processes), timed by its supernet stage's own duration (its ``StageFinished``
event). The cores are shared out: 1 process with all of them as threads, or 2 processes with half each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from sections import DOCS, publish  # noqa: E402

SCALING = ROOT / "docs" / "scaling.md"


def run_config(args) -> dict:
    return {
        "name": "scaling", "family": "pix2pix",
        "dataset": {"sample": "edges2photos", "sample_size": args.size, "sample_train": 32, "sample_test": 4,
                    "search_images": 4, "test_images": 4},
        "image_size": args.size, "batch_size": args.batch, "model": {"ngf": args.ngf, "n_blocks": 6},
        "teacher": {"steps": 4}, "supernet": {"steps": args.steps}, "search": {"target_ratio": 2},
        "finetune": {"steps": 0}, "metric": "psnr", "log_every": 50, "checkpoint_interval_s": 3600,
    }


def timed_run(config_path: Path, processes: int, threads: int) -> float:
    """Seconds of the supernet stage of one run."""
    with tempfile.TemporaryDirectory() as workspace:
        env = {**os.environ, "GCW_WORKSPACE": workspace, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
        env.pop("GCW_STORE_URL", None)
        launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                     "--nproc_per_node", str(processes)] if processes > 1 else [sys.executable])
        done = subprocess.run([*launcher, str(ROOT / "main.py"), "compress", "--config", str(config_path),
                               "--stop-after", "supernet", "--json-events"], env=env, capture_output=True, text=True,
                              cwd=ROOT, timeout=3600)
        for line in done.stdout.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "stage_finished" and event.get("stage") == "supernet":
                return float(event["seconds"])
        raise RuntimeError(f"the {processes}-process run did not finish its supernet:\n{done.stderr[-3000:]}")


def gradient_bytes(family_name: str, model: dict, size: tuple[int, int]) -> dict[str, float]:
    """What each training step of the supernet all-reduces: every trainable parameter of the generator
    side (supernet + mapping layers) and of the discriminator, as float32, and the MACs of one image."""
    from engine.arch import Arch
    from engine.families import get_family

    family = get_family(family_name)
    options = family.options(model)
    space = family.search_space(options)
    supernet = family.build_supernet(options, space)
    mappings = family.build_mappings(options, Arch.largest(space), "normal")
    discriminator = family.build_discriminator(options, family.default_recipe.ndf)
    count = sum(p.numel() for net in (supernet, mappings, discriminator) for p in net.parameters())
    from engine.profile import profile_model

    return {"params": count, "bytes": 4 * count,
            "student_macs_largest": family.macs(Arch.largest(space), options, size),
            "teacher_macs": profile_model(family.build_teacher(options), family.example_inputs(options, size)).macs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--ngf", type=int, default=16)
    parser.add_argument("--output", type=Path, default=DOCS)
    parser.add_argument("--scaling-output", type=Path, default=SCALING)
    args = parser.parse_args()
    cores = os.cpu_count() or 2
    with tempfile.TemporaryDirectory() as folder:
        config_path = Path(folder) / "run.yaml"
        config_path.write_text(yaml.safe_dump(run_config(args)))
        rounds = []
        for _ in range(2):  # interleaved: 1, 2, 1, 2
            for processes in (1, 2):
                seconds = timed_run(config_path, processes, max(1, cores // processes))
                rounds.append((processes, seconds))
                print(f"{processes} process(es): {seconds:.1f} s", flush=True)
    best = {p: min(s for q, s in rounds if q == p) for p in (1, 2)}
    rate = {p: args.steps * args.batch / best[p] for p in best}
    measured = gradient_bytes("pix2pix", {"ngf": args.ngf, "n_blocks": 6}, (args.size, args.size))
    step_s = best[1] / args.steps
    text = "\n".join([
        "## Training on several processes (torch.distributed, gloo, CPU)",
        "",
        f"Measured by `python benchmarks/scaling.py --steps {args.steps} --batch {args.batch} --size {args.size} "
        f"--ngf {args.ngf}` on {platform.platform()}, {cores} cores, PyTorch {torch.__version__}: the supernet "
        f"stage of a pix2pix run (ngf {args.ngf}, 6 blocks, {args.size} px, global batch {args.batch}, "
        f"{args.steps} steps), best of 2 interleaved rounds each; the cores shared out (1 process x {cores} "
        f"threads, 2 processes x {max(1, cores // 2)}).",
        "",
        "| processes | supernet stage (s) | images/s | vs 1 process |",
        "|---|---|---|---|",
        *[f"| {p} | {best[p]:.1f} | {rate[p]:.1f} | {rate[p] / rate[1]:.2f}x |" for p in (1, 2)],
        "",
        f"Each step all-reduces {measured['bytes'] / 1e6:.2f} MB of gradients ({measured['params'] / 1e6:.3f}M "
        f"parameters: supernet, mapping layers, discriminator) against {1000 * step_s:.0f} ms of compute per "
        "step in one process. On CPUs the processes share the same cores, so the ratio says what the "
        "processes cost, not what more machines give: that is in `docs/scaling.md`.",
    ])
    publish(args.output, "scaling", text)
    publish(args.scaling_output, "scaling-model", scaling_model(measured, args))
    return 0


def scaling_model(measured: dict[str, float], args) -> str:
    """Expected speed-up on N GPUs for the paper's configurations, from the bytes each step all-reduces."""
    rows = []
    # (name, family, model options, size, global batch): the reference's scripts' batch sizes.
    configs = [("CycleGAN horse2zebra (reference: batch 1)", "cyclegan", {"ngf": 64, "n_blocks": 9}, 256, 32),
               ("pix2pix edges2shoes (reference: batch 4)", "pix2pix", {"ngf": 64, "n_blocks": 9}, 256, 32)]
    gpu_tflops, nvlink_gbs, network_gbs, latency_us = 30.0, 100.0, 3.0, 30.0
    for name, family, model, size, batch in configs:
        volume = gradient_bytes(family, model, (size, size))
        # One step: teacher forward, student forward and backward (3x), discriminator twice forward and
        # backward on real and fake: about 3x the largest student's MACs + the teacher's, per image.
        step_flops = 2 * batch * (3 * volume["student_macs_largest"] + volume["teacher_macs"]) * 1.3
        compute_s = step_flops / (gpu_tflops * 1e12)
        for n, link, where in ((1, nvlink_gbs, "1 GPU"), (8, nvlink_gbs, "8 GPUs, one machine (NVLink)"),
                               (16, network_gbs, "16 GPUs, 2 machines (25 Gb/s Ethernet)"),
                               (64, network_gbs, "64 GPUs, 8 machines (25 Gb/s Ethernet)")):
            ring = 0.0 if n == 1 else 2 * (n - 1) / n * volume["bytes"] / (link * 1e9) + 2 * (n - 1) * latency_us * 1e-6
            per_step = compute_s / n + ring
            rows.append(f"| {name} | {where} | {volume['bytes'] / 1e6:.1f} MB | {1000 * compute_s / n:.1f} ms | "
                        f"{1000 * ring:.1f} ms | {compute_s / per_step:.1f}x |")
    return "\n".join([
        "## Expected scaling on N GPUs",
        "",
        "Data-parallel training (`torchrun`, `engine/distributed.py`) splits each global batch over the N "
        "processes and all-reduces every gradient once per optimiser step, so a step takes "
        "`compute(batch / N) + allreduce(bytes, N)`. The bytes are measured from the models "
        "(`python benchmarks/scaling.py`: every trainable parameter of the supernet, its mapping layers and the "
        "discriminator, float32); the rest are assumptions, stated here:",
        "",
        f"- compute: {gpu_tflops:g} TFLOP/s sustained per GPU, a step costing 2 x batch x (3 x the largest "
        "student's MACs + the teacher's) x 1.3 (the discriminator) FLOPs, split evenly over the GPUs;",
        f"- all-reduce: a ring, 2 (N-1)/N x bytes at {nvlink_gbs:g} GB/s within a machine (NVLink) or "
        f"{network_gbs:g} GB/s between machines (25 Gb/s Ethernet), plus {latency_us:g} us per hop, not "
        "overlapped with the backward pass (our averaging runs at the optimiser step);",
        "- the global batch of 32 for both (the reference trains CycleGAN with batch 1 and pix2pix with 4: a "
        "batch smaller than N leaves processes idle, so scaling out means a larger global batch, whose "
        "learning rate may need retuning).",
        "",
        "| configuration | where | gradients per step | compute per step | all-reduce per step | speed-up |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Within one machine the all-reduce is small against the compute and the speed-up follows the GPUs; "
        "between machines over Ethernet the gradient volume dominates once the per-GPU batch is small. "
        "Faster networks (InfiniBand, 100-400 Gb/s) move that limit out by the same factor.",
    ])


if __name__ == "__main__":
    sys.exit(main())
