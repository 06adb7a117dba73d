"""The run's latency predictor, for a search by latency (``search.latency_budget_ms``) or with predicted
latency recorded (``search.predict_latency``): the workspace's latency table for the run's family, model
options and image size on the chosen device and backend (measured the first time, a few minutes at 256 px on
a CPU; read back afterwards, by every run that shares those conditions), and the fast predictor over the
run's search space.

The supernet stage asks for it before training, so that a latency budget no sub-network can meet is refused
before hours of training rather than after."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.arch import Arch
from engine.config import RunConfig
from engine.errors import ConfigError
from engine.latency import LatencyReading
from engine.latency_table import LatencyTable, SpacePredictor, build_on_meta, cached_table
from engine.measured_budget import Baseline, MeasuredBudget, Measurement, on_reference
from engine.preflight import latency_problem, speedup_problem
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


#: Measurements of the run's latency budget, one JSON line each, in the search stage's folder: read back by a
#: resumed search (a sub-network is measured once per run) and by the summary.
MEASURED_FILE = "measured_latency.jsonl"
#: The protocol of one reading for a measured budget: short, as a search may measure thousands of candidates;
#: busy readings are repeated (``engine.measured_budget``).
MEASURE_PROTOCOL: dict[str, Any] = {"warmup": 2, "min_rounds": 10, "max_rounds": 200, "time_cap_s": 2.0,
                                    "tolerance": 0.02}


class PairTimer:
    """Times a network interleaved with the run's reference network (the search space's smallest sub-network)
    end to end in the budget's backend, with the one latency protocol."""

    def __init__(self, config: RunConfig, folder: Path, protocol: dict[str, Any] | None = None) -> None:
        build, space, example = _student_builder(config)
        self.config, self.build, self.example = config, build, example
        self.backend = config.search.latency_backend
        self.device = config.search.latency_device
        self.folder = folder
        self.protocol = {**MEASURE_PROTOCOL, **(protocol or {})}
        self.names = tuple(f"input{i}" if i else "input" for i in range(len(example)))
        self.reference_arch = Arch.smallest(space)
        self.reference = build(self.reference_arch)
        self._reference_onnx: Path | None = None
        self._kept = None  # the reference compiled once (engine.export.KeptCompiled), once its file is written

    def _onnx(self, name: str, net: torch.nn.Module) -> Path:
        from engine.export import export_onnx

        return export_onnx(net, self.folder / f"{name}.onnx", self.example, self.names)

    def reference_onnx(self) -> Path:
        """The reference network as an ONNX file (written once)."""
        if self._reference_onnx is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._reference_onnx = self._onnx("reference", self.reference)
        return self._reference_onnx

    def time(self, name: str, net: torch.nn.Module, pairs: list[tuple[str, str]]) -> LatencyReading:
        from engine.export import KeptCompiled, measure_models

        models = {"reference": self.reference, name: net}
        paths = None
        if self.backend != "pytorch":
            paths = {"reference": self.reference_onnx(), name: self._onnx(name, net)}
            self._kept = self._kept or KeptCompiled(self.reference_onnx())
        return measure_models(models, self.example, self.backend, onnx_paths=paths, device=self.device,
                              input_names=self.names, pairs=pairs, kept=self._kept, **self.protocol)

    def __call__(self, arch: Arch) -> LatencyReading:
        return self.time("candidate", self.build(arch), [("reference", "candidate")])

    def baseline(self, with_teacher: bool, attempts: int = 3) -> tuple[Baseline, str]:
        """The reference's latency and, ``with_teacher``, the teacher's per-round ratio to it.

        Every candidate's latency is this reference's time over a per-round ratio, so a busy moment here spoils
        every decision of the search: a first version took one reading, and a search that started right after
        PyTorch had been working measured the reference 1.7x too slow, so every candidate "measured" over its
        budget (461 measurements where 45 had done). The ratio's spread does not show such a moment (both sides
        slow alike), so ``attempts`` readings are always taken and the reference's fastest median kept (a busy
        machine only ever slows it); the teacher's ratio is the steadiest reading's."""
        if with_teacher:
            teacher = self.config.family_impl.build_teacher(self.config.options).eval()
            net, pairs, key = teacher, [("teacher", "reference")], "teacher/reference"
        else:  # the reference against itself: its own latency, and nothing else measured
            net, pairs, key = self.build(self.reference_arch), [("reference", "copy")], "reference/copy"
        readings = [self.time("teacher" if with_teacher else "copy", net, pairs) for _ in range(max(1, attempts))]
        steady = min(readings, key=lambda reading: reading.ratios[key].spread)
        ratio = steady.ratios[key].median_ms if with_teacher else None
        fastest = min(reading.timings["reference"].median_ms for reading in readings)
        return Baseline(fastest, ratio), steady.conditions()


