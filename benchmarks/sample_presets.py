"""Run the sample presets end to end and write the measured table to docs/benchmarks.md.

    python benchmarks/sample_presets.py [--workspace DIR] [--presets cyclegan-sample pix2pix-sample]

Every number in the table comes from the one run of each preset made by this script: wall time of the
whole ``compress`` command, MACs and parameters, metrics on the test split, CPU latency of teacher and
student in PyTorch (eager) and ONNX Runtime, and the search's scoring rate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_MINUTES = 15


def run_preset(preset: str, workspace: Path) -> dict:
    env = {**os.environ, "GCW_WORKSPACE": str(workspace)}
    started = time.perf_counter()
    log_path = workspace / f"{preset}.log"
    workspace.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:  # progress goes to the log, to follow with tail -f
        result = subprocess.run([sys.executable, str(ROOT / "main.py"), "compress", "--preset", preset, "--json"],
                                stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{preset} failed; see {log_path}:\n{log_path.read_text()[-3000:]}")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return {"preset": preset, "seconds": seconds, "summary": summary}


def quality_check(summary: dict) -> tuple[str, bool]:
    metric = summary["metric"]
    teacher, student = summary["teacher"]["metrics"][metric], summary["student"]["metrics"][metric]
    if metric == "psnr":
        return f"PSNR {student:.2f} dB vs teacher {teacher:.2f} dB (within 1 dB: {teacher - student <= 1})", teacher - student <= 1
    ok = student <= teacher * 1.10
    return f"{metric} {student:.4g} vs teacher {teacher:.4g} (no worse than +10%: {ok})", ok


def render(results: list[dict]) -> str:
    lines = ["# Benchmarks", "",
             f"Measured by `python benchmarks/sample_presets.py` on {platform.platform()}, "
             f"{os.cpu_count()} CPU cores, Python {platform.python_version()}; one run per preset, all ratios "
             "from that same run. Latency: batch 1 at the preset's image size, median of timed runs after warm-up, "
             "CPU.", ""]
    lines += ["| preset | wall time | teacher MACs | student MACs | MACs ratio | params ratio | quality | "
              "search: candidates/s | student ONNX Runtime vs PyTorch | student vs teacher (PyTorch) | "
              "student vs teacher (ONNX Runtime) |", "|" + "---|" * 11]
    for r in results:
        s = r["summary"]
        t, st = s["teacher"], s["student"]
        quality, _ = quality_check(s)
        lines.append(
            f"| {r['preset']} | {r['seconds'] / 60:.1f} min | {t['macs'] / 1e6:.1f}M | {st['macs'] / 1e6:.1f}M | "
            f"{s['macs_ratio']:.1f}x | {t['params'] / st['params']:.1f}x | {quality} | "
            f"{s['search']['candidates_per_second']:.1f} ({s['search']['scored']} scored, {s['search']['method']}) | "
            f"{st['latency_ms']['pytorch'] / st['latency_ms']['onnxruntime']:.2f}x faster "
            f"({st['latency_ms']['onnxruntime']:.2f} vs {st['latency_ms']['pytorch']:.2f} ms) | "
            f"{t['latency_ms']['pytorch'] / st['latency_ms']['pytorch']:.2f}x faster | "
            f"{t['latency_ms']['onnxruntime'] / st['latency_ms']['onnxruntime']:.2f}x faster |")
    lines += ["", "Metrics on the test split (teacher / student):", ""]
    for r in results:
        s = r["summary"]
        metrics = ", ".join(f"{k} {s['teacher']['metrics'][k]:.4g} / {v:.4g}" for k, v in s["student"]["metrics"].items()
                            if k in s["teacher"]["metrics"])
        lines.append(f"- {r['preset']}: {metrics}; student arch `{s['student']['arch']}`; fidelity to the teacher "
                     f"{s['student']['metrics']['psnr_to_teacher']:.2f} dB PSNR; fine-tuning: {s['finetune']['kept']} "
                     f"kept (search-set {s['metric']} {s['finetune']['before']:.4g} before, "
                     f"{s['finetune']['after'] if s['finetune']['after'] is None else format(s['finetune']['after'], '.4g')} after); grid `docs/{r['preset']}-grid.png`")
    lines += ["", "`rfid` is the Fréchet distance on the features of a fixed random CNN, used when the Inception "
              "weights for FID are not on disk; it is not comparable with published FID values.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, help="(default: a fresh temporary folder)")
    parser.add_argument("--presets", nargs="+", default=["cyclegan-sample", "pix2pix-sample"])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    workspace = args.workspace or Path(tempfile.mkdtemp(prefix="gcw-bench-"))
    results = []
    for preset in args.presets:
        result = run_preset(preset, workspace)
        results.append(result)
        shutil.copy(result["summary"]["grid_path"], ROOT / "docs" / f"{preset}-grid.png")
        print(f"{preset}: {result['seconds'] / 60:.1f} min, {quality_check(result['summary'])[0]}", flush=True)
    args.output.write_text(render(results))
    (args.output.with_suffix(".json")).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
