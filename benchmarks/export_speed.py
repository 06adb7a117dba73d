"""Student vs teacher speed in each backend the product offers, for the released fast CycleGAN student
(``16_16_24_16_32_64_16_24``, 21.5x fewer MACs than the ResNet teacher) at 256x256, batch 1, CPU, and
write the table into docs/benchmarks.md.

    python benchmarks/export_speed.py [--arch 16_16_24_16_32_64_16_24] [--size 256] [--threads N]
                                      [--time-cap 120] [--no-compile] [--output docs/benchmarks.md]

Every model in every backend is timed in one measurement with the product's one protocol
(``engine/latency.py``): interleaved rounds until the medians settle (or the time cap), so every speed-up is a
median of per-round ratios, also across backends. Backends: eager PyTorch, PyTorch with channels-last memory
and with ``torch.compile`` (candidates for the latency protocol; adopted only if they help), ONNX Runtime and
OpenVINO, with the export's own variants (``engine/onnx_variants.py``). The row "each in its fastest exact
backend" puts the student's fastest exact form beside the teacher's. OpenVINO's per-layer profile says which
layers keep the student from its MACs ratio. Weights are freshly initialised: speed does not depend on them
(the quality of the reduced-precision variants is measured on real runs, in their model cards).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import parse_timing_args, publish  # noqa: E402


def _pytorch_runners(nets: dict[str, torch.nn.Module], example: torch.Tensor, compile_too: bool):
    """Eager, channels-last and (optionally) compiled forms of each net, each checked against eager."""
    runners, exact = {}, {}

    def runner(net, x):
        def run():
            with torch.inference_mode():
                return net(x)
        return run

    last = example.contiguous(memory_format=torch.channels_last)
    for name, net in nets.items():
        with torch.inference_mode():
            reference = net(example)
        runners[f"{name} pytorch"] = runner(net, example)
        exact[f"{name} pytorch"] = 0.0
        cl = _copy(net).to(memory_format=torch.channels_last)
        runners[f"{name} channels-last"] = runner(cl, last)
        if compile_too:
            compiled = torch.compile(_copy(net))
            runners[f"{name} compiled"] = runner(compiled, example)
        for form in ("channels-last", "compiled"):
            if f"{name} {form}" in runners:
                out = runners[f"{name} {form}"]()
                exact[f"{name} {form}"] = float((out - reference).abs().max())
    return runners, exact


def _flags() -> str:
    """The options this run was given (but where its table was written), for the table's provenance."""
    args, shown = sys.argv[1:], []
    while args:
        arg = args.pop(0)
        if arg == "--output":
            args = args[1:]
        elif not arg.startswith("--output="):
            shown.append(arg)
    return "".join(f" {arg}" for arg in shown)


