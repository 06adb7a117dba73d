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
table is cached as JSON in the workspace with its provenance. Only the PyTorch backend is tabled: ONNX
Runtime fuses layers, so its time is not a sum of theirs."""

from __future__ import annotations

import copy
import hashlib
import json
import platform
import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from engine.arch import Arch
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


def time_layer(module: nn.Module, shape: tuple[int, ...], device: torch.device,
               clock: Callable[[], float] = time.perf_counter) -> float:
    """Median milliseconds of one call of ``module`` on a random input of ``shape``."""
    module = _materialised(module, device).eval()
    x = torch.randn(shape, device=device)
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

    def layer_sum(self, net: nn.Module, example: tuple[torch.Tensor, ...], device: torch.device) -> float:
        """The sum of the net's layer times, timing (and keeping) the layers not in the table yet."""
        total = 0.0
        for module, shape in layer_shapes(net, example):
            key = layer_key(module, shape)
            if key not in self.layers:
                self.layers[key] = time_layer(module, shape, device)
            total += self.layers[key]
        return total

    def predict(self, net: nn.Module, example: tuple[torch.Tensor, ...]) -> float:
        """Predicted milliseconds of one forward pass of ``net`` (batch and size of ``example``); ``net`` is
        best built with ``build_on_meta`` (no weights)."""
        return self.scale * self.layer_sum(net, example, torch.device(self.device)) + self.offset_ms

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps({**asdict(self), "size": list(self.size)}, indent=1))

    @classmethod
    def load(cls, path: Path) -> LatencyTable:
        data = json.loads(path.read_text())
        return cls(**{**data, "size": tuple(data["size"])})


def table_path(folder: Path, family: str, options_json: str, device: str, threads: int,
               size: tuple[int, int]) -> Path:
    digest = hashlib.sha256(options_json.encode()).hexdigest()[:10]
    return folder / f"{family}-{digest}-{device.replace(':', '')}-pytorch-{threads}t-{size[0]}x{size[1]}.json"


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


def measured_ms(net: nn.Module, example: tuple[torch.Tensor, ...], device: torch.device,
                time_cap_s: float = 10.0) -> float:
    """A whole network's median latency with the one protocol (engine.latency.measure)."""
    net = net.to(device).eval()
    inputs = tuple(x.to(device) for x in example)

    def run() -> None:
        with torch.no_grad():
            net(*inputs)

    return measure({"net": run}, device=device, time_cap_s=time_cap_s).timings["net"].median_ms


def build_table(family: str, options_json: str, build: Callable[[Arch], nn.Module],
                example: tuple[torch.Tensor, ...], space: list[tuple[int, ...]], device: str = "cpu", *,
                calibration_nets: int = 24, seed: int = 0) -> LatencyTable:
    """Time every layer of ``calibration_nets`` sub-networks (``build(arch)`` makes one) and fit the
    whole-network mapping on those same nets measured end to end."""
    torch_device = torch.device(device)
    size = tuple(example[0].shape[-2:])
    table = LatencyTable(family=family, options=options_json, device=device, backend="pytorch",
                         threads=torch.get_num_threads(), size=size)  # type: ignore[arg-type]
    started = time.perf_counter()
    sums, measured = [], []
    for arch in random_archs(space, calibration_nets, random.Random(seed)):
        net = build(arch)
        sums.append(table.layer_sum(net, example, torch_device))
        measured.append(measured_ms(net, example, torch_device))
        table.calibration.append({"arch": str(arch), "layer_sum_ms": sums[-1], "measured_ms": measured[-1]})
    if len(sums) >= 2 and np.ptp(sums) > 0:
        table.scale, table.offset_ms = (float(v) for v in np.polyfit(sums, measured, 1))
    else:
        table.scale = measured[0] / sums[0] if sums and sums[0] > 0 else 1.0
    table.provenance = {"created": datetime.now(timezone.utc).isoformat(), "torch": torch.__version__,
                        "machine": f"{platform.platform()}, {platform.processor() or platform.machine()}",
                        "seconds": time.perf_counter() - started, "calibration_nets": len(sums), "seed": seed}
    return table


def cached_table(folder: Path, family: str, options_json: str, build: Callable[[Arch], nn.Module],
                 example: tuple[torch.Tensor, ...], space: list[tuple[int, ...]], device: str = "cpu",
                 **kwargs: Any) -> tuple[LatencyTable, Path]:
    """The table for these conditions from ``folder`` (the workspace's ``latency/``), built and saved the
    first time."""
    path = table_path(folder, family, options_json, device, torch.get_num_threads(), tuple(example[0].shape[-2:]))
    if path.is_file():
        try:
            return LatencyTable.load(path), path
        except (ValueError, TypeError, KeyError):
            pass  # damaged or from another version: measured again
    table = build_table(family, options_json, build, example, space, device, **kwargs)
    table.save(path)
    return table, path
