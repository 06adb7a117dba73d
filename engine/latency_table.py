"""Predicted latency of any sub-network from a table of measured layers, so that a search can rank
10^5 candidates by what a user waits for rather than by MACs (issue: search by measured latency).

The table holds, for one device, backend, thread count and image size, the median time of each distinct
layer the supernet's sub-networks are made of: a leaf module (convolution, normalisation, activation,
padding…) with its settings and input shape, timed on its own. A sub-network's prediction is the sum over
its layers, mapped to whole-network time by ``scale * sum + offset`` fitted (least squares) on sub-networks
measured end to end with the one latency protocol (``engine.latency``): that fit absorbs what per-layer
timing misses (the residual additions, memory traffic between layers, the call overhead).

The layers of a candidate are found by building it and running it once on the ``meta`` device (shapes only,
no weights, no arithmetic), so a prediction costs milliseconds. A layer the table has not seen is timed when first met and kept. The
table is cached as JSON in the workspace with its provenance.

For ONNX Runtime and OpenVINO the layers are timed in PyTorch by default (``layer_backend``), and the fit maps
their sum to sub-networks timed end to end in that runtime: it fuses layers (normalisation with activation,
padding into convolution), so its time is not a sum of its own layers', but it grows with the same ones. With
``layer_backend`` the runtime itself, each layer is exported on its own and timed there (compiled once per
distinct layer), so the sum follows the runtime's own kernels.

A search asks for the latency of 10^5 or more sub-networks, many times each (every random draw is checked
against the budget): ``SpacePredictor`` splits the sum by which positions of the arch each layer depends on,
so that a prediction is a handful of table look-ups (microseconds) instead of a build on ``meta``."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import platform
import random
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from engine.arch import Arch
from engine.errors import UserError
from engine.files import write_text_atomic
from engine.latency import measure

#: Timed runs of one layer (after warm-up); the median is kept.
LAYER_RUNS = 15
LAYER_WARMUP = 3


def _leaves(net: nn.Module) -> list[nn.Module]:
    return [module for module in net.modules() if not list(module.children())]


def layer_shapes(net: nn.Module, example: tuple[torch.Tensor, ...]) -> list[tuple[nn.Module, tuple[int, ...]]]:
    """Each leaf module a forward pass of ``net`` calls, with its input shape, in call order. A net built on
    the ``meta`` device (``build_on_meta``) is run as it is: shapes only, no arithmetic, no copy; any other
    net is copied to ``meta`` first, and its own modules are returned."""
    on_meta = all(p.device.type == "meta" for p in net.parameters())
    meta = net if on_meta else copy.deepcopy(net).to("meta")
    meta_leaves = _leaves(meta)
    originals = dict(zip(map(id, meta_leaves), _leaves(net)))
    calls: list[tuple[nn.Module, tuple[int, ...]]] = []

    def record(module: nn.Module, inputs: tuple[Any, ...]) -> None:
        if inputs and isinstance(inputs[0], torch.Tensor):
            calls.append((originals[id(module)], tuple(inputs[0].shape)))

    hooks = [leaf.register_forward_pre_hook(record) for leaf in meta_leaves]
    try:
        with torch.no_grad():
            meta(*(x.to("meta") for x in example))
    finally:
        for hook in hooks:
            hook.remove()
    return calls


def build_on_meta(build: Callable[[Arch], nn.Module], arch: Arch) -> nn.Module:
    """The sub-network with no weights allocated: what a prediction needs, at a fraction of the cost."""
    with torch.device("meta"):
        return build(arch)


def _materialised(module: nn.Module, device: torch.device) -> nn.Module:
    """A layer of a ``meta`` net with real (random, small) weights, to be timed."""
    if all(p.device.type != "meta" for p in [*module.parameters(), *module.buffers()]):
        return module.to(device)
    real = copy.deepcopy(module).to_empty(device=device)
    with torch.no_grad():
        for parameter in real.parameters():
            parameter.normal_(0.0, 0.02)  # not left uninitialised: denormal garbage would time slower
        for name, buffer in real.named_buffers():
            buffer.fill_(1.0 if "var" in name else 0.0)
    return real


def layer_key(module: nn.Module, shape: tuple[int, ...]) -> str:
    return f"{type(module).__name__}({module.extra_repr()}) @ {'x'.join(map(str, shape))}"


def _runtime_layer(module: nn.Module, x: torch.Tensor, backend: str, folder: Path) -> Callable[[], Any]:
    """One layer exported on its own and compiled in ``backend`` (ONNX Runtime or OpenVINO), as a call."""
    from engine.export import export_onnx, onnx_session

    path = export_onnx(module, folder / "layer.onnx", (x,), ("input",))
    feed = {"input": x.numpy()}
    if backend == "openvino":
        from engine.openvino_runtime import Runner

        return Runner(path, feed, torch.get_num_threads())
    session = onnx_session(path, torch.get_num_threads())
    return lambda: session.run(None, feed)


def time_layer(module: nn.Module, shape: tuple[int, ...], device: torch.device,
               clock: Callable[[], float] = time.perf_counter, backend: str = "pytorch") -> float:
    """Median milliseconds of one call of ``module`` on a random input of ``shape``, in PyTorch or, on the CPU,
    exported and run in ``backend``."""
    module = _materialised(module, device).eval()
    x = torch.randn(shape, device=device)
    if backend != "pytorch":
        with tempfile.TemporaryDirectory() as folder:
            run_layer = _runtime_layer(module, x, backend, Path(folder))
            times = []
            for run in range(LAYER_WARMUP + LAYER_RUNS):
                start = clock()
                run_layer()
                if run >= LAYER_WARMUP:
                    times.append((clock() - start) * 1000)
        return statistics.median(times)
    times = []
    with torch.no_grad():
        for run in range(LAYER_WARMUP + LAYER_RUNS):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = clock()
            module(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if run >= LAYER_WARMUP:
                times.append((clock() - start) * 1000)
    return statistics.median(times)


@dataclass
class LatencyTable:
    family: str
    options: str  # the family options, as JSON: they decide the layers
    device: str
    backend: str
    threads: int
    size: tuple[int, int]
    layers: dict[str, float] = field(default_factory=dict)  # layer key -> median ms
    scale: float = 1.0
    offset_ms: float = 0.0
    calibration: list[dict[str, Any]] = field(default_factory=list)  # arch, layer sum, measured, per net
    provenance: dict[str, Any] = field(default_factory=dict)
    #: Where each layer is timed: PyTorch, or ``backend`` itself (a table written before this field: PyTorch).
    layer_backend: str = "pytorch"

    def layer_ms(self, module: nn.Module, shape: tuple[int, ...], key: str, device: torch.device) -> float:
        """One layer's median time, timed (and kept) when the table has not seen it yet."""
        if key not in self.layers:
            self.layers[key] = time_layer(module, shape, device, backend=self.layer_backend)
        return self.layers[key]

    def layer_sum(self, net: nn.Module, example: tuple[torch.Tensor, ...], device: torch.device) -> float:
        """The sum of the net's layer times, timing (and keeping) the layers not in the table yet."""
        return sum(self.layer_ms(module, shape, layer_key(module, shape), device)
                   for module, shape in layer_shapes(net, example))

    def conditions(self) -> str:
        """What the predictions are for, in words."""
        return f"{self.device}, {self.backend}, {self.threads} threads, batch 1, {self.size[1]}x{self.size[0]}"

    def predict(self, net: nn.Module, example: tuple[torch.Tensor, ...]) -> float:
        """Predicted milliseconds of one forward pass of ``net`` (batch and size of ``example``); ``net`` is
        best built with ``build_on_meta`` (no weights)."""
        return self.scale * self.layer_sum(net, example, torch.device(self.device)) + self.offset_ms

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "size": list(self.size)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyTable:
        return cls(**{**data, "size": tuple(data["size"])})

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: Path) -> LatencyTable:
        return cls.from_dict(json.loads(path.read_text()))


