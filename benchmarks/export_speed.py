"""Student vs teacher speed in each backend the export offers, for the released fast CycleGAN student
(``16_16_24_16_32_64_16_24``, 21.5x fewer MACs than the ResNet teacher) at 256x256, batch 1, CPU, and
write the table into docs/benchmarks.md.

    python benchmarks/export_speed.py [--arch 16_16_24_16_32_64_16_24] [--size 256] [--threads N]
                                      [--output docs/benchmarks.md]

All models are timed together with the product's one protocol (``engine/latency.py``): interleaved
rounds until the medians settle (or a time cap); every speed-up is the median of per-round ratios. The
variants are the export's own (``engine/onnx_variants.py``): ONNX Runtime's saved optimised graph and
static INT8 calibrated on 32 images. Weights are freshly initialised: speed does not depend on them
(quality of INT8 is measured on real runs, in their model cards and the sample-preset benchmark).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import parse_timing_args, publish  # noqa: E402


def main() -> int:
    from engine.export import export_onnx, measure_models, measure_onnx
    from engine.families import get_family
    from engine.onnx_variants import build_variants
    from engine.profile import profile_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="16_16_24_16_32_64_16_24")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--time-cap", type=float, default=60.0, help="seconds per backend at most")
    args = parse_timing_args(parser)
    family = get_family("cyclegan")
    options = family.options({})
    torch.manual_seed(0)
    teacher = family.build_teacher(options).eval()
    student = family.build_student(options, family.parse_arch(args.arch)).eval()
    example = torch.rand(1, 3, args.size, args.size) * 2 - 1
    macs = {name: profile_model(net, example).macs for name, net in (("teacher", teacher), ("student", student))}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        teacher_onnx = export_onnx(teacher, folder / "teacher.onnx", example)
        student_onnx = export_onnx(student, folder / "student.onnx", example)
        inputs = torch.rand(4, 3, args.size, args.size) * 2 - 1
        with torch.no_grad():
            float_out = student(inputs).numpy()
        variants = build_variants(student_onnx, ("optimized", "int8"),
                                  (torch.rand(32, 3, args.size, args.size) * 2 - 1).numpy(), inputs.numpy(),
                                  float_out, args.threads)
        pytorch = measure_models({"teacher": teacher, "student": student}, example, "pytorch",
                                 time_cap_s=args.time_cap)
        onnx = measure_onnx({"teacher": teacher_onnx, "student": student_onnx,
                             **{n: Path(v["path"]) for n, v in variants.items()}}, example, threads=args.threads,
                            time_cap_s=args.time_cap,
                            pairs=[("teacher", "student"), ("teacher", "optimized"), ("teacher", "int8")])
    rows = [("PyTorch (eager)", pytorch, "student", "teacher/student"),
            ("ONNX Runtime", onnx, "student", "teacher/student"),
            ("ONNX Runtime, optimised graph (exact)", onnx, "optimized", "teacher/optimized"),
            ("ONNX Runtime, INT8 (static)", onnx, "int8", "teacher/int8")]
    lines = [
        "## Export: student vs teacher speed per backend",
        "",
        f"Measured by `python benchmarks/export_speed.py` on {platform.platform()}, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__}, {pytorch.threads} threads, batch 1, {args.size}x{args.size}; "
        f"CycleGAN teacher (ngf 64, 9 blocks) {macs['teacher'] / 1e9:.2f}G MACs vs student `{args.arch}` "
        f"{macs['student'] / 1e9:.3f}G: {macs['teacher'] / macs['student']:.1f}x fewer MACs. All models of a backend "
        "timed together in interleaved rounds; speed-up = median of per-round ratios (p10-p90)."
        + (" The machine was busy during part of it (wide spreads)." if pytorch.busy or onnx.busy else ""),
        "",
        "| backend | teacher (ms, median, p10-p90) | student (ms) | student vs teacher | rounds |",
        "|---|---|---|---|---|",
    ]
    for label, reading, name, ratio in rows:
        t, s, r = reading.timings["teacher"], reading.timings[name], reading.ratios[ratio]
        lines.append(f"| {label} | {t.median_ms:.1f} ({t.p10_ms:.1f}-{t.p90_ms:.1f}) | {s.median_ms:.1f} "
                     f"({s.p10_ms:.1f}-{s.p90_ms:.1f}) | {r.median_ms:.2f}x ({r.p10_ms:.2f}-{r.p90_ms:.2f}) | {s.runs} |")
    int8 = variants["int8"]["check"]
    lines += ["", f"INT8 output vs the float student on 4 random inputs: {int8['psnr_to_float_db']:.1f} dB PSNR "
              f"(max |diff| {int8['max_abs_diff']:.3f}); the optimised graph: max |diff| "
              f"{variants['optimized']['check']['max_abs_diff']:.2g}."]
    exact = {label: reading.ratios[ratio].median_ms for label, reading, _, ratio in rows[:3]}
    best = max(exact, key=exact.get)
    lines.append(f"Best exact backend: {best}, {exact[best]:.2f}x faster than the teacher "
                 f"({'meets' if exact[best] >= 12 else 'below'} the goal of 12x; "
                 f"{macs['teacher'] / macs['student']:.1f}x fewer MACs).")
    text = "\n".join(lines)
    publish(args.output, "export-speed", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
