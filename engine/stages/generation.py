"""Where a search generates each candidate's images: eagerly in PyTorch, the supernet run at the candidate's
widths, or the candidate's plain sub-network exported and compiled by OpenVINO (f32, on the CPU).

Unlike the feature network, the candidate changes every time, so OpenVINO's set-up (extract, ONNX export,
compile: 0.6-0.7 s for a 256 px CycleGAN sub-network) is paid per candidate, in part while the previous one is
scored (:meth:`CandidateGenerator.prepare`); it pays off where generation is long (256 px: 50 images in about 3 s
in OpenVINO against 5.4-7 s eagerly on this project's 2-core AMD EPYC, largest difference 1e-5), not at 64 px
(0.5 s eagerly). So ``search.scoring_backend: auto`` decides on this machine when
the search starts: a probe sub-network's images on the held-out split's first images are generated eagerly (where
that alone shows no set-up could be paid back, PyTorch is kept without converting anything), then both ways,
and must agree (images within :data:`IMAGE_TOLERANCE` relative, the score of the probe images within
:data:`SCORE_TOLERANCE` relative); OpenVINO is then used only if its set-up plus generation, as timed on the
probe, would be faster than PyTorch for the whole split. ``openvino`` uses it wherever it is exact, ``pytorch``
never. A candidate OpenVINO cannot convert is generated in PyTorch (said in the log)."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from engine import openvino_runtime
from engine.arch import Arch
from engine.export import write_onnx  # the candidate is exported as the student will be
from engine.metrics.feature_backend import SCORE_TOLERANCE, relative_difference  # one rule for both parity checks
from engine.models.elastic import subnet_of
from engine.stages.evaluate import generate

log = logging.getLogger(__name__)

#: Largest relative difference (max |a - b| / max |b|) between the two backends' images of the probe.
IMAGE_TOLERANCE = 1e-4
#: OpenVINO is chosen by ``auto`` only where its projected time is below this share of PyTorch's: a margin for
#: the timing's noise, so that a near tie keeps the backend that needs no export.
FASTER_BY = 0.9
#: Below this many seconds of eager generation for the whole split, ``auto`` keeps PyTorch without converting
#: anything: no OpenVINO set-up is that short (the smallest measured, a tiny test network's, took 0.26 s), so
#: it could never be paid back.
MIN_SET_UP_S = 0.2


#: The shorter side a candidate is traced at for its export (where its images' sides halve evenly down to it):
#: the exporter runs the network once, and at the images' own size that run was 40% of a 256 px CycleGAN
#: candidate's export (0.48 s against 0.34 s traced at 32 px; ``benchmarks/reference_scoring.py``). The graph is
#: the same at any size, so the model is then set to the images' size before it is compiled; the search's parity
#: check on the probe compares what it generates with PyTorch all the same.
TRACE_SIDE = 32


def trace_examples(example: tuple[torch.Tensor, ...]) -> tuple[tuple[torch.Tensor, ...], list[bool]]:
    """One image of each input, those of the images' height and width subsampled by the largest power of two
    that keeps both sides whole and the shorter at least :data:`TRACE_SIDE`; and which of them were."""
    height, width = example[0].shape[-2:] if example[0].dim() == 4 else (0, 0)
    step = 1
    while height and height % (step * 2) == 0 and width % (step * 2) == 0 and min(height, width) // (step * 2) \
            >= TRACE_SIDE:
        step *= 2
    spatial = [step > 1 and t.dim() == 4 and tuple(t.shape[-2:]) == (height, width) for t in example]
    # Subsampled, not resized: a label map stays one-hot.
    return tuple(t[:1, :, ::step, ::step] if small else t[:1] for t, small in zip(example, spatial)), spatial


class OpenVINOGenerator:
    """One sub-network exported to ONNX in memory (traced at a small size, :func:`trace_examples`) and
    compiled by OpenVINO (f32, any batch size, the images' height and width) for throughput: each image its own
    request, several in flight on the streams the hint makes."""

    def __init__(self, network: nn.Module, example: tuple[torch.Tensor, ...], threads: int | None = None) -> None:
        import openvino as ov

        network = network.eval().cpu()
        try:
            model = self._export(network, example, *trace_examples(example))
        except Exception:  # noqa: BLE001 - a network that does not trace at the small size is traced at its own
            log.debug("the sub-network did not export at a reduced size; exported at the images' size", exc_info=True)
            model = self._export(network, example, tuple(t[:1] for t in example), [False] * len(example))
        self.compiled = openvino_runtime.compile_model_object(model, threads, hint="THROUGHPUT")
        self.queue = ov.AsyncInferQueue(self.compiled, int(self.compiled.get_property(
            "OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self._results: dict[int, np.ndarray] = {}
        # Copied out at once: a request reuses its output buffer for the next image it runs.
        self.queue.set_callback(lambda request, index: self._results.__setitem__(
            index, np.array(request.get_output_tensor(0).data, copy=True)))

    @staticmethod
    def _export(network: nn.Module, example: tuple[torch.Tensor, ...], traced: tuple[torch.Tensor, ...],
                spatial: list[bool]):
        import onnx

        names = tuple(f"input{i}" for i in range(len(example)))
        sides = {2: "height", 3: "width"}
        axes = {name: sides for name, small in zip(names, spatial) if small}
        if any(spatial):
            axes["output"] = sides
        # Traced as the export stage exports the student; the search's parity check on the probe decides.
        buffer = io.BytesIO()
        write_onnx(network, traced, buffer, names, axes=axes)
        graph = onnx.load_from_string(buffer.getvalue())
        # Each input declared at its images' size (batch left free) before OpenVINO reads the graph, so that the
        # compiled model's shapes are static where they matter (3x quicker than reading it, then reshaping it).
        for declared, small, tensor in zip(graph.graph.input, spatial, example):
            if small:
                dims = declared.type.tensor_type.shape.dim
                dims[2].dim_value, dims[3].dim_value = tensor.shape[2:]
        return openvino_runtime.read_model_bytes(graph.SerializeToString())

    def __call__(self, inputs: torch.Tensor, conditioning: tuple[torch.Tensor, ...] = ()) -> torch.Tensor:
        arrays = [t.float().contiguous().numpy() for t in (inputs, *conditioning)]
        self._results.clear()
        for index in range(len(inputs)):
            self.queue.start_async({i: array[index:index + 1] for i, array in enumerate(arrays)}, index)
        self.queue.wait_all()
        return torch.from_numpy(np.concatenate([self._results[i] for i in range(len(inputs))]))


@dataclass(frozen=True)
class GenerationChoice:
    """The backend a search generates candidates' images in, and why, in one line for its log and summary."""

    backend: Literal["openvino", "pytorch"]
    note: str
    image_difference: float | None = None
    score_difference: float | None = None


Compile = Callable[[nn.Module, tuple[torch.Tensor, ...], "int | None"], Callable[..., torch.Tensor]]


class CandidateGenerator:
    """Generates a candidate's images on the chosen backend (``supernet`` in eval mode, its normalisation
    statistics already those of the candidate where a family calibrates them).

    With OpenVINO, the next candidate's set-up (extract, export, compile: single-threaded for the most part) can
    be started ahead (:meth:`prepare`) on a thread of its own while this one's images are scored, on the cores
    the scoring leaves idle: a 256 px CycleGAN candidate then costs about 0.3 s less of its 0.6-0.7 s set-up.
    Only the set-up runs there: the calibration before it (``before``) runs where it is asked, so that the run's
    random stream and the supernet's statistics change in the order they would without it."""

    def __init__(self, supernet: nn.Module, device: torch.device, choice: GenerationChoice,
                 compile_generator: Compile = OpenVINOGenerator) -> None:
        self.supernet, self.device, self.choice = supernet, device, choice
        self.compile_generator = compile_generator
        self.fallbacks = 0  # candidates OpenVINO could not convert, generated in PyTorch
        self.ahead = 0  # candidates whose set-up was started ahead and used
        self._pending: tuple[Arch, Future] | None = None  # a set-up started ahead, for this sub-network
        self._worker: ThreadPoolExecutor | None = None

    def eager(self, arch: Arch, inputs: torch.Tensor, conditioning: tuple[torch.Tensor, ...] = ()) -> torch.Tensor:
        return generate(lambda x, *c: self.supernet(x, *c, arch=arch), inputs, self.device, conditioning)

    def prepare(self, arch: Arch, example: tuple[torch.Tensor, ...], before: Callable[[], None] = lambda: None) -> None:
        """``before()`` (the candidate's calibration, where its family has one) now, then its OpenVINO set-up
        started on a background thread for the next call with ``arch``; nothing where it is generated in PyTorch.
        ``example``: its inputs (any number of images: one of each is traced)."""
        self.settle()
        if self.choice.backend != "openvino":
            return  # PyTorch's candidates are calibrated and generated when asked for, as ever
        before()
        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="candidate-set-up")
        self._pending = (arch, self._worker.submit(self._set_up, arch, tuple(t[:1] for t in example)))

    def settle(self) -> None:
        """Waits for a set-up started ahead and drops it (before anything else reads or changes the supernet,
        and when the search ends)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending[1].exception()  # waited for; a failure was logged by the set-up itself

    def close(self) -> None:
        self.settle()
        if self._worker is not None:
            self._worker.shutdown()
            self._worker = None

    def _set_up(self, arch: Arch, example: tuple[torch.Tensor, ...]) -> Callable[..., torch.Tensor] | None:
        try:
            with torch.no_grad():  # grad mode is per thread: this one's too
                return self.compile_generator(subnet_of(self.supernet, arch), example, torch.get_num_threads())
        except Exception:  # noqa: BLE001 - a sub-network the converter cannot take is still scored, eagerly
            log.warning("OpenVINO could not convert %s", arch, exc_info=True)  # __call__ says what it did instead
            return None

    def __call__(self, arch: Arch, inputs: torch.Tensor, conditioning: tuple[torch.Tensor, ...] = (),
                 before: Callable[[], None] = lambda: None) -> torch.Tensor:
        """``arch``'s images: prepared ahead where :meth:`prepare` was last called with it, else ``before()``
        (its calibration) and its set-up now."""
        pending = self._pending
        if pending is not None and pending[0] == arch:
            self._pending = None
            network = pending[1].result()
            self.ahead += 1
        else:
            self.settle()
            before()
            network = None if self.choice.backend == "pytorch" else self._set_up(arch, (inputs, *conditioning))
        if network is not None:
            try:
                return network(inputs, conditioning)
            except Exception:  # noqa: BLE001 - a run the backend fails is still scored, eagerly
                log.warning("OpenVINO could not generate the images of %s", arch, exc_info=True)
        if self.choice.backend == "openvino":
            self.fallbacks += 1
            log.warning("the images of %s are generated in PyTorch", arch)
        return self.eager(arch, inputs, conditioning)


def choose_generation(supernet: nn.Module, probe_arch: Arch, inputs: torch.Tensor,
                      conditioning: tuple[torch.Tensor, ...], requested: str, device: torch.device,
                      score: Callable[[torch.Tensor], float], split_images: int,
                      compile_generator: Compile = OpenVINOGenerator,
                      clock: Callable[[], float] = time.perf_counter) -> GenerationChoice:
    """``requested`` (``search.scoring_backend``) resolved on this machine for generating candidates: the probe
    sub-network's images of ``inputs`` (a few of the split's) made both ways and compared, images and their
    ``score`` alike; with ``auto``, OpenVINO only where its set-up and generation, timed on the probe, projected
    to ``split_images`` images, beat PyTorch's (by :data:`FASTER_BY`). ``compile_generator`` and ``clock`` are
    parameters so that tests can give a backend that drifts and a clock of their own."""
    if requested == "pytorch":
        return GenerationChoice("pytorch", "images generated in PyTorch (search.scoring_backend: pytorch)")
    if device.type != "cpu":
        return GenerationChoice("pytorch", f"images generated in PyTorch on {device} (OpenVINO runs on the CPU)")
    if not openvino_runtime.available():
        return GenerationChoice("pytorch", "images generated in PyTorch: " + openvino_runtime.MISSING.split(":")[0])
    count, eager = len(inputs), CandidateGenerator(supernet, device, GenerationChoice("pytorch", ""))
    eager.eager(probe_arch, inputs[:1], tuple(c[:1] for c in conditioning))  # its first run pays PyTorch's start
    readings = []
    for _ in range(2):  # the quicker of two: a stall of a busy machine in one reading does not decide the backend
        started = clock()
        exact = eager.eager(probe_arch, inputs, conditioning)
        readings.append(clock() - started)
    eager_image = min(readings) / count
    if requested == "auto" and eager_image * split_images < MIN_SET_UP_S:
        return GenerationChoice("pytorch", f"images generated in PyTorch: {eager_image * split_images:.2f} s for "
                                           f"the split's {split_images} images, less than an OpenVINO set-up")
    try:
        with torch.no_grad():
            compile_generator(subnet_of(supernet, probe_arch), (inputs, *conditioning), torch.get_num_threads())
            started = clock()  # the second set-up is timed: the first also pays the exporter's own start
            network = compile_generator(subnet_of(supernet, probe_arch), (inputs, *conditioning),
                                        torch.get_num_threads())
            set_up = clock() - started
            started = clock()
            fast = network(inputs, conditioning)
            fast_image = (clock() - started) / count
    except Exception as exc:  # noqa: BLE001 - any conversion failure means: keep PyTorch, and say why
        log.warning("OpenVINO could not generate the probe sub-network's images", exc_info=True)
        return GenerationChoice("pytorch", f"images generated in PyTorch: OpenVINO could not convert the "
                                           f"sub-network ({type(exc).__name__}: {exc})")
    image_difference = relative_difference(fast, exact)
    slow_score, fast_score = score(exact), score(fast)
    score_difference = abs(fast_score - slow_score) / max(abs(slow_score), 1e-12)
    measured = f"images {image_difference:.1e}, score {score_difference:.1e} relative"
    if image_difference > IMAGE_TOLERANCE or score_difference > SCORE_TOLERANCE:
        return GenerationChoice("pytorch", f"images generated in PyTorch: OpenVINO {openvino_runtime.version()} "
                                           f"differs from it on {count} images ({measured}; allowed "
                                           f"{IMAGE_TOLERANCE:.0e})", image_difference, score_difference)
    timing = (f"set-up {set_up:.2f} s + {fast_image * 1e3:.0f} ms an image against {eager_image * 1e3:.0f} ms an "
              "image eagerly")
    if requested == "auto" and set_up + fast_image * split_images > FASTER_BY * eager_image * split_images:
        return GenerationChoice("pytorch", f"images generated in PyTorch: OpenVINO is exact here ({measured}) but "
                                           f"not faster for {split_images} images ({timing})",
                                image_difference, score_difference)
    return GenerationChoice("openvino", f"images generated in OpenVINO {openvino_runtime.version()} f32, each "
                                        f"candidate compiled (checked against PyTorch on {count} images: "
                                        f"{measured}; {timing})", image_difference, score_difference)
