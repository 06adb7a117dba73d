"""Time mIoU's segmentation network on a candidate's images in ONNX Runtime and in OpenVINO f32 (as
``search.scoring_backend: auto`` uses it once it matched ONNX Runtime), interleaved, and the count at the label
maps' full resolution; write the table into docs/benchmarks.md.

    python benchmarks/segmenter_scoring.py [--onnx drn_d_105.onnx] [--images 20] [--size 512x256]
                                           [--label-size 2048x1024] [--repeats 3]

Without ``--onnx`` a stand-in is timed: a dilated residual network of DRN-D-22's shape (8x downsampling, 512
channels at its widest, 19 classes), random weights (its cost does not depend on them), exported here. The
table says which."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import publish  # noqa: E402


def _block(channels_in: int, channels: int, stride: int = 1, dilation: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(channels_in, channels, 3, stride, dilation, dilation, bias=False),
                         nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                         nn.Conv2d(channels, channels, 3, 1, dilation, dilation, bias=False),
                         nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


def stand_in(classes: int = 19) -> nn.Module:
    """DRN-D-22's shape: 16-32-64-128 channels down to 1/8, then 256 and 512 at dilations 2 and 4, a 1x1
    classifier and the 8x upsampling the reference's DRNSeg ends with."""
    return nn.Sequential(_block(3, 16), _block(16, 32, 2), _block(32, 64, 2), _block(64, 128, 2),
                         _block(128, 256, 1, 2), _block(256, 512, 1, 4), _block(512, 512, 1, 2),
                         nn.Conv2d(512, classes, 1), nn.Upsample(scale_factor=8, mode="bilinear")).eval()


def _size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return height, width


def measure(onnx: Path, images: int, size: tuple[int, int], label_size: tuple[int, int], repeats: int) -> dict:
    from engine.metrics.segmentation import SegmentationNetwork, miou

    torch.manual_seed(0)
    batch = torch.rand(images, 3, *size) * 2 - 1
    truth = [np.random.default_rng(i).integers(0, 19, label_size, dtype=np.uint8) for i in range(images)]
    exact = SegmentationNetwork(onnx, None)
    fast = SegmentationNetwork(onnx, None)
    said = fast.choose_backend("auto", batch[:4])  # what a run would choose here, and why
    from engine import openvino_runtime

    fast.openvino = openvino_runtime.compile_model(onnx)  # timed in OpenVINO whatever the run would choose
    run_size = [t[::label_size[0] // size[0], ::label_size[1] // size[1]] for t in truth]
    ort, ov, full, differences = [], [], [], []
    for _ in range(repeats):  # interleaved: a busy moment slows both
        start = time.perf_counter()
        exact_value = miou(exact, batch, run_size, batch_size=4)
        ort.append(time.perf_counter() - start)
        start = time.perf_counter()
        fast_value = miou(fast, batch, run_size, batch_size=4)
        ov.append(time.perf_counter() - start)
        start = time.perf_counter()
        miou(fast, batch, truth, batch_size=4)
        full.append(time.perf_counter() - start)
        differences.append(abs(fast_value - exact_value) / max(abs(exact_value), 1e-12))
    return {"said": said, "onnxruntime_s": statistics.median(ort), "openvino_s": statistics.median(ov),
            "full_resolution_s": statistics.median(full), "max_relative_difference": max(differences)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", type=Path, default=None)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--size", default="512x256")
    parser.add_argument("--label-size", default="2048x1024")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    size, label_size = _size(args.size), _size(args.label_size)
    with tempfile.TemporaryDirectory() as folder:
        onnx = args.onnx
        if onnx is None:
            from engine.export import export_onnx

            onnx = export_onnx(stand_in(), Path(folder) / "stand_in.onnx", torch.zeros(1, 3, *size), ("image",),
                               ("scores",))
        row = measure(onnx, args.images, size, label_size, args.repeats)
    network = f"`{args.onnx.name}`" if args.onnx else "a stand-in of DRN-D-22's shape (random weights, 19 classes)"
    text = "\n".join([
        "## mIoU's segmentation network: ONNX Runtime and OpenVINO", "",
        f"Measured by `python benchmarks/segmenter_scoring.py --images {args.images} --size {args.size} --label-size "
        f"{args.label_size} --repeats {args.repeats}` on {platform.platform()}, {os.cpu_count()} CPU cores: "
        f"{network} on {args.images} images of {args.size}; median of the repeats, interleaved. The run says: "
        f"{row['said']}.", "",
        "| part | ONNX Runtime | OpenVINO f32 | speed-up | largest relative difference of the mIoU |",
        "|---|---|---|---|---|",
        f"| segmenter and count at the images' size ({args.size}) | {row['onnxruntime_s']:.2f} s "
        f"| {row['openvino_s']:.2f} s | {row['onnxruntime_s'] / row['openvino_s']:.2f}x "
        f"| {row['max_relative_difference']:.1e} |",
        f"| the same counted at the label maps' full resolution ({args.label_size}, the reference's; scores "
        f"resized bilinearly) | | {row['full_resolution_s']:.2f} s | | |", ""])
    publish(args.output, "segmenter-scoring", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
