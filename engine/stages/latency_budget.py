"""The run's latency predictor, for a search by latency (``search.latency_budget_ms``) or with predicted
latency recorded (``search.predict_latency``): the workspace's latency table for the run's family, model
options and image size on the chosen device and backend (measured the first time, a few minutes at 256 px on
a CPU; read back afterwards, by every run that shares those conditions), and the fast predictor over the
run's search space.

The supernet stage asks for it before training, so that a latency budget no sub-network can meet is refused
before hours of training rather than after."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.arch import Arch
from engine.config import RunConfig
from engine.errors import ConfigError
from engine.latency_table import LatencyTable, SpacePredictor, build_on_meta, cached_table
from engine.preflight import latency_problem
from engine.settings import Settings
from engine.stages.context import Cancelled, StageContext


def table_folder(settings: Settings) -> Path:
    return settings.workspace / "latency"


@dataclass
class RunLatency:
    """Predicted milliseconds per image of any sub-network of the run's search space."""

    predictor: SpacePredictor
    path: Path  # the cached table

    @property
    def table(self) -> LatencyTable:
        return self.predictor.table

    def __call__(self, arch: Arch) -> float:
        return self.predictor(arch)

    def conditions(self) -> str:
        return self.table.conditions()

    def card(self) -> dict[str, Any]:
        """What a result or a model card says of the prediction: its conditions and where the table is."""
        table = self.table
        return {"device": table.device, "backend": table.backend, "threads": table.threads,
                "size": list(table.size), "table": str(self.path), "fit_scale": table.scale,
                "fit_offset_ms": table.offset_ms, "calibration_nets": len(table.calibration),
                "created": table.provenance.get("created")}


def _check_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"search.latency_device is {device}, but this machine has no usable CUDA GPU; measure "
                          "the latency table where the model will run, or set search.latency_device: cpu")
    if device.startswith("cuda:") and int(device.split(":")[1]) >= torch.cuda.device_count():
        raise ConfigError(f"search.latency_device {device} does not exist: this machine has "
                          f"{torch.cuda.device_count()} GPU(s)")


def _student_builder(config: RunConfig):
    """(build, space, example): a sub-network of the run's space from its arch, the space, an input."""
    family, options = config.family_impl, config.options

    def build(arch: Arch) -> torch.nn.Module:
        return family.build_student(options, arch).eval()

    return build, config.search_space(), family.example_inputs(options, config.size_hw)


def _read_or_measure(ctx: StageContext) -> tuple[LatencyTable, Path]:
    """Rank 0's table for the run's conditions: read from the workspace, or measured and saved there."""
    config = ctx.config
    spec = config.search
    build, space, example = _student_builder(config)

    def progress(done: int, total: int) -> None:
        if ctx.cancel_requested():
            raise Cancelled("stopped while measuring the latency table (it is measured again on resume)")
        if done == 1 or done == total or done % max(1, total // 4) == 0:
            ctx.message(f"latency table: {done}/{total} sub-networks measured end to end")

    folder = table_folder(ctx.settings)
    height, width = config.size_hw
    ctx.message(f"latency table for {spec.latency_device}/{spec.latency_backend} at {width}x{height}: read "
                f"from, or measured once into, {folder}")
    return cached_table(folder, config.family_impl.name, config.options.model_dump_json(), build, example, space,
                        spec.latency_device, spec.latency_backend, calibration_nets=spec.latency_calibration_nets,
                        progress=progress)


def run_latency(ctx: StageContext) -> RunLatency:
    """The predictor for the run's conditions (the table built and cached on first use)."""
    _check_device(ctx.config.search.latency_device)
    build, space, example = _student_builder(ctx.config)
    world = ctx.world
    if world.is_main:  # measured by one process: ranks timing layers side by side would slow each other
        table, path = _read_or_measure(ctx)
        predictor = SpacePredictor(table, build, space, example)
        try:
            table.save(path)  # with the layers the predictor timed, for the next search
        except OSError as exc:
            ctx.message(f"latency table: could not save {path}: {exc}", level="warning")
    shared = world.broadcast((table.to_dict(), str(path)) if world.is_main else None)
    if not world.is_main:  # every layer is in rank 0's table now: nothing is timed here
        table, path = LatencyTable.from_dict(shared[0]), Path(shared[1])
        predictor = SpacePredictor(table, build, space, example)
    latency = RunLatency(predictor, path)
    ctx.message(f"latency table: {len(table.layers)} layers, fit measured = {table.scale:.3f} x layer sum "
                f"{table.offset_ms:+.2f} ms on {len(table.calibration)} sub-networks ({latency.conditions()}); "
                f"{'fast' if predictor.split else 'whole-network'} prediction")
    return latency


def check_latency_budget(ctx: StageContext) -> None:
    """Before training: the table read (or measured, once), and a refusal when not even the smallest
    sub-network meets the latency budget (the pre-flight's rule; it could not check it without a table). Only the smallest is predicted here; the search builds the fast
    predictor itself."""
    spec = ctx.config.search
    if not spec.predicts_latency:
        return
    _check_device(spec.latency_device)
    build, space, example = _student_builder(ctx.config)
    smallest = Arch.smallest(space)
    found = None
    if ctx.world.is_main:
        table, _ = _read_or_measure(ctx)
        found = (table.predict(build_on_meta(build, smallest), example), table.conditions())
    needed, conditions = ctx.world.broadcast(found)
    problem = latency_problem(ctx.config, smallest, needed, conditions)
    if problem is not None:
        raise ConfigError(problem.sentence)
