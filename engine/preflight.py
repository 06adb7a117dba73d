"""The one pre-flight of a run: everything that can be known about a configuration before anything is trained,
resolved and checked in one place. The new-run dialog shows its problems beside the fields they name, the CLI's
``config --check`` prints it, ``create_run`` refuses a configuration with problems and stores the resolved budget
with the run (``preflight.json`` in the run's folder), and the search reads the budget from there.

A budget is checked here and nowhere else, with one exception: a latency budget whose latency table has not been
measured yet (nothing to predict with) is checked by the supernet stage once it has measured the table, with
``latency_problem`` from this module."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.arch import Arch
from engine.config import RunConfig
from engine.devices import available_devices, check_device, resolve_device
from engine.errors import ConfigError
from engine.export import backend_unavailable
from engine.files import write_text_atomic
from engine.paper_presets import missing_dataset
from engine.settings import Settings

#: In the run's folder: the pre-flight ``create_run`` made, whose budget the search uses.
PREFLIGHT_FILE = "preflight.json"

#: The ratio a run without a budget is held to (``search.target_ratio``'s default).


@dataclass(frozen=True)
class Problem:
    """Something that keeps a configuration from running: the field to change (dotted, as in the configuration
    file, or ``processes``) and a message that names the fix."""

    field: str
    message: str

    def __str__(self) -> str:
        return self.sentence

    @property
    def sentence(self) -> str:
        """The problem with its field, e.g. "batch_size 4 is the global batch of ..." (a message that names the
        field itself, as a device's, is left as it is)."""
        return self.message if not self.field or self.message.startswith(self.field) else f"{self.field} {self.message}"


@dataclass(frozen=True)
class Preflight:
    """A configuration as the run will see it: the device, the budgets, the search space's extremes and the
    problems found (empty: the run can start)."""

    device: str  # ``auto`` resolved on this machine
    teacher_macs: int
    budget_macs: float | None  # None: no MACs limit (a latency budget alone)
    latency_budget_ms: float | None
    latency_on: str  # the conditions a latency is predicted for, e.g. "cpu, pytorch"
    smallest: str
    smallest_macs: int
    largest: str
    largest_macs: int
    #: ``search.speedup_budget``, and whether the latency budgets are decided on measurement.
    speedup_budget: float | None = None
    latency_measured: bool = False
    #: Predicted by the workspace's latency table for the run's conditions; None before one is measured.
    smallest_ms: float | None = None
    largest_ms: float | None = None
    processes: int = 1  # per machine
    #: False: the teacher was not profiled (``teacher_macs`` 0), so a budget given as a ratio was not checked.
    complete: bool = True
    machines: int = 1
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def largest_ratio(self) -> float:
        """The most compression the search space allows: the teacher's MACs over the smallest sub-network's."""
        return self.teacher_macs / max(1, self.smallest_macs)

    @property
    def latency_checked(self) -> bool:
        """Whether a latency budget could be checked here (else the supernet stage checks it)."""
        return self.latency_budget_ms is None or self.smallest_ms is not None

    def problems_for(self, name: str) -> list[Problem]:
        return [p for p in self.problems if p.field == name]

    def check(self) -> None:
        """Raise the problems as one error naming each field and its fix."""
        if self.problems:
            raise ConfigError("; ".join(p.sentence for p in self.problems))

    def describe(self) -> str:
        """The budget in words, as ``config --check`` shows it."""
        parts = [f"teacher {self.teacher_macs / 1e6:,.1f}M MACs" if self.complete else "teacher not profiled"]
        if self.budget_macs is not None:
            parts.append(f"MACs budget {self.budget_macs / 1e6:,.1f}M"
                         + (f" ({self.teacher_macs / self.budget_macs:.1f}x fewer)" if self.complete else ""))
        if self.latency_budget_ms is not None:
            how = "measured end to end" if self.latency_measured else "predicted"
            parts.append(f"latency budget {self.latency_budget_ms:g} ms {how} on {self.latency_on}")
        if self.speedup_budget is not None:
            parts.append(f"at least {self.speedup_budget:g}x faster than the teacher, measured end to end on "
                         f"{self.latency_on} (checked against the smallest sub-network before the supernet trains)")
        parts.append(f"the smallest sub-network {self.smallest_macs / 1e6:,.1f}M MACs (at most "
                     f"{self.largest_ratio:.1f}x), the largest {self.largest_macs / 1e6:,.1f}M")
        if self.smallest_ms is not None and self.largest_ms is not None:
            parts.append(f"predicted here: {self.smallest_ms:.3g} to {self.largest_ms:.3g} ms")
        elif self.latency_budget_ms is not None:
            parts.append("the latency table for these conditions is measured before the supernet trains "
                         "(minutes at 256 px; then cached), and the latency budget is checked then")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "problems": [asdict(p) for p in self.problems]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preflight:
        return cls(**{**data, "problems": tuple(Problem(**p) for p in data.get("problems", ()))})


_TEACHERS: dict[tuple[str, str, tuple[int, int]], int] = {}
_TOO_BIG: dict[tuple[str, str, tuple[int, int]], str | None] = {}
_CACHE_LOCK = threading.Lock()


def _teacher_key(config: RunConfig) -> tuple[str, str, tuple[int, int]]:
    return config.family, config.options.model_dump_json(), config.size_hw


def _too_big(config: RunConfig) -> str | None:
    """Why training the teacher would not fit in this machine's memory, or None (built on the meta device: cheap,
    and once per family, options and size in a process)."""
    from engine.profile import check_parameters_fit

    key = _teacher_key(config)
    with _CACHE_LOCK:
        if key in _TOO_BIG:
            return _TOO_BIG[key]
    family, options = config.family_impl, config.options
    fields = ", ".join(f"model.{name}" for name in family.options_model.model_fields)
    try:
        check_parameters_fit(lambda: family.build_teacher(options), family.describe_teacher(options),
                             f"set smaller model options ({fields})")
        found = None
    except ConfigError as exc:
        found = str(exc)
    with _CACHE_LOCK:
        _TOO_BIG[key] = found
    return found


def teacher_known(config: RunConfig) -> bool:
    """Whether this process has profiled the configuration's teacher already (a pre-flight is then instant)."""
    with _CACHE_LOCK:
        return _teacher_key(config) in _TEACHERS


def teacher_macs(config: RunConfig) -> int:
    """The teacher's MACs at the run's size: profiled once per family, options and size in a process (a second or
    so at 256 px)."""
    from engine.profile import profile_model

    key = _teacher_key(config)
    with _CACHE_LOCK:
        if key in _TEACHERS:
            return _TEACHERS[key]
    family, options = config.family_impl, config.options
    macs = profile_model(family.build_teacher(options), family.example_inputs(options, config.size_hw)).macs
    with _CACHE_LOCK:
        _TEACHERS[key] = macs
    return macs


def budget_macs(config: RunConfig, teacher: int) -> float | None:
    """The MACs budget a configuration asks for, given the teacher's MACs (None: a latency budget alone)."""
    spec = config.search
    if spec.macs_budget is not None:
        return spec.macs_budget
    if not spec.limits_macs:
        return None
    return teacher / spec.ratio


def _m(macs: float) -> str:
    return f"{macs / 1e6:,.4g}M"


def macs_problem(config: RunConfig, teacher: int, budget: float | None, smallest: Arch,
                 smallest_macs: int) -> Problem | None:
    """A MACs budget (or a ratio) that not even the smallest sub-network of the space meets."""
    if budget is None or smallest_macs <= budget:
        return None
    space = "add narrower widths to supernet.search_space"
    if config.search.macs_budget is not None:
        return Problem("search.macs_budget",
                       f"{_m(budget)} MACs is below the smallest sub-network of the search space ({smallest}: "
                       f"{_m(smallest_macs)} MACs at {config.image_size} px); raise it to at least "
                       f"{_m(smallest_macs)} or {space}")
    return Problem("search.target_ratio",
                   f"{config.search.ratio:g} asks for at most {_m(budget)} MACs, but the "
                   f"smallest sub-network of the search space ({smallest}) needs {_m(smallest_macs)} (the teacher: "
                   f"{_m(teacher)}); choose a ratio of at most {teacher / smallest_macs:.1f} or {space}")


def latency_problem(config: RunConfig, smallest: Arch, predicted_ms: float, conditions: str) -> Problem | None:
    """A latency budget below the smallest sub-network's predicted time."""
    spec = config.search
    budget = spec.latency_budget_ms
    # A measured budget measures what the table puts within the margin (the search's own pre-filter), so the
    # prediction refuses only beyond it.
    allowed = None if budget is None else budget * (1 + spec.latency_margin if spec.measures_latency else 1)
    if allowed is None or predicted_ms <= allowed:
        return None
    beyond = f" (more than {spec.latency_margin:.0%} over, the margin within which candidates are measured)" \
        if spec.measures_latency else ""
    return Problem("search.latency_budget_ms",
                   f"{budget:g} ms is below the smallest sub-network of the search space ({smallest}: predicted "
                   f"{predicted_ms:.3g} ms on {conditions}{beyond}); raise it to at least {predicted_ms:.3g} ms or add "
                   "narrower widths to supernet.search_space")


def speedup_problem(config: RunConfig, smallest: Arch, measured_speedup: float, conditions: str) -> Problem | None:
    """A speed-up budget over the teacher beyond what the smallest sub-network reaches, both measured."""
    wanted = config.search.speedup_budget
    if wanted is None or measured_speedup >= wanted:
        return None
    return Problem("search.speedup_budget",
                   f"{wanted:g}x is more than the smallest sub-network of the search space reaches ({smallest}: "
                   f"{measured_speedup:.3g}x faster than the teacher, measured on {conditions}); lower it to at most "
                   f"{measured_speedup:.3g} or add narrower widths to supernet.search_space")


def _device_problems(config: RunConfig, settings: Settings | None) -> tuple[str, list[Problem]]:
    if settings is not None and settings.device != "auto":
        name, where = settings.device, "the device setting (GCW_DEVICE or the workbench's Settings)"
    else:
        name, where = config.device, "device"
    resolved = resolve_device(name)
    try:
        check_device(resolved, where)
    except ConfigError as exc:
        return resolved, [Problem("device", str(exc))]
    return resolved, []


def process_problems(config: RunConfig, processes: int, machines: int = 1, device: str = "cpu") -> list[Problem]:
    """The global batch split evenly over ``processes`` per machine on ``machines``; one GPU per process where the
    run trains on this machine's GPUs."""
    problems = []
    total = processes * machines
    if config.batch_size % total:
        below, above = config.batch_size // total * total, (config.batch_size // total + 1) * total
        sizes = f"{below} or {above}" if below else f"{above}"
        problems.append(Problem("batch_size", f"{config.batch_size} is the global batch of the {total} processes "
                                f"and must be a multiple of their number; set it to {sizes} or start "
                                f"{config.batch_size if config.batch_size < total else 'fewer'} processes"))
    if device.startswith("cuda"):
        gpus = sum(1 for d in available_devices() if d.startswith("cuda:")) or int("cuda" in available_devices())
        if processes > gpus:
            problems.append(Problem("processes", f"{processes} processes on a GPU run need {processes} GPUs; this "
                                    f"machine has {gpus}: start at most {gpus}, or train on the cpu"))
    return problems


def _predicted_extremes(config: RunConfig, settings: Settings, smallest: Arch,
                        largest: Arch) -> tuple[float, float, str] | None:
    """The workspace's latency table's predictions for the smallest and largest sub-networks (as the search
    predicts: the table's fit over its layers), or None where no table for these conditions exists yet."""
    from engine.latency_table import LatencyTable, build_on_meta, table_path

    spec, family, options = config.search, config.family_impl, config.options
    if spec.latency_device.startswith("cuda") and not torch.cuda.is_available():
        return None
    threads = config.threads or settings.threads or torch.get_num_threads()
    path = table_path(settings.workspace / "latency", family.name, options.model_dump_json(), spec.latency_device,
                      threads, config.size_hw, spec.latency_backend)
    try:
        table = LatencyTable.load(path)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    example = family.example_inputs(options, config.size_hw)

    def predict(arch: Arch) -> float:
        return table.predict(build_on_meta(lambda a: family.build_student(options, a), arch), example)

    return predict(smallest), predict(largest), table.conditions()


def preflight(config: RunConfig, settings: Settings | None = None, processes: int = 1, machines: int = 1,
              profile_teacher: bool = True) -> Preflight:
    """Resolve and check ``config`` for ``processes`` processes on each of ``machines`` (``settings``: the device
    setting and the workspace's latency tables; without them the device is the run's own and no latency is
    predicted). Profiles the teacher once per family, options and size (a second or so at 256 px), else cheap;
    with ``profile_teacher`` False a teacher not profiled yet is not (``complete`` is then False: a budget given as
    a ratio is not checked yet), for a form that checks on every key press."""
    device, problems = _device_problems(config, settings)
    # GPUs are counted only for a device this machine has (else the device's problem says it all).
    problems += process_problems(config, processes, machines, "cpu" if problems else device)
    dataset = missing_dataset(config.protocol, config.dataset.path)
    if dataset is not None:
        problems.append(Problem("dataset.path", dataset.removeprefix("dataset.path ")))
    too_big = _too_big(config)
    if too_big is not None:
        problems.append(Problem("model", too_big))
    known = too_big is None and (profile_teacher or teacher_known(config))
    teacher = teacher_macs(config) if known else 0  # a teacher too big to build is not profiled
    family, options, size = config.family_impl, config.options, config.size_hw
    space = config.search_space()
    smallest, largest = Arch.smallest(space), Arch.largest(space)
    smallest_macs, largest_macs = family.macs(smallest, options, size), family.macs(largest, options, size)
    budget = budget_macs(config, teacher) if known else config.search.macs_budget
    found = macs_problem(config, teacher, budget, smallest, smallest_macs)
    problems += [found] if found else []
    spec = config.search
    smallest_ms = largest_ms = None
    if spec.predicts_latency:
        try:
            check_device(spec.latency_device, "search.latency_device")
        except ConfigError as exc:
            problems.append(Problem("search.latency_device", str(exc)))
        else:
            missing = backend_unavailable(spec.latency_backend)
            if missing:
                problems.append(Problem("search.latency_backend", f"{missing}; install it or choose pytorch or "
                                        "onnxruntime"))
            predicted = _predicted_extremes(config, settings, smallest, largest) if settings is not None else None
            if predicted is not None:
                smallest_ms, largest_ms, conditions = predicted
                found = latency_problem(config, smallest, smallest_ms, conditions)
                problems += [found] if found else []
    return Preflight(device=device, teacher_macs=teacher, budget_macs=budget,
                     latency_budget_ms=spec.latency_budget_ms, latency_on=f"{spec.latency_device}, {spec.latency_backend}",
                     speedup_budget=spec.speedup_budget, latency_measured=spec.measures_latency,
                     smallest=str(smallest), smallest_macs=smallest_macs, largest=str(largest),
                     largest_macs=largest_macs, smallest_ms=smallest_ms, largest_ms=largest_ms, processes=processes,
                     machines=machines, complete=known, problems=tuple(problems))


def save(folder: Path, result: Preflight) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / PREFLIGHT_FILE, json.dumps(result.to_dict(), indent=1))