def _copy(net: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(net).eval()


def _openvino_profile(path: Path, feed: dict[str, np.ndarray], threads: int | None) -> dict[str, float]:
    """Milliseconds per layer type of one run in OpenVINO (its own per-node counters, median of 20 runs)."""
    compiled = _core_compile_with_counters(path, threads)
    request = compiled.create_infer_request()
    runs: list[dict[str, float]] = []
    for _ in range(20):
        request.infer(feed)
        per_type: dict[str, float] = defaultdict(float)
        for node in request.get_profiling_info():
            per_type[node.node_type] += node.real_time.total_seconds() * 1000
        runs.append(per_type)
    types = set().union(*runs)
    return {t: float(np.median([r.get(t, 0.0) for r in runs])) for t in types}


def _core_compile_with_counters(path: Path, threads: int | None):
    from engine.openvino_runtime import _core

    return _core().compile_model(str(path), "CPU", {"PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": True,
                                                    "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads())})


def main() -> int:
    from engine.export import export_onnx, onnx_session
    from engine.families import get_family
    from engine.latency import measure
    from engine.onnx_variants import build_variants
    from engine.openvino_runtime import Runner, available, bf16_supported, version
    from engine.profile import profile_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="16_16_24_16_32_64_16_24")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--time-cap", type=float, default=120.0, help="seconds of interleaved rounds at most")
    parser.add_argument("--no-compile", action="store_true", help="leave torch.compile out (it compiles for minutes)")
    args = parse_timing_args(parser)
    threads = args.threads or torch.get_num_threads()
    family = get_family("cyclegan")
    options = family.options({})
    torch.manual_seed(0)
    nets = {"teacher": family.build_teacher(options).eval(),
            "student": family.build_student(options, family.parse_arch(args.arch)).eval()}
    example = torch.rand(1, 3, args.size, args.size) * 2 - 1
    macs = {name: profile_model(net, example).macs for name, net in nets.items()}
    runners, exact = _pytorch_runners(nets, example, not args.no_compile)
    feed = {"input": example.numpy()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        onnx = {name: export_onnx(net, folder / f"{name}.onnx", example) for name, net in nets.items()}
        inputs = torch.rand(4, 3, args.size, args.size) * 2 - 1
        with torch.no_grad():
            float_out = nets["student"](inputs).numpy()
        names = ["optimized", "int8"] + (["openvino", "openvino_int8"] if available() else []) \
            + (["openvino_bf16"] if bf16_supported() else [])
        variants = build_variants(onnx["student"], tuple(names),
                                  (torch.rand(32, 3, args.size, args.size) * 2 - 1).numpy(), inputs.numpy(),
                                  float_out, threads)
        for name, path in onnx.items():
            session = onnx_session(path, threads)
            runners[f"{name} onnxruntime"] = lambda s=session: s.run(None, feed)
            exact[f"{name} onnxruntime"] = 0.0
            if available():
                runners[f"{name} openvino"] = Runner(path, feed, threads)
                exact[f"{name} openvino"] = 0.0
        for name, variant in variants.items():
            key = f"student {name}"
            if variant["backend"] == "openvino":
                runners[key] = Runner(Path(variant["path"]), feed, threads, variant.get("precision_hint", "f32"))
            else:
                session = onnx_session(Path(variant["path"]), threads)
                runners[key] = lambda s=session: s.run(None, feed)
            if variant["exact"]:
                exact[key] = variant["check"]["max_abs_diff"]
        teachers = [k for k in runners if k.startswith("teacher ")]
        students = [k for k in runners if k.startswith("student ")]
        pairs = [(t, s) for t in teachers for s in students]
        if "student openvino_int8" in runners:  # INT8 against the exact model of its own runtime
            pairs.append(("student openvino", "student openvino_int8"))
        reading = measure(runners, backend="all", batch=1, size=(args.size, args.size), threads=threads,
                          time_cap_s=args.time_cap, pairs=pairs)
        profile = ({name: _openvino_profile(onnx[name], feed, threads) for name in onnx} if available() else {})

    def same_backend(student_key: str) -> str:
        form = student_key.split(" ", 1)[1]
        base = {"optimized": "onnxruntime", "int8": "onnxruntime", "openvino_int8": "openvino",
                "openvino_bf16": "openvino"}.get(form, form)
        return f"teacher {base}"

    titles = {"pytorch": "PyTorch (eager)", "channels-last": "PyTorch, channels-last",
              "compiled": "PyTorch, torch.compile (inductor)", "onnxruntime": "ONNX Runtime",
              "optimized": "ONNX Runtime, optimised graph (exact)", "int8": "ONNX Runtime, INT8 (static QDQ)",
              "openvino": "OpenVINO", "openvino_bf16": "OpenVINO, bf16 hint", "openvino_int8": "OpenVINO, INT8 (NNCF)"}
    timings = reading.timings
    lines = [
        "## Export: student vs teacher speed per backend",
        "",
        f"Measured by `python benchmarks/export_speed.py{_flags()}` on {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores, torch {torch.__version__}, OpenVINO {version() or 'not installed'}, "
        f"{threads} threads, batch 1, {args.size}x{args.size}; CycleGAN teacher (ngf 64, 9 blocks) "
        f"{macs['teacher'] / 1e9:.2f}G MACs vs student `{args.arch}` {macs['student'] / 1e9:.3f}G: "
        f"{macs['teacher'] / macs['student']:.1f}x fewer MACs. Every model in every backend timed together in "
        f"{timings['student pytorch'].runs} interleaved rounds ({reading.seconds:.0f} s); speed-up = median of "
        "per-round ratios (p10-p90), against the teacher in the same backend."
        + (" The machine was busy during part of it (wide spreads)." if reading.busy else ""),
        "",
        "| backend | teacher (ms, median, p10-p90) | student (ms) | student vs teacher | student exact? |",
        "|---|---|---|---|---|",
    ]
    for key in students:
        form = key.split(" ", 1)[1]
        teacher_key = same_backend(key)
        t, s, r = timings[teacher_key], timings[key], reading.ratios[f"{teacher_key}/{key}"]
        if key in exact:
            exactness = f"yes (max \\|diff\\| {exact[key]:.1g})"
        else:
            check = variants[form]["check"]
            exactness = f"no: {check['psnr_to_float_db']:.1f} dB PSNR to the float student"
        lines.append(f"| {titles[form]} | {t.median_ms:.1f} ({t.p10_ms:.1f}-{t.p90_ms:.1f}) | {s.median_ms:.1f} "
                     f"({s.p10_ms:.1f}-{s.p90_ms:.1f}) | {r.median_ms:.2f}x ({r.p10_ms:.2f}-{r.p90_ms:.2f}) | {exactness} |")
    exact_teachers = [k for k in teachers if k in exact and exact[k] <= 1e-3]
    exact_students = [k for k in students if k in exact and exact[k] <= 1e-3]
    best_t = min(exact_teachers, key=lambda k: timings[k].median_ms)
    best_s = min(exact_students, key=lambda k: timings[k].median_ms)
    best = reading.ratios[f"{best_t}/{best_s}"]
    t, s = timings[best_t], timings[best_s]
    lines.append(f"| **each in its fastest exact backend** (teacher: {titles[best_t.split(' ', 1)[1]]}; student: "
                 f"{titles[best_s.split(' ', 1)[1]]}) | {t.median_ms:.1f} ({t.p10_ms:.1f}-{t.p90_ms:.1f}) | "
                 f"{s.median_ms:.1f} ({s.p10_ms:.1f}-{s.p90_ms:.1f}) | **{best.median_ms:.2f}x** "
                 f"({best.p10_ms:.2f}-{best.p90_ms:.2f}) | yes |")
    ratio = macs["teacher"] / macs["student"]
    eager = reading.ratios["teacher pytorch/student pytorch"].median_ms
    lines += ["", f"Fastest exact: {best.median_ms:.2f}x ({'meets' if best.median_ms >= 12 else 'below'} the goal of "
              f"12x; the MACs ratio, {ratio:.1f}x, is the limit), against {eager:.2f}x in eager PyTorch."]
    if "student openvino_int8" in timings:
        gain = reading.ratios["student openvino/student openvino_int8"]
        quality = variants["openvino_int8"]["check"]["psnr_to_float_db"]
        lines.append(f"OpenVINO INT8 (NNCF post-training quantisation, ranges from 32 random images): {gain.median_ms:.2f}x the speed of OpenVINO f32 (p10-p90 "
                     f"{gain.p10_ms:.2f}-{gain.p90_ms:.2f}; goal 1.5x: {'met' if gain.median_ms >= 1.5 else 'not met'}), "
                     f"{quality:.1f} dB PSNR to the float student on random inputs with random weights (the goal, "
                     ">= 35 dB, is for the released student's weights and real images: a run's model card gives it).")
    for form in ("channels-last", "compiled"):
        key = f"student {form}"
        if key in timings:
            gain = timings["student pytorch"].median_ms / timings[key].median_ms
            lines.append(f"PyTorch {form}: the student at {gain:.2f}x eager's speed "
                         f"({'adopt' if gain > 1.05 else 'not adopted'} as a latency-protocol option; max |diff| "
                         f"{exact[key]:.1g}).")
    if profile:
        lines += ["", "What keeps the student from its MACs ratio, by OpenVINO's per-layer counters (ms of one run, "
                  "median of 20, by layer type; the types that take most of the student's time):", "",
                  "| layer type | teacher (ms) | student (ms) | student share | teacher / student |", "|---|---|---|---|---|"]
        total = sum(profile["student"].values())
        for kind in sorted(profile["student"], key=profile["student"].get, reverse=True)[:8]:
            tm, sm = profile["teacher"].get(kind, 0.0), profile["student"][kind]
            lines.append(f"| {kind} | {tm:.2f} | {sm:.2f} | {100 * sm / total:.0f}% | "
                         + (f"{tm / sm:.1f}x |" if sm > 0 and tm > 0 else "- (one side has none) |"))
    text = "\n".join(lines)
    publish(args.output, "export-speed", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
