"""How well the latency table (``engine/latency_table.py``) predicts sub-network latency: built on a few
sub-networks of the CycleGAN supernet (ngf 64, the reference's search space), then checked against
sub-networks it was not fitted on, each measured end to end with the product's one protocol
(``engine/latency.py``), and the table written into docs/benchmarks.md.

    python benchmarks/latency_table.py [--size 256] [--calibration 24] [--checks 20] [--threads N]
                                       [--backend pytorch|onnxruntime|openvino]

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

    from engine.latency_table import SpacePredictor, cached_table, measured_ms, random_archs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--calibration", type=int, default=24, help="sub-networks the mapping is fitted on")
    parser.add_argument("--checks", type=int, default=20, help="other sub-networks the predictions are checked on")
    parser.add_argument("--backend", choices=("pytorch", "onnxruntime", "openvino"), default="pytorch")
    parser.add_argument("--layers", choices=("pytorch", "backend"), default="pytorch",
                        help="time each layer in PyTorch (default) or in --backend itself")
    args = parse_timing_args(parser)
    family = get_family("cyclegan")
    options = family.options({})
    space = family.search_space(options)
    example = (torch.rand(1, options.input_nc, args.size, args.size) * 2 - 1,)
    torch.manual_seed(0)

    def build(arch):
        return family.build_student(options, arch).eval()

    layer_backend = args.backend if args.layers == "backend" else "pytorch"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        table, _ = cached_table(Path(folder), "cyclegan", options.model_dump_json(), build, example, space,
                                backend=args.backend, calibration_nets=args.calibration,
                                layer_backend=layer_backend)
    built_s = time.perf_counter() - started
    started = time.perf_counter()
    predictor = SpacePredictor(table, build, space, example)
    predictor_s = time.perf_counter() - started
    fitted = {entry["arch"] for entry in table.calibration}
    checks = [arch for arch in random_archs(space, args.calibration + 4 * args.checks, random.Random(1))
              if str(arch) not in fitted][:args.checks]
    rows, errors, measured_all, predicted_all, macs_all = [], [], [], [], []
    for arch in checks:
        predicted = predictor(arch)
        measured = measured_ms(build(arch), example, torch.device("cpu"), backend=args.backend)
        error = 100 * (predicted - measured) / measured
        errors.append(error)
        macs = family.macs(arch, options, (args.size, args.size))
        measured_all.append(measured)
        predicted_all.append(predicted)
        macs_all.append(macs)
        rows.append(f"| `{arch}` | {macs / 1e9:.2f}G | {measured:.2f} | {predicted:.2f} | {error:+.1f}% |")
        print(rows[-1], flush=True)
    absolute = np.abs(errors)
    # What a search pays per prediction: many random sub-networks, each predicted once.
    many = random_archs(space, 5000, random.Random(2))
    t0 = time.perf_counter()
    for arch in many:
        predictor(arch)
    per_prediction_us = 1e6 * (time.perf_counter() - t0) / len(many)
    # How well MACs alone would rank them, for comparison: Spearman correlation with the measured times.
    def spearman(a, b):
        ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
        return float(np.corrcoef(ra, rb)[0, 1])

    from engine.openvino_runtime import version as openvino_version

    backend = {"pytorch": "PyTorch", "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}[args.backend]
    section = "latency-table" if args.backend == "pytorch" else f"latency-table-{args.backend}"
    if layer_backend != "pytorch":
        section += "-layers-timed-there"
    layers_in = {"pytorch": "PyTorch"}.get(layer_backend, backend)
    text = "\n".join([
        f"## Latency table: predicted vs measured sub-network latency, {backend}",
        "",
        f"Measured by `python benchmarks/latency_table.py --size {args.size} --backend {args.backend}"
        + (" --layers backend" if layer_backend != "pytorch" else "") + "` on "
        f"{platform.platform()}, {torch.get_num_threads()} threads, PyTorch {torch.__version__}"
        + (f", ONNX Runtime {onnxruntime.__version__}" if args.backend == "onnxruntime" else "")
        + (f", OpenVINO {openvino_version()}" if args.backend == "openvino" else "")
        + f", CPU, batch 1, {args.size}x{args.size}. "
        f"CycleGAN supernet (ngf 64, the reference's search space); the table timed {len(table.layers)} distinct "
        f"layers (in {layers_in}) and fitted `measured = {table.scale:.3f} x layer sum {table.offset_ms:+.2f} ms` on "
        f"{len(table.calibration)} sub-networks measured end to end in {backend} ({built_s:.0f} s in all); "
        f"checked on {len(checks)} others.",
        "",
        f"Mean absolute error {absolute.mean():.1f}%, largest {absolute.max():.1f}%, within 10%: "
        f"{int((absolute <= 10).sum())} of {len(checks)}. The search's predictor (layers grouped by the arch "
        f"positions they depend on, {'split: a sum of table look-ups' if predictor.split else 'not split'}; "
        f"{predictor_s:.0f} s to build) takes {per_prediction_us:.1f} us per prediction over 5000 random "
        f"sub-networks; measuring one end to end takes about a second. Rank correlation with the measured times "
        f"(Spearman): predicted {spearman(predicted_all, measured_all):.3f}, MACs {spearman(macs_all, measured_all):.3f}.",
        "",
        "| sub-network | MACs | measured (ms) | predicted (ms) | error |",
        "|---|---|---|---|---|",
        *rows,
    ])
    publish(args.output, section, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
