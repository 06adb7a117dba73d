"""Where a run's feature network (FID's InceptionV3, rFID's random CNN) runs: PyTorch, or OpenVINO f32 on the
CPU, compiled once per process and image shape.

The feature network is the same fixed network for every candidate a search scores, so compiling it once is
paid back after a candidate or two: on this project's 2-core AMD EPYC OpenVINO takes the InceptionV3 features
of 50 images in about 6.5 s against 7.4-10.7 s eagerly, and the rFID network's in half the time
(``benchmarks/candidate_scoring.py``). A backend is used only if it is exact here: before the run scores
anything its features of a few real images are compared with PyTorch's (within :data:`FEATURE_TOLERANCE`
relative) and so is the Fréchet distance they give (within :data:`SCORE_TOLERANCE` relative); a backend
that misses either is said in one line and PyTorch is used."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from engine import openvino_runtime

if TYPE_CHECKING:
    from engine.metrics.features import FeatureExtractor
    from engine.metrics.frechet import RealStatistics

log = logging.getLogger(__name__)

Backend = Literal["auto", "openvino", "pytorch"]
#: Largest relative difference (max |a - b| / max |b|) between the backends' features of the probe images.
FEATURE_TOLERANCE = 1e-4
#: Largest relative difference between the Fréchet distances the two backends' features give.
SCORE_TOLERANCE = 1e-4


#: Images per inference request: a batch is split into requests of this many, run at once on the streams
#: OpenVINO's throughput hint makes. One: 3% quicker than two for InceptionV3's features of 50 images at 64 and
#: 256 px (3.19-3.24 s against 3.29-3.33 s, four alternating readings each, 2-core AMD EPYC), as every stream
#: gets the same number of images (25 requests of two leave one stream idle for the last); the features are the
#: same to the last bit either way, each image being computed on its own.
REQUEST_IMAGES = 1


class OpenVINOFeatures:
    """A feature network compiled by OpenVINO (f32, every batch size) for images of one shape (C, H, W), run
    for throughput: a batch's images split over several requests in flight at once."""

    def __init__(self, network: torch.nn.Module, shape: tuple[int, int, int], threads: int | None = None) -> None:
        import openvino as ov

        self.shape = shape
        example = torch.zeros(1, *shape)
        with warnings.catch_warnings():  # tracing notes the network's shape tests, constant at a fixed shape
            warnings.simplefilter("ignore")
            model = ov.convert_model(network.eval(), example_input=example,
                                     input=[ov.PartialShape([-1, *shape])])
        self.compiled = openvino_runtime.compile_model_object(model, threads, hint="THROUGHPUT")
        self.queue = ov.AsyncInferQueue(self.compiled, int(self.compiled.get_property(
            "OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self._results: dict[int, np.ndarray] = {}
        # Copied out at once: a request reuses its output buffer for the next images it runs.
        self.queue.set_callback(lambda request, start: self._results.__setitem__(
            start, np.array(request.get_output_tensor(0).data, dtype=np.float64, copy=True)))

    def fits(self, batch: torch.Tensor) -> bool:
        return batch.device.type == "cpu" and tuple(batch.shape[1:]) == self.shape

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        images = batch.float().contiguous().numpy()
        self._results.clear()
        for start in range(0, len(images), REQUEST_IMAGES):
            self.queue.start_async({0: images[start:start + REQUEST_IMAGES]}, start)
        self.queue.wait_all()
        return np.concatenate([self._results[start] for start in sorted(self._results)])


@dataclass(frozen=True)
class BackendChoice:
    """The backend a run's features are computed in, and why, in one line for the run's log and summary."""

    backend: Literal["openvino", "pytorch"]
    note: str
    feature_difference: float | None = None
    score_difference: float | None = None


def relative_difference(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """max |a - b| / max |b| (arrays, or tensors that need no gradient: read as arrays)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-12))


def choose_backend(extractor: FeatureExtractor, requested: Backend, probe: torch.Tensor,
                   real: RealStatistics | None, device: str,
                   compile_features=OpenVINOFeatures) -> tuple[FeatureExtractor, BackendChoice]:
    """The extractor to score a run with: ``requested`` resolved on this machine, checked on ``probe`` (a few
    real images at the run's size, as the scorer sees them) against PyTorch, features and distance to ``real``
    alike. ``compile_features`` makes the OpenVINO network (a parameter so tests can give one that drifts)."""
    pytorch = replace(extractor, compiled=None)
    if requested == "pytorch":
        return pytorch, BackendChoice("pytorch", "features in PyTorch (search.scoring_backend: pytorch)")
    if not device.startswith("cpu"):
        return pytorch, BackendChoice("pytorch", f"features in PyTorch on {device} (OpenVINO runs on the CPU)")
    if not openvino_runtime.available():
        return pytorch, BackendChoice("pytorch", "features in PyTorch: " + openvino_runtime.MISSING.split(":")[0])
    if probe.shape[1] == 1:
        probe = probe.repeat(1, 3, 1, 1)
    probe = probe.float()
    try:
        compiled = compile_features(extractor.network, tuple(probe.shape[1:]), torch.get_num_threads())
        fast = compiled(probe)
    except Exception as exc:  # noqa: BLE001 - any conversion failure means: keep PyTorch, and say why
        log.warning("OpenVINO could not compile the feature network", exc_info=True)
        return pytorch, BackendChoice("pytorch", f"features in PyTorch: OpenVINO could not compile the "
                                                 f"{extractor.name} network ({type(exc).__name__}: {exc})")
    exact = pytorch(probe)
    feature_difference = relative_difference(fast, exact)
    score_difference = None
    if real is not None:
        from engine.metrics.frechet import frechet_to_real

        slow_score, fast_score = frechet_to_real(exact, real), frechet_to_real(fast, real)
        score_difference = abs(fast_score - slow_score) / max(abs(slow_score), 1e-12)
    measured = f"features {feature_difference:.1e}" + \
        ("" if score_difference is None else f", score {score_difference:.1e}") + " relative"
    if feature_difference > FEATURE_TOLERANCE or (score_difference or 0.0) > SCORE_TOLERANCE:
        return pytorch, BackendChoice(
            "pytorch", f"features in PyTorch: OpenVINO {openvino_runtime.version()} differs from it on "
                       f"{len(probe)} real images ({measured}; allowed {FEATURE_TOLERANCE:.0e})",
            feature_difference, score_difference)
    return (replace(extractor, compiled=compiled),
            BackendChoice("openvino", f"features in OpenVINO {openvino_runtime.version()} f32 (checked against "
                                      f"PyTorch on {len(probe)} real images: {measured})",
                          feature_difference, score_difference))
