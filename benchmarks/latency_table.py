"""How well the latency table (``engine/latency_table.py``) predicts sub-network latency: built on a few
sub-networks of the CycleGAN supernet (ngf 64, the reference's search space), then checked against
sub-networks it was not fitted on, each measured end to end with the product's one protocol
(``engine/latency.py``), and the table written into docs/benchmarks.md.

    python benchmarks/latency_table.py [--size 256] [--calibration 24] [--checks 20] [--threads N]
                                       [--backend pytorch|onnxruntime|openvino] [--layers pytorch|backend|both]

Every figure comes from this one run on this machine; weights are freshly initialised (speed does not
depend on them). Errors are (predicted - measured) / measured, in percent.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from sections import parse_timing_args, publish  # noqa: E402


def main() -> int:
    from engine.families import get_family
    import onnxruntime

    from engine.arch import Arch
    from engine.latency_table import SpacePredictor, cached_table, measured_against, on_common_reference, random_archs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--calibration", type=int, default=24, help="sub-networks the mapping is fitted on")
    parser.add_argument("--checks", type=int, default=20, help="other sub-networks the predictions are checked on")
    parser.add_argument("--backend", choices=("pytorch", "onnxruntime", "openvino"), default="pytorch")
    parser.add_argument("--layers", choices=("pytorch", "backend", "both"), default="pytorch",
                        help="time each layer in PyTorch (default), in --backend itself, or both side by side "
                             "(two tables, checked on the same measured sub-networks)")
    args = parse_timing_args(parser)
    family = get_family("cyclegan")
    options = family.options({})
    space = family.search_space(options)
    example = (torch.rand(1, options.input_nc, args.size, args.size) * 2 - 1,)
    torch.manual_seed(0)

    def build(arch):
        return family.build_student(options, arch).eval()

    sources = {"pytorch": ["pytorch"], "backend": [args.backend], "both": ["pytorch", args.backend]}[args.layers]
    sources = list(dict.fromkeys(sources))
    tables, predictors, built_s, predictor_s = {}, {}, {}, {}
    for source in sources:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            tables[source], _ = cached_table(Path(folder), "cyclegan", options.model_dump_json(), build, example, space,
                                             backend=args.backend, calibration_nets=args.calibration,
                                             layer_backend=source)
        built_s[source] = time.perf_counter() - started
        started = time.perf_counter()
        predictors[source] = SpacePredictor(tables[source], build, space, example)
        predictor_s[source] = time.perf_counter() - started
    fitted = {entry["arch"] for table in tables.values() for entry in table.calibration}
    checks = [arch for arch in random_archs(space, args.calibration + 4 * args.checks, random.Random(1))
              if str(arch) not in fitted][:args.checks]
    # The truth: each check network timed interleaved with the space's smallest sub-network in the same rounds (as
    # the measured budget and the table's fit time them), its figure the per-round ratio over the reference's
    # usual time: a busy spell during one reading moves neither that network's figure nor the others'.
    reference_arch = Arch.smallest(space)
    reference = build(reference_arch)
    paired = []
    for arch in checks:
        paired.append(measured_against(build(arch), reference, example, torch.device("cpu"), backend=args.backend))
        print(f"`{arch}`: {paired[-1].over_reference:.3f}x the reference", flush=True)
    measured_all = on_common_reference(paired)
    reference_ms = float(np.median([p.reference_ms for p in paired]))
    macs_all = [family.macs(arch, options, (args.size, args.size)) for arch in checks]
    # What the search's pre-filter uses: the table put on the reference as measured now (engine.measured_budget).
    scales = {source: reference_ms / predictors[source](reference_arch) for source in sources}
    predicted_all: dict[str, list[float]] = {source: [predictors[source](arch) for arch in checks] for source in sources}
    rows = []
    for i, arch in enumerate(checks):
        measured = measured_all[i]
        cells = []
        for source in sources:
            predicted = predicted_all[source][i]
            cells.append(f"{predicted:.2f} | {100 * (predicted - measured) / measured:+.1f}% | "
                         f"{100 * (scales[source] * predicted - measured) / measured:+.1f}%")
        rows.append(f"| `{arch}` | {macs_all[i] / 1e9:.2f}G | {measured:.2f} | " + " | ".join(cells) + " |")

    # How well MACs alone would rank them, for comparison: Spearman correlation with the measured times.
    def spearman(a, b):
        ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
        return float(np.corrcoef(ra, rb)[0, 1])

    from engine.openvino_runtime import version as openvino_version

    backend = {"pytorch": "PyTorch", "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}[args.backend]
    title = {"pytorch": "PyTorch"}

    def summary(source: str) -> str:
        table, predictor = tables[source], predictors[source]
        errors = np.abs([100 * (p - m) / m for p, m in zip(predicted_all[source], measured_all)])
        rescaled = np.abs([100 * (scales[source] * p - m) / m for p, m in zip(predicted_all[source], measured_all)])
        many = random_archs(space, 5000, random.Random(2))  # what a search pays per prediction
        t0 = time.perf_counter()
        for arch in many:
            predictor(arch)
        per_prediction_us = 1e6 * (time.perf_counter() - t0) / len(many)
        return (f"Layers timed in {title.get(source, backend)}: the table timed {len(table.layers)} distinct layers "
                f"and fitted `measured = {table.scale:.3f} x layer sum {table.offset_ms:+.2f} ms` on "
                f"{len(table.calibration)} sub-networks measured end to end in {backend} ({built_s[source]:.0f} s in "
                f"all). **Mean absolute error {errors.mean():.1f}%**, largest {errors.max():.1f}%, within 10%: "
                f"{int((errors <= 10).sum())} of {len(checks)}; put on the reference as measured now (x {scales[source]:.3f}, "
                f"as the search's pre-filter uses it): **mean {rescaled.mean():.1f}%**, largest {rescaled.max():.1f}%, "
                f"within 10%: {int((rescaled <= 10).sum())} of {len(checks)}; "
                f"**Spearman {spearman(predicted_all[source], measured_all):.3f}**. "
                f"The search's predictor ({'split: a sum of table look-ups' if predictor.split else 'not split'}; "
                f"{predictor_s[source]:.0f} s to build) takes {per_prediction_us:.1f} us per prediction.")

    section = "latency-table" if args.backend == "pytorch" else f"latency-table-{args.backend}"
    if args.layers != "pytorch":
        section += "-layers-compared" if len(sources) > 1 else "-layers-timed-there"
    columns = " | ".join(f"predicted, layers in {title.get(s, backend)} (ms) | error | error on the reference"
                         for s in sources)
    text = "\n".join([
        f"## Latency table: predicted vs measured sub-network latency, {backend}"
        + (", layers timed in PyTorch and in the runtime" if len(sources) > 1 else ""),
        "",
        f"Measured by `python benchmarks/latency_table.py --size {args.size} --backend {args.backend}"
        + (f" --layers {args.layers}" if args.layers != "pytorch" else "") + "` on "
        f"{platform.platform()}, {torch.get_num_threads()} threads, PyTorch {torch.__version__}"
        + (f", ONNX Runtime {onnxruntime.__version__}" if args.backend == "onnxruntime" else "")
        + (f", OpenVINO {openvino_version()}" if args.backend == "openvino" else "")
        + f", CPU, batch 1, {args.size}x{args.size}. "
        f"CycleGAN supernet (ngf 64, the reference's search space); checked on {len(checks)} sub-networks no table "
        f"was fitted on, each measured end to end interleaved with the smallest sub-network (`{reference_arch}`, "
        f"{reference_ms:.2f} ms) in the same rounds, its figure the median per-round ratio times the reference's "
        f"median (the tables' fits are timed the same way). Rank correlation of MACs alone with the measured times "
        f"(Spearman): {spearman(macs_all, measured_all):.3f}.",
        "",
        *[line for source in sources for line in (summary(source), "")],
        f"| sub-network | MACs | measured (ms) | {columns} |",
        "|---|---|---|" + "---|---|---|" * len(sources),
        *rows,
    ])
    publish(args.output, section, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