BACKENDS = ("pytorch", "onnxruntime", "openvino")


def table_path(folder: Path, family: str, options_json: str, device: str, threads: int,
               size: tuple[int, int], backend: str = "pytorch", layer_backend: str = "pytorch") -> Path:
    digest = hashlib.sha256(options_json.encode()).hexdigest()[:10]
    layers = "" if layer_backend == "pytorch" else f"-layers-{layer_backend}"
    return folder / (f"{family}-{digest}-{device.replace(':', '')}-{backend}-{threads}t-{size[0]}x{size[1]}"
                     f"{layers}.json")


def random_archs(space: list[tuple[int, ...]], count: int, rng: random.Random) -> list[Arch]:
    """``count`` distinct sub-networks: the smallest, the largest, then random ones."""
    archs = [Arch.smallest(space), Arch.largest(space)]
    seen = set(archs)
    for _ in range(100 * count):
        if len(archs) >= count:
            break
        arch = Arch(tuple(rng.choice(choices) for choices in space))
        if arch not in seen:
            seen.add(arch)
            archs.append(arch)
    return archs[:count]


def _timed(nets: dict[str, nn.Module], example: tuple[torch.Tensor, ...], device: torch.device,
           time_cap_s: float, backend: str, pairs: list[tuple[str, str]] | None = None):
    """Whole networks timed together in the same rounds with the one protocol (engine.latency.measure); for ONNX
    Runtime and OpenVINO each net is exported to a temporary file and run there (on the CPU)."""
    if backend in ("onnxruntime", "openvino"):
        from engine.export import export_onnx, measure_onnx, measure_openvino

        names = tuple(f"input{i}" if i else "input" for i in range(len(example)))
        timer = measure_onnx if backend == "onnxruntime" else measure_openvino
        with tempfile.TemporaryDirectory() as folder:
            paths = {name: export_onnx(net, Path(folder) / f"{name}.onnx", example, names)
                     for name, net in nets.items()}
            return timer(paths, example, threads=torch.get_num_threads(), input_names=names, time_cap_s=time_cap_s,
                         pairs=pairs)
    inputs = tuple(x.to(device) for x in example)

    def runner(net: nn.Module) -> Callable[[], None]:
        net = net.to(device).eval()

        def run() -> None:
            with torch.no_grad():
                net(*inputs)
        return run

    return measure({name: runner(net) for name, net in nets.items()}, device=device, time_cap_s=time_cap_s,
                   pairs=pairs)