def read_measurements(path: Path) -> tuple[dict[str, Any] | None, dict[str, Measurement]]:
    """(the baseline line, the measurements by arch) of a run's measurement file; a torn last line (a killed
    process) is skipped."""
    baseline, found = None, {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None, {}
    for line in lines:
        try:
            data = json.loads(line)
            if "baseline" in data:
                baseline = data
            else:
                found[data["arch"]] = Measurement.from_dict(data)
        except (ValueError, KeyError, TypeError):
            continue
    return baseline, found


def _append(path: Path, data: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(data) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _conditions_key(config: RunConfig) -> dict[str, Any]:
    spec = config.search
    return {"backend": spec.latency_backend, "device": spec.latency_device, "threads": torch.get_num_threads(),
            "size": list(config.size_hw)}


def start_measurements(path: Path, baseline: Baseline, conditions: dict[str, Any], words: str) -> None:
    """A new measurement file holding its baseline (earlier measurements, of other conditions, are dropped)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")
    _append(path, {"baseline": vars(baseline), "conditions": conditions, "words": words})


def measured_budget(ctx: StageContext, predictor: RunLatency | None, timer: PairTimer | None = None) -> MeasuredBudget:
    """The run's latency budget decided on measurement: the baseline and the measurements an earlier, interrupted
    search took are reused when they were taken in the same conditions; new ones are appended as they come."""
    spec = ctx.config.search
    path = ctx.stage_dir / MEASURED_FILE
    timer = timer or PairTimer(ctx.config, ctx.stage_dir / "measured-onnx")
    stored, cache = read_measurements(path)
    conditions = _conditions_key(ctx.config)
    with_teacher = spec.speedup_budget is not None
    if stored is not None and stored.get("conditions") == conditions and \
            (not with_teacher or stored["baseline"].get("teacher_over_reference") is not None):
        baseline = Baseline(**stored["baseline"])
        ctx.message(f"latency budget: {len(cache)} measurements of an earlier search reused" if cache else
                    "latency budget: the baseline measured before the supernet trained reused")
    else:
        if stored is not None:
            ctx.message("latency budget: the earlier measurements were taken in other conditions; measuring again")
        cache = {}
        baseline, words = timer.baseline(with_teacher)
        start_measurements(path, baseline, conditions, words)
    predicted, scale, predicted_teacher = None, 1.0, None
    if predictor is not None:
        predicted, scale = on_reference(predictor, timer.reference_arch, baseline.reference_ms)
        if with_teacher:
            # The table's view of the teacher, for the pre-filter: put on the reference's measured time, it is
            # the teacher's measured time (the reference's times the measured ratio).
            predicted_teacher = baseline.teacher_ms
    budget = MeasuredBudget(timer, baseline, budget_ms=spec.latency_budget_ms, speedup=spec.speedup_budget,
                            predicted=predicted, predicted_teacher_ms=predicted_teacher, margin=spec.latency_margin,
                            cache=cache, saved=lambda m: _append(path, m.as_dict()))
    teacher = f", teacher {baseline.teacher_ms:.3g} ms" if baseline.teacher_ms is not None else ""
    ctx.message(f"latency budget: {budget.describe()} on {spec.latency_backend} (reference {timer.reference_arch} "
                f"{baseline.reference_ms:.3g} ms{teacher}); candidates predicted within {spec.latency_margin:.0%} "
                f"of it are measured (the table's predictions x {scale:.2f}, to the reference as measured now)")
    return budget


def check_speedup_budget(ctx: StageContext) -> None:
    """Before training: the teacher measured against the smallest sub-network, and a refusal when even that one is
    not the asked speed-up faster (the pre-flight cannot measure; a new-run check should not take seconds)."""
    spec = ctx.config.search
    if spec.speedup_budget is None or not ctx.world.is_main:
        return
    folder = ctx.run_dir / "search"
    timer = PairTimer(ctx.config, folder / "measured-onnx")
    baseline, conditions = timer.baseline(with_teacher=True)
    # Kept for the search, which would otherwise time the teacher again in the same conditions.
    start_measurements(folder / MEASURED_FILE, baseline, _conditions_key(ctx.config), conditions)
    problem = speedup_problem(ctx.config, timer.reference_arch, baseline.teacher_over_reference, conditions)
    if problem is not None:
        raise ConfigError(problem.sentence)
