"""Run the sample presets end to end and write the measured table to docs/benchmarks.md.

    python benchmarks/sample_presets.py [--workspace DIR] [--presets cyclegan-sample pix2pix-sample gaugan-sample munit-sample]
                                        [--recipes reference workbench] [--eval-every 50]
    # the recipe comparison of docs/recipes.md:
    python benchmarks/sample_presets.py --presets cyclegan-sample pix2pix-sample --recipes reference workbench \
        --output docs/recipes-table.md --grids docs/recipes

Every number in the table comes from the one run of each (preset, recipe) made by this script, same seeds,
same machine: wall time of the whole ``compress`` command, MACs and parameters, metrics on the test
split, fidelity to the teacher, CPU latency of teacher and student in PyTorch (eager) and ONNX Runtime,
the search's scoring rate, and the fine-tuning trace (search-split metric every ``--eval-every`` steps).
``reference`` is each family's default recipe (gan-compression's scripts); ``workbench`` this project's
earlier choices (``recipe: {base: workbench}``).
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

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sections import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_MINUTES = 15


def _speedup(summary: dict, backend: str) -> float:
    """Student vs teacher from the interleaved measurement (older summaries: the ratio of medians)."""
    reading = summary.get("latency", {}).get(backend)
    if reading:
        return reading["ratios"]["teacher/student"]["median_ms"]
    return summary["teacher"]["latency_ms"][backend] / summary["student"]["latency_ms"][backend]


def run_compress(config: dict, workspace: Path) -> dict:
    """One whole ``compress`` run of ``config`` (written beside its log in ``workspace``): its wall time, the
    CLI's summary and the fine-tuning trace."""
    env = {**os.environ, "GCW_WORKSPACE": str(workspace)}
    name = config["name"]
    workspace.mkdir(parents=True, exist_ok=True)
    config_path = workspace / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(config))
    started = time.perf_counter()
    log_path = workspace / f"{name}.log"
    with log_path.open("w") as log:  # progress goes to the log, to follow with tail -f
        result = subprocess.run([sys.executable, str(ROOT / "main.py"), "compress", "--config", str(config_path),
                                 "--json"], stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{name} failed; see {log_path}:\n{log_path.read_text()[-3000:]}")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    finetune = Path(summary["model_card_path"]).parents[1] / "finetune" / "result.json"
    trace = json.loads(finetune.read_text()).get("trace") if finetune.is_file() else None
    return {"seconds": seconds, "summary": summary, "finetune_trace": trace}


def run_preset(preset: str, recipe: str, workspace: Path, eval_every: int) -> dict:
    config = {"preset": preset, "name": f"{preset}-{recipe}", "recipe": {"base": recipe},
              "finetune": {"eval_every": eval_every}}
    return {"preset": preset, "recipe": recipe, **run_compress(config, workspace)}


def _shown(grid: str) -> str:
    """The grid's path in the repository: a relative path as it is, an absolute one inside the checkout
    relative to it (rows measured in another checkout keep their docs/ name)."""
    path = Path(grid)
    if not path.is_absolute():
        return str(path)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else f"docs/{path.name}"


def quality_check(summary: dict) -> tuple[str, bool]:
    metric = summary["metric"]
    teacher, student = summary["teacher"]["metrics"][metric], summary["student"]["metrics"][metric]
    if metric == "psnr":
        return f"PSNR {student:.2f} dB vs teacher {teacher:.2f} dB (within 1 dB: {teacher - student <= 1})", teacher - student <= 1
    ok = student <= teacher * 1.10
    return f"{metric} {student:.4g} vs teacher {teacher:.4g} (no worse than +10%: {ok})", ok


def render(results: list[dict]) -> str:
    lines = ["## Sample presets", "",
             f"Measured by `python benchmarks/sample_presets.py` on {platform.platform()}, "
             f"{os.cpu_count()} CPU cores, Python {platform.python_version()}; one run per preset, all ratios "
             "from that same run. Latency: batch 1 at the preset's image size on the CPU, with the product's one "
             "protocol (engine/latency.py): teacher and student timed in interleaved rounds until their medians "
             "settle; student vs teacher is the median of the per-round ratios.", ""]
    lines += ["| preset | recipe | wall time | teacher MACs | student MACs | MACs ratio | params ratio | quality | "
              "search: candidates/s | student ONNX Runtime vs PyTorch | student vs teacher (PyTorch) | "
              "student vs teacher (ONNX Runtime) |", "|" + "---|" * 12]
    for r in results:
        s = r["summary"]
        t, st = s["teacher"], s["student"]
        quality, _ = quality_check(s)
        lines.append(
            f"| {r['preset']} | {r['recipe']} | {r['seconds'] / 60:.1f} min | {t['macs'] / 1e6:.1f}M | {st['macs'] / 1e6:.1f}M | "
            f"{s['macs_ratio']:.1f}x | {t['params'] / st['params']:.1f}x | {quality} | "
            f"{s['search']['candidates_per_second']:.1f} ({s['search']['scored']} scored, {s['search']['method']}) | "
            f"{st['latency_ms']['pytorch'] / st['latency_ms']['onnxruntime']:.2f}x faster "
            f"({st['latency_ms']['onnxruntime']:.2f} vs {st['latency_ms']['pytorch']:.2f} ms) | "
            f"{_speedup(s, 'pytorch'):.2f}x faster | {_speedup(s, 'onnxruntime'):.2f}x faster |")
    lines += ["", "Metrics on the test split (teacher / student):", ""]
    for r in results:
        s = r["summary"]
        metrics = ", ".join(f"{k} {s['teacher']['metrics'][k]:.4g} / {v:.4g}" for k, v in s["student"]["metrics"].items()
                            if k in s["teacher"]["metrics"])
        lines.append(f"- {r['preset']}, {r['recipe']} recipe: {metrics}; student arch `{s['student']['arch']}`; fidelity to the teacher "
                     f"{s['student']['metrics']['psnr_to_teacher']:.2f} dB PSNR; fine-tuning: {s['finetune']['kept']} "
                     f"kept (search-set {s['metric']} {s['finetune']['before']:.4g} before, "
                     f"{s['finetune']['after'] if s['finetune']['after'] is None else format(s['finetune']['after'], '.4g')} after); grid `{_shown(r['grid'])}`")
    lines += ["", "Fine-tuning traces (search-split metric at fine-tuning step 0, then every few steps):", ""]
    for r in results:
        trace = r.get("finetune_trace") or []
        lines.append(f"- {r['preset']}, {r['recipe']}: " + ", ".join(f"{step}: {value:.4g}" for step, value in trace))
    lines += ["", "`rfid` is the Fréchet distance on the features of a fixed random CNN, used when the Inception "
              "weights for FID are not on disk; it is not comparable with published FID values.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, help="(default: a fresh temporary folder)")
    parser.add_argument("--presets", nargs="+", default=["cyclegan-sample", "pix2pix-sample", "gaugan-sample",
                                                           "munit-sample"])
    parser.add_argument("--recipes", nargs="+", default=["reference"], choices=["reference", "workbench"],
                        help="reference: the families' defaults; workbench: recipe {base: workbench}")
    parser.add_argument("--eval-every", type=int, default=50, help="fine-tuning steps between search-split scores")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--grids", type=Path, default=ROOT / "docs", help="folder for the output grids")
    args = parser.parse_args()
    workspace = args.workspace or Path(tempfile.mkdtemp(prefix="gcw-bench-"))
    results = []
    for preset in args.presets:
        for recipe in args.recipes:
            result = run_preset(preset, recipe, workspace, args.eval_every)
            results.append(result)
            args.grids.mkdir(parents=True, exist_ok=True)
            result["grid"] = str(shutil.copy(result["summary"]["grid_path"], args.grids / f"{preset}-{recipe}-grid.png"))
            print(f"{preset} ({recipe}): {result['seconds'] / 60:.1f} min, {quality_check(result['summary'])[0]}",
                  flush=True)
    # Rows of presets not re-run here stay as their own earlier runs measured them (each row is one run).
    stored = args.output.with_suffix(".json")
    earlier = json.loads(stored.read_text()) if stored.is_file() else []
    ran = {(r["preset"], r["recipe"]) for r in results}
    results = [r for r in earlier if (r["preset"], r["recipe"]) not in ran] + results
    write_section(args.output, "sample-presets", render(results))
    stored.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