def measured_ms(net: nn.Module, example: tuple[torch.Tensor, ...], device: torch.device,
                time_cap_s: float = 10.0, backend: str = "pytorch") -> float:
    """A whole network's median latency, timed alone."""
    return _timed({"net": net}, example, device, time_cap_s, backend).timings["net"].median_ms


@dataclass(frozen=True)
class PairedTime:
    """A network timed interleaved with a fixed reference network in the same rounds: the median per-round ratio
    net / reference (which a machine that slows down slows on both sides alike), and the reference's median."""

    over_reference: float
    reference_ms: float


def measured_against(net: nn.Module, reference: nn.Module, example: tuple[torch.Tensor, ...],
                     device: torch.device, time_cap_s: float = 10.0, backend: str = "pytorch") -> PairedTime:
    reading = _timed({"net": net, "reference": reference}, example, device, time_cap_s, backend,
                     pairs=[("net", "reference")])
    return PairedTime(reading.ratios["net/reference"].median_ms, reading.timings["reference"].median_ms)


def on_common_reference(paired: list[PairedTime]) -> list[float]:
    """Milliseconds of networks each timed against the same reference: its per-round ratio times the median of the
    reference's own readings, so that a busy spell during one network's reading moves neither its figure nor
    the others' (timed alone, one reading each, a shared host gave a 3.25 G-MAC network 93.7 ms beside a
    3.16 G-MAC one at 42.8 ms)."""
    reference_ms = statistics.median(p.reference_ms for p in paired)
    return [p.over_reference * reference_ms for p in paired]


