"""mIoU: how well a segmentation network recovers the input label map from the generated image (the paper
scores Cityscapes this way, with DRN-D-105). The user brings the network as an ONNX file: it takes images
as the generators make them, (N, 3, H, W) in [-1, 1] (any normalisation of its own inside), and gives
per-pixel class scores (N, K, H', W'); its class list says which label id of the dataset each of the K
outputs is (Cityscapes: the 19 train ids' label ids). Pixels whose label id is not in the list are not
counted, as the reference's ignore label.

As the reference scores Cityscapes (``metric/cityscapes_mIoU.py``): the network's class scores are resized
bilinearly to the resolution of the label maps they are compared with (the label maps' own, 2048x1024, with
``segmentation.resolution: full``) before the best class is taken, and the mean IoU is in percent."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from engine import openvino_runtime
from engine.errors import ConfigError

#: Largest relative difference between the class scores of OpenVINO and ONNX Runtime on the probe images.
SCORE_TOLERANCE = 1e-4


def read_class_list(value: list[int] | str | None, outputs: int) -> list[int]:
    """The label id of each of the network's ``outputs`` classes: a list, a JSON file holding one, or None
    (output k is label id k)."""
    if value is None:
        return list(range(outputs))
    if isinstance(value, str):
        path = Path(value).expanduser()
        try:
            value = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"segmentation.classes: cannot read the class list {path}: {exc}") from None
        if isinstance(value, dict):
            value = value.get("label_ids")
    if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
        raise ConfigError("segmentation.classes must be a list of label ids (one per output class of the network), "
                          "or a JSON file holding one (or {\"label_ids\": [...]})")
    if len(value) != outputs:
        raise ConfigError(f"segmentation.classes lists {len(value)} label ids, but the network gives {outputs} "
                          "class scores per pixel")
    return list(value)


class SegmentationNetwork:
    """An ONNX segmentation network in ONNX Runtime, on the CPU."""

    def __init__(self, path: Path, classes: list[int] | str | None, threads: int | None = None):
        import onnxruntime as ort

        path = Path(path).expanduser()
        if not path.is_file():
            raise ConfigError(f"segmentation model not found: {path} (segmentation.onnx: an ONNX file taking "
                              "(N, 3, H, W) images in [-1, 1] and giving per-pixel class scores)")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
            raise ConfigError(f"segmentation model {path} cannot be loaded by ONNX Runtime: {exc}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ConfigError(f"segmentation model {path} takes {len(inputs)} inputs; it must take one image batch")
        self.input_name = inputs[0].name
        self.path = path
        self.threads = threads
        self._classes_setting = classes
        self.label_ids: list[int] | None = None
        self.openvino = None  # the network compiled by OpenVINO, once it matched ONNX Runtime here

    def _run(self, images: np.ndarray) -> np.ndarray:
        if self.openvino is not None:
            return openvino_runtime.first_outputs(self.openvino, [{0: images}])
        return self._exact(images)

    def _exact(self, images: np.ndarray) -> np.ndarray:
        """The class scores in ONNX Runtime, the reference the OpenVINO network is checked against."""
        return self.session.run(None, {self.input_name: images})[0]

    def choose_backend(self, requested: str, probe: torch.Tensor, timed=None) -> str:
        """Run in OpenVINO f32 where it is installed, asked for (``auto`` or ``openvino``; ``pytorch`` keeps ONNX
        Runtime, the exact reference), gives the same class scores as ONNX Runtime on ``probe`` (a few of the run's
        real images: within 1e-4 relative, every pixel's class the same) and is faster on them here (timed
        interleaved): the user's segmenter is any network, and OpenVINO is not faster for every one on every CPU.
        What was chosen and why, in words. ``timed(slow, fast)``: how many times faster ``fast`` is (a parameter so
        that tests need no clock)."""
        if requested == "pytorch":
            return "segmenter in ONNX Runtime (search.scoring_backend: pytorch)"
        if not openvino_runtime.available():
            return "segmenter in ONNX Runtime: " + openvino_runtime.MISSING.split(":")[0]
        images = probe.float().cpu().numpy()
        try:
            compiled = openvino_runtime.compile_model(self.path, self.threads)
            fast = openvino_runtime.first_outputs(compiled, [{0: images}])
        except Exception as exc:  # noqa: BLE001 - any conversion failure means: keep ONNX Runtime, and say why
            return f"segmenter in ONNX Runtime: OpenVINO could not run {self.path.name} ({type(exc).__name__}: {exc})"
        exact = self._exact(images)
        difference = float(np.abs(fast - exact).max() / max(float(np.abs(exact).max()), 1e-12))
        same_classes = fast.shape == exact.shape and bool((fast.argmax(1) == exact.argmax(1)).all())
        measured = f"scores {difference:.1e} relative, {'the same' if same_classes else 'other'} classes"
        if difference > SCORE_TOLERANCE or not same_classes:
            return (f"segmenter in ONNX Runtime: OpenVINO {openvino_runtime.version()} differs from it on "
                    f"{len(images)} real images ({measured}; allowed {SCORE_TOLERANCE:.0e})")
        speedup = (timed or _speedup)(lambda: self._exact(images),
                                      lambda: openvino_runtime.first_outputs(compiled, [{0: images}]))
        if speedup <= 1.0:
            return (f"segmenter in ONNX Runtime: OpenVINO {openvino_runtime.version()} matched it ({measured}) but "
                    f"was not faster on this machine ({speedup:.2f}x its speed)")
        self.openvino = compiled
        return (f"segmenter in OpenVINO {openvino_runtime.version()} f32 (checked against ONNX Runtime on "
                f"{len(images)} real images: {measured}; {speedup:.2f}x its speed here)")

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) images in [-1, 1] -> (N, K, H', W') class scores, at the network's own output size."""
        scores = self._run(images.float().cpu().numpy())
        if scores.ndim != 4:
            raise ConfigError(f"segmentation model {self.path} gives an output of shape {scores.shape}; expected "
                              "(N, classes, H, W) class scores")
        if self.label_ids is None:
            self.label_ids = read_class_list(self._classes_setting, scores.shape[1])
        return torch.from_numpy(scores)

    def predict(self, images: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """(N, 3, H, W) images in [-1, 1] -> (N, h, w) label ids at ``size`` (default: the images'), the best
        class of the scores resized bilinearly to it (the reference's ``resize_4d_tensor``)."""
        return self.label_ids_of(self.scores(images), size or tuple(images.shape[2:]))

    def label_ids_of(self, scores: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
        if tuple(scores.shape[2:]) != tuple(size):
            # PIL's bilinear filter, as the reference resizes (antialiased where it shrinks: the same pixels as
            # PIL's at every size tried, up and down).
            scores = F.interpolate(scores.float(), size=tuple(size), mode="bilinear", align_corners=False,
                                   antialias=True)
        return torch.tensor(self.label_ids, dtype=torch.long)[scores.argmax(1)]


def _speedup(slow, fast, rounds: int = 3) -> float:
    """Median over interleaved rounds of the time of ``slow()`` over that of ``fast()``."""
    ratios = []
    for _ in range(rounds):
        start = time.perf_counter()
        slow()
        middle = time.perf_counter()
        fast()
        ratios.append((middle - start) / max(time.perf_counter() - middle, 1e-9))
    return float(np.median(ratios))


def confusion(predicted: torch.Tensor, truth: torch.Tensor, label_ids: list[int]) -> np.ndarray:
    """(K, K) counts of (true class, predicted class) over the pixels whose true label id is listed."""
    lookup = torch.full((max(max(label_ids), int(truth.max()), int(predicted.max())) + 1,), -1, dtype=torch.long)
    lookup[torch.tensor(label_ids)] = torch.arange(len(label_ids))
    t, p = lookup[truth.clamp(min=0).flatten()], lookup[predicted.clamp(min=0).flatten()]
    counted = t >= 0
    # A prediction of an unlisted id cannot happen (the network's outputs are the list); kept for safety.
    p = torch.where(p >= 0, p, torch.zeros_like(p))
    k = len(label_ids)
    return torch.bincount(t[counted] * k + p[counted], minlength=k * k).reshape(k, k).numpy()


def mean_iou(matrix: np.ndarray) -> float:
    """Mean over the classes that occur (in the truth or the prediction) of intersection / union, as the
    reference's nanmean of per-class IoU."""
    intersection = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - intersection
    present = union > 0
    return float((intersection[present] / union[present]).mean()) if present.any() else float("nan")


def miou(network: SegmentationNetwork, images: torch.Tensor, truth: torch.Tensor | Sequence[np.ndarray],
         batch_size: int = 16) -> float:
    """mIoU in percent of ``network`` on generated ``images`` against the label ids ``truth``, over the split:
    (N, H, W) at the images' size, or one (H_i, W_i) array per image at the label maps' own resolution (each
    image's class scores resized to its label map's)."""
    total = None
    for start in range(0, len(images), batch_size):
        scores = network.scores(images[start:start + batch_size])
        for offset in range(len(scores)):
            expected = torch.as_tensor(truth[start + offset]).long()
            predicted = network.label_ids_of(scores[offset:offset + 1], tuple(expected.shape))
            part = confusion(predicted, expected[None], network.label_ids)  # type: ignore[arg-type]
            total = part if total is None else total + part
    return 100 * mean_iou(total) if total is not None else float("nan")


def read_label_maps(paths: Sequence[Path]) -> list[np.ndarray]:
    """Each label map's class ids at its own resolution (1 byte a pixel where the ids allow: Cityscapes' 500 test
    maps at 2048x1024 hold 1 GB)."""
    from PIL import Image

    maps = []
    for path in paths:
        with Image.open(path) as image:
            ids = np.asarray(image)
        if ids.ndim != 2:
            raise ConfigError(f"label map {path} has {ids.shape[2]} channels; expected one class id per pixel")
        maps.append(ids.astype(np.uint8) if ids.size and 0 <= ids.min() and ids.max() < 256 else ids.astype(np.int64))
    return maps


def resolution_words(truth: torch.Tensor | Sequence[np.ndarray]) -> str:
    """Where mIoU is counted, for the summary: the label maps' resolution(s)."""
    sizes = sorted({(int(t.shape[-1]), int(t.shape[-2])) for t in truth})
    shown = ", ".join(f"{w}x{h}" for w, h in sizes[:3]) + (", ..." if len(sizes) > 3 else "")
    return f"percent, at {shown}"
