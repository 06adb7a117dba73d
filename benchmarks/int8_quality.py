"""OpenVINO's INT8 model (NNCF, as the export makes it: ``engine/openvino_int8.py``) of *trained* generators on
real images: its speed beside OpenVINO f32, timed together with the product's one protocol (interleaved rounds,
median of per-round ratios), and its fidelity to the float model (PSNR on the [0, 1] scale, held-out images).
Random weights (``benchmarks/export_speed.py``) say nothing of fidelity; these are the generators the program
ships (``resources/teachers``), trained on the built-in samples, which are made here at the size asked for.

    python benchmarks/int8_quality.py [--size 256] [--calibration 32] [--test 50] [--time-cap 40] [--threads N]

Writes the table into docs/benchmarks.md (section ``int8-quality``).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from sections import parse_timing_args, publish  # noqa: E402

#: Shipped generator -> its sample (one input image each; GauGAN and MUNIT take other inputs).
GENERATORS = {"cyclegan-day2dusk": ("cyclegan", "day2dusk", "A"),
              "pix2pix-noisy2clean": ("pix2pix", "noisy2clean", "A")}


def _images(folder: Path, count: int, size: int) -> np.ndarray:
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[:count]
    arrays = []
    for path in files:
        image = Image.open(path).convert("RGB")
        if image.size[0] != image.size[1]:  # an aligned pair side by side: its left half is the input
            image = image.crop((0, 0, image.size[0] // 2, image.size[1]))
        image = image.resize((size, size), Image.BICUBIC)
        arrays.append(np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1)
    return np.stack(arrays)


def _split_folder(root: Path, split: str, side: str) -> Path:
    for name in (f"{split}{side}", split):
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(f"no {split} images under {root}")


def main() -> int:
    import yaml

    from engine.data.samples import SampleParams, ensure_sample
    from engine.export import export_onnx
    from engine.families import get_family
    from engine.latency import measure
    from engine.onnx_variants import compare_outputs
    from engine.openvino_int8 import PRESETS, quantize
    from engine.openvino_runtime import Runner, compile_model, first_outputs, version

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--calibration", type=int, default=32, help="training images that calibrate the ranges")
    parser.add_argument("--test", type=int, default=50, help="test images the fidelity is measured on")
    parser.add_argument("--time-cap", type=float, default=40.0, help="seconds of interleaved rounds per generator")
    args = parse_timing_args(parser)
    threads = args.threads or torch.get_num_threads()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, (family_name, sample, side) in GENERATORS.items():
            config = yaml.safe_load((ROOT / "resources" / "teachers" / f"{name}.yaml").read_text())
            family = get_family(family_name)
            options = family.options(config.get("model", {}))
            net = family.build_teacher(options).eval()
            net.load_state_dict(torch.load(ROOT / "resources" / "teachers" / f"{name}.pt", weights_only=True)["G"])
            data = ensure_sample(sample, folder / "data", SampleParams(size=args.size, n_train=args.calibration,
                                                                        n_test=args.test))
            calibration = _images(_split_folder(data.path, "train", side), args.calibration, args.size)
            test = _images(_split_folder(data.path, "test", side), args.test, args.size)
            onnx = export_onnx(net, folder / f"{name}.onnx", torch.from_numpy(test[:1]))
            images = [{"input": test[i:i + 1]} for i in range(len(test))]
            # Each model compiled once for its outputs on every test image.
            float_out = first_outputs(compile_model(onnx, threads), images)
            feed = {"input": test[:1]}
            runners, checks = {"f32": Runner(onnx, feed, threads)}, {}
            for preset in PRESETS:  # both of NNCF's presets, timed in the same rounds
                int8 = quantize(onnx, folder / f"{name}.{preset}.xml", (calibration,), ("input",), threads=threads,
                                preset=preset)
                checks[preset] = compare_outputs(float_out, first_outputs(compile_model(int8.path, threads), images))
                runners[preset] = Runner(int8.path, feed, threads)
            reading = measure(runners, backend="openvino", batch=1, size=(args.size, args.size), threads=threads,
                              time_cap_s=args.time_cap, pairs=[("f32", preset) for preset in PRESETS])
            timings = reading.timings
            for preset in PRESETS:
                ratio, check = reading.ratios[f"f32/{preset}"], checks[preset]
                rows.append(f"| {name} ({family_name}, ngf {options.ngf}) | {preset}"
                            f"{' (the default)' if preset == PRESETS[0] else ''} | {timings['f32'].median_ms:.1f} | "
                            f"{timings[preset].median_ms:.1f} | {ratio.median_ms:.2f}x ({ratio.p10_ms:.2f}-"
                            f"{ratio.p90_ms:.2f}) | {check.psnr_db:.1f} dB | {check.max_abs_diff:.3f} |"
                            + (" machine busy |" if reading.busy else " |"))
                print(rows[-1], flush=True)
    text = "\n".join([
        "## INT8 for OpenVINO on trained generators: speed and fidelity",
        "",
        f"Measured by `python benchmarks/int8_quality.py --size {args.size}` on {platform.platform()}, "
        f"{platform.processor() or platform.machine()}, {threads} threads, OpenVINO {version()}, batch 1, "
        f"{args.size}x{args.size}. The generators the program ships (trained on the built-in samples), quantised by "
        f"NNCF post-training as the export does (ranges from {args.calibration} training images), with each of its "
        "presets (`export.int8_preset`: mixed quantises activations asymmetrically, performance symmetrically); "
        "fidelity on "
        f"{args.test} test images (PSNR of the INT8 output to the float output, [0, 1] scale); f32 and INT8 timed "
        "in the same interleaved rounds (speed-up: median of per-round ratios, p10-p90). Goal (issue 41): >= 1.5x the "
        "speed of OpenVINO f32 at >= 35 dB.",
        "",
        "| generator | NNCF preset | OpenVINO f32 (ms) | OpenVINO INT8 (ms) | INT8 speed-up | PSNR to float | "
        "max \\|diff\\| | |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ])
    publish(args.output, "int8-quality", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