def build_table(family: str, options_json: str, build: Callable[[Arch], nn.Module],
                example: tuple[torch.Tensor, ...], space: list[tuple[int, ...]], device: str = "cpu", *,
                backend: str = "pytorch", calibration_nets: int = 24, seed: int = 0,
                progress: Callable[[int, int], None] | None = None, time_cap_s: float = 5.0,
                layer_backend: str = "pytorch", interleaved: bool = True) -> LatencyTable:
    """Time every layer of ``calibration_nets`` sub-networks (``build(arch)`` makes one) and fit the
    whole-network mapping on those same nets measured end to end with ``backend``, each interleaved with the
    space's smallest sub-network (``interleaved``; else each timed alone, as tables were before);
    ``progress(done, total)`` after each net (it may raise to stop)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend != "pytorch" and device != "cpu":
        raise ValueError(f"{backend} latency is measured on the CPU here")
    if layer_backend not in ("pytorch", backend):
        raise ValueError(f"layers are timed in PyTorch or in the table's backend ({backend}), not {layer_backend!r}")
    from engine.export import backend_unavailable

    missing = backend_unavailable(backend)
    if missing:
        raise UserError(missing)
    torch_device = torch.device(device)
    size = tuple(example[0].shape[-2:])
    table = LatencyTable(family=family, options=options_json, device=device, backend=backend,
                         threads=torch.get_num_threads(), size=size,  # type: ignore[arg-type]
                         layer_backend=layer_backend)
    started = time.perf_counter()
    sums, paired, alone = [], [], []
    archs = random_archs(space, calibration_nets, random.Random(seed))
    reference = None
    if interleaved:
        with torch.random.fork_rng():  # its weights do not matter: the run's random stream stays as without it
            reference = build(Arch.smallest(space))
    for done, arch in enumerate(archs, 1):
        net = build(arch)
        sums.append(table.layer_sum(net, example, torch_device))
        if reference is not None:
            paired.append(measured_against(net, reference, example, torch_device, time_cap_s, backend))
        else:
            alone.append(measured_ms(net, example, torch_device, time_cap_s, backend))
        if progress:
            progress(done, len(archs))
    measured = on_common_reference(paired) if reference is not None else alone
    for arch, layer_sum, ms in zip(archs, sums, measured):
        table.calibration.append({"arch": str(arch), "layer_sum_ms": layer_sum, "measured_ms": ms})
    if len(sums) >= 2 and np.ptp(sums) > 0:
        table.scale, table.offset_ms = (float(v) for v in np.polyfit(sums, measured, 1))
    else:
        table.scale = measured[0] / sums[0] if sums and sums[0] > 0 else 1.0
    table.provenance = {"created": datetime.now(timezone.utc).isoformat(), "torch": torch.__version__,
                        "machine": f"{platform.platform()}, {platform.processor() or platform.machine()}",
                        "seconds": time.perf_counter() - started, "calibration_nets": len(sums), "seed": seed,
                        "end_to_end": "interleaved with the smallest sub-network" if interleaved else "alone"}
    return table


def cached_table(folder: Path, family: str, options_json: str, build: Callable[[Arch], nn.Module],
                 example: tuple[torch.Tensor, ...], space: list[tuple[int, ...]], device: str = "cpu",
                 backend: str = "pytorch", **kwargs: Any) -> tuple[LatencyTable, Path]:
    """The table for these conditions from ``folder`` (the workspace's ``latency/``), built and saved the
    first time."""
    path = table_path(folder, family, options_json, device, torch.get_num_threads(), tuple(example[0].shape[-2:]),
                      backend, kwargs.get("layer_backend", "pytorch"))
    if path.is_file():
        try:
            return LatencyTable.load(path), path
        except (ValueError, TypeError, KeyError):
            pass  # damaged or from another version: measured again
    table = build_table(family, options_json, build, example, space, device, backend=backend, **kwargs)
    folder.mkdir(parents=True, exist_ok=True)
    table.save(path)
    return table, path


#: A group of layers depending on more positions than this many combinations is not split out: the
#: predictor then falls back to building each sub-network on ``meta``.
MAX_GROUP_COMBINATIONS = 4096


class SpacePredictor:
    """Predicted latency of any sub-network of one search space, in microseconds per prediction.

    Each layer's key (settings and input shape) depends on a few positions of the arch only (a convolution
    on the widths before and after it). Changing one position at a time from the smallest arch shows which;
    the layers are then grouped by the positions they depend on, and each group's time is tabled over the
    combinations of those positions' choices. A prediction sums one entry per group. Checked, as it is
    built, against the whole-network path (``LatencyTable.predict``) on random sub-networks; where the
    split does not hold (the layers change in number, or a key depends on positions in a way one-at-a-time
    changes do not show) every prediction takes the whole-network path."""

    def __init__(self, table: LatencyTable, build: Callable[[Arch], nn.Module], space: list[tuple[int, ...]],
                 example: tuple[torch.Tensor, ...], checks: int = 8, seed: int = 0):
        self.table, self.build, self.space, self.example = table, build, space, example
        self.device = torch.device(table.device)
        self.groups: list[tuple[tuple[int, ...], dict[tuple[int, ...], float]]] | None = self._split()
        self.constant = 0.0
        if self.groups is not None:
            self.constant = sum(group.get((), 0.0) for positions, group in self.groups if not positions)
            self.groups = [(positions, group) for positions, group in self.groups if positions]
            for arch in random_archs(space, checks, random.Random(seed)):
                if not math.isclose(self._layer_sum_split(arch), self._layer_sum_meta(arch), rel_tol=1e-9,
                                    abs_tol=1e-9):
                    self.groups = None
                    break

    @property
    def split(self) -> bool:
        """Whether predictions take the fast path."""
        return self.groups is not None

    def _keys(self, arch: Arch) -> list[tuple[nn.Module, tuple[int, ...], str]]:
        return [(module, shape, layer_key(module, shape))
                for module, shape in layer_shapes(build_on_meta(self.build, arch), self.example)]

    def _ms(self, module: nn.Module, shape: tuple[int, ...], key: str) -> float:
        return self.table.layer_ms(module, shape, key, self.device)

    def _split(self) -> list[tuple[tuple[int, ...], dict[tuple[int, ...], float]]] | None:
        base = Arch.smallest(self.space)
        base_keys = [key for _, _, key in self._keys(base)]
        depends: list[set[int]] = [set() for _ in base_keys]
        for position, choices in enumerate(self.space):
            for choice in choices:
                if choice == base[position]:
                    continue
                values = list(base.values)
                values[position] = choice
                keys = [key for _, _, key in self._keys(Arch(tuple(values)))]
                if len(keys) != len(base_keys):
                    return None
                for index, (key, base_key) in enumerate(zip(keys, base_keys)):
                    if key != base_key:
                        depends[index].add(position)
        grouped: dict[tuple[int, ...], list[int]] = {}
        for index, positions in enumerate(depends):
            grouped.setdefault(tuple(sorted(positions)), []).append(index)
        if any(math.prod(len(self.space[p]) for p in positions) > MAX_GROUP_COMBINATIONS for positions in grouped):
            return None
        groups = []
        for positions, layers in grouped.items():
            table: dict[tuple[int, ...], float] = {}
            for combination in itertools.product(*(self.space[p] for p in positions)):
                values = list(base.values)
                for p, v in zip(positions, combination):
                    values[p] = v
                calls = self._keys(Arch(tuple(values)))
                if len(calls) != len(base_keys):
                    return None
                table[combination] = sum(self._ms(*calls[i]) for i in layers)
            groups.append((positions, table))
        return groups

    def _layer_sum_split(self, arch: Arch) -> float:
        values = arch.values
        return self.constant + sum(group[tuple(values[p] for p in positions)]
                                   for positions, group in self.groups)  # type: ignore[union-attr]

    def _layer_sum_meta(self, arch: Arch) -> float:
        return sum(self._ms(*call) for call in self._keys(arch))

    def __call__(self, arch: Arch) -> float:
        """Predicted milliseconds of one forward pass of ``arch`` (the table's batch, size, device, backend)."""
        layer_sum = self._layer_sum_split(arch) if self.groups is not None else self._layer_sum_meta(arch)
        return self.table.scale * layer_sum + self.table.offset_ms


def describe_prediction(predicted: dict[str, Any]) -> str:
    """One line for a run's summary: the table's prediction for the student, its conditions, and the time
    measured in the same conditions where there is one (``predicted_latency`` of a summary or card)."""
    height, width = predicted["size"]
    text = (f"predicted latency {predicted['ms']:.3g} ms ({predicted['device']}, {predicted['backend']}, "
            f"{predicted['threads']} threads, {width}x{height}, from the latency table)")
    if predicted.get("measured_ms") is not None:
        text += f"; measured {predicted['measured_ms']:.3g} ms ({100 * predicted['error']:+.1f}%)"
    return text