def stored(folder: Path) -> Preflight | None:
    """The pre-flight stored with a run (None: a run made before they were stored, or the file damaged)."""
    try:
        return Preflight.from_dict(json.loads((folder / PREFLIGHT_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


@dataclass(frozen=True)
class ResolvedBudget:
    """A run's budget as its pre-flight resolved it: what the search holds its candidates to."""

    teacher_macs: int
    macs: float | None  # None: no MACs limit
    #: Predicted-latency limit (None: none, or a limit decided on measurement, which the search resolves itself).
    latency_ms: float | None


def resolved_budget(config: RunConfig, folder: Path) -> ResolvedBudget:
    """A run's budget as its stored pre-flight resolved it (a run made before they were stored: resolved now, by
    the same rule)."""
    found = stored(folder)
    if found is not None:
        teacher, macs, latency = found.teacher_macs, found.budget_macs, found.latency_budget_ms
    else:
        teacher = teacher_macs(config)
        macs, latency = budget_macs(config, teacher), config.search.latency_budget_ms
    return ResolvedBudget(teacher, macs, None if config.search.measures_latency else latency)


def nothing_fits(config: RunConfig, budget: ResolvedBudget, smallest: Arch, smallest_macs: int,
                 predicted_ms: float | None, conditions: str, measured_limit: str | None) -> str:
    """Why not even the smallest sub-network fits the budget, in the pre-flight's words (its field and fix): the
    search's refusal, so that a budget is refused in one way wherever it is checked. ``measured_limit``: the
    words of a limit decided on measurement, which only the search knows."""
    found = macs_problem(config, budget.teacher_macs, budget.macs, smallest, smallest_macs)
    if found is None and measured_limit is not None:
        field = "search.speedup_budget" if config.search.speedup_budget is not None else "search.latency_budget_ms"
        found = Problem(field, f"{measured_limit}: the smallest sub-network of the search space ({smallest}) does "
                               "not meet it, measured end to end; relax it or add narrower widths to "
                               "supernet.search_space")
    if found is None and predicted_ms is not None:
        found = latency_problem(config, smallest, predicted_ms, conditions)
    return found.sentence if found is not None else f"no sub-network of the search space fits the budget ({smallest})"
