"""The engine as the workbench sees it: the one module (beside ``events``, ``settings`` and ``errors``) that
the GUI may import, so that what the GUI relies on is named in one place and the rest of the engine can
change freely. An import-linter contract and ``tests/test_layering.py`` hold the workbench to it.

Runs themselves are started by running the engine's command line in a child process; what is here reads
the store and the run folders, checks configurations, and previews or measures models of a run."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine import __version__ as VERSION
from engine.about import describe as describe_environment
from engine.about import environment
from engine.config import (DEFAULT_TARGET_RATIO, PRESETS, SAMPLE_PRESETS, STAGES, RunConfig, config_lines,
                           default_preset, explain_config, leaves, load_config, resolved_settings)
from engine.data.check import DatasetCheck, check_dataset
from engine.data.images import list_images
from engine.data.layouts import LAYOUTS, detect_layout
from engine.data.samples import SAMPLES, SampleDataset, SampleParams, ensure_sample, is_built, sample_path
from engine.devices import available_devices
from engine.distributed import World
from engine.distributed import join as join_group
from engine.distributed import leave as leave_group
from engine.errors import UserError
from engine.families import FAMILIES
from engine.latency import LatencyReading, faster, speedup
from engine.latency_table import describe_prediction
from engine.latency import describe as describe_latency
from engine.launch import Launch, write_launch_files
from engine.measured_budget import describe_kept
from engine.metric_names import HIGHER_IS_BETTER, PRIMARY_METRICS, primary_metric
from engine.metrics.inception import candidate_paths as inception_candidate_paths
from engine.metrics.inception import find_weights as find_inception_weights
from engine.export import BACKENDS as LATENCY_BACKENDS
from engine.export import backend_unavailable
from engine.onnx_variants import BACKEND_TITLES, describe_variant, slower_note
from engine.liveness import cancel_run, delete_run, mark_failed, not_responding
from engine.panels import COLOUR_TABLE, colour_map, scale_top
from engine.pipeline import create_run, execute, execute_worker, run_dir
from engine.preflight import Preflight, Problem, preflight, resolved_budget, teacher_macs
from engine.run_models import ExportedCandidate, Preview
from engine.run_result import ModelResult, RunResult
from engine.settings import Settings
from engine.stages.context import Cancelled, stage_result
from engine.stages.data import existing_dataset_root
from engine.stages.resources import TeacherReference
from engine.stages.resources import teacher_reference as _teacher_reference
from engine.store import CandidateTable, Curve, RunDetail, RunSummary, Store, new_store_at, open_store
from engine.store.store import store_error

__all__ = [
    # types the window and the command line receive
    "Cancelled", "CandidateTable", "Curve", "DatasetCheck", "ExportedCandidate", "LatencyReading", "Launch", "ListedRun", "ModelResult",
    "NetworkProfile", "Preflight", "Preview", "Problem", "RunConfig", "RunDetail", "RunResult", "RunSummary",
    "SampleDataset", "SampleInfo", "SampleParams", "SearchBudget", "Store", "TeacherReference", "World",
    # registries and names
    "BACKEND_TITLES", "COLOUR_TABLE", "DEFAULT_TARGET_RATIO", "FAMILIES", "HIGHER_IS_BETTER", "LATENCY_BACKENDS", "PRESETS",
    "LAYOUTS", "PRIMARY_METRICS", "VERSION", "SAMPLE_PRESETS", "SAMPLES", "STAGES",
    # datasets
    "build_sample", "check_dataset", "list_samples",
    # configuration and the pre-flight
    "config_lines", "default_preset", "estimate_time", "explain_config", "leaves", "load_config", "paper_preset_descriptions", "preflight",
    "resolved_settings", "teacher_macs",
    # runs and the store
    "act_on_run", "cancel_run", "create_run", "delete_run", "execute", "execute_worker", "join_group", "leave_group",
    "list_runs", "mark_failed", "new_store_at", "not_responding", "open_store", "run_dir",
    "run_result", "search_budget", "search_teacher", "write_launch_files",
    # models of a run: previews, latency, export
    "backend_unavailable", "export_run", "latency_of_run", "measure_latency", "preview", "preview_of_run",
    "profile_network", "sample_images",
    # words and pictures for people
    "colour_map", "describe_environment", "describe_kept", "describe_latency", "describe_prediction",
    "describe_variant", "faster", "primary_metric", "scale_top", "slower_note", "speedup", "store_error",
    # this machine
    "available_devices", "detect_layout", "environment", "find_inception_weights", "inception_candidate_paths",
]


def _readable_result(settings: Settings, run_id: int, stage: str) -> dict[str, Any] | None:
    """A stage's result, or None: not finished, or its file damaged (the next resume redoes the stage and
    says so); a view shows what it can meanwhile."""
    try:
        return stage_result(run_dir(settings, run_id), stage)
    except (OSError, ValueError):
        return None


def run_result(settings: Settings, run_id: int) -> RunResult | None:
    """A finished run's result (its export stage's), or None (not finished, or its file unreadable)."""
    result = _readable_result(settings, run_id, "export")
    try:
        return RunResult.from_dict(result) if result is not None else None
    except (KeyError, TypeError):  # damaged: the next resume redoes the export and says so
        return None


@dataclass(frozen=True)
class SearchBudget:
    """A run's search budget: MACs, latency, or both (None where not limited)."""

    macs: float | None
    latency_ms: float | None = None
    latency_on: str = ""  # how the latency is decided, e.g. "cpu, pytorch" or "cpu, openvino, measured end to end"
    measured: bool = False  # decided on latency measured end to end (else the table's prediction)


def search_budget(store: Store, settings: Settings, run_id: int) -> SearchBudget | None:
    """The budget of a run's search, as its pre-flight resolved it and stored it with the run (one resolution, read
    by the search too; a run made before pre-flights were stored is resolved now, by the same rule). A budget
    decided on measurement has its limit in ms: a speed-up over the teacher becomes one once the search has
    measured the teacher (a measurement, which only the search's result holds)."""
    try:
        config = RunConfig.model_validate(store.get_run(run_id).config)
    except ValueError:  # a run this version cannot read: shown without a budget line
        return None
    spec = config.search
    measured = spec.measures_latency
    on = f"{spec.latency_device}, {spec.latency_backend}" + (", measured end to end" if measured else "")
    resolved = resolved_budget(config, run_dir(settings, run_id))
    limit = resolved.latency_ms
    if measured:
        search = _readable_result(settings, run_id, "search") or {}
        limit = (search.get("measurements") or {}).get("limit_ms", spec.latency_budget_ms)
    return SearchBudget(resolved.macs, limit, on, measured)


def search_teacher(settings: Settings, run_id: int) -> TeacherReference | None:
    """The teacher's MACs and scores on the search split, as the run's search wrote them when it started (None
    before that): the Pareto plot's reference line."""
    return _teacher_reference(run_dir(settings, run_id))


def sample_images(store: Store, settings: Settings, run_id: int, limit: int = 20) -> list[Path]:
    """Up to ``limit`` test inputs of the run's dataset (test/, testA/ or test_label/), where its folder exists."""
    from engine.run_models import RunModels

    try:
        models = RunModels.open(store, settings, run_id)
    except UserError:
        return []
    root = existing_dataset_root(models.config, settings)
    # The test inputs of each layout: aligned pairs, unaligned domain A, label maps.
    for folder in ((root / "test", root / "testA", root / "test_label") if root else ()):
        if folder.is_dir():
            try:
                return list_images(folder)[:limit]
            except UserError:
                return []
    return []


def preview(store: Store, settings: Settings, run_id: int, image: Path, arch: str | None,
            conditioning_seed: int = 0) -> Preview:
    """Input, ground truth (where the image holds one), teacher and student outputs of one image file,
    with the difference levels and both models' MACs and parameters (``engine.run_models.preview``); families
    with conditioning (a style code, say) run both with the one drawn from ``conditioning_seed``."""
    from engine.run_models import RunModels
    from engine.run_models import preview as preview_models

    models = RunModels.open(store, settings, run_id)
    inputs, target = models.open_file(image)
    shown = preview_models(models, inputs, arch, target, conditioning_seed)
    # Which weights are shown, and the candidate's own scores (search split), so that one arch shown as the final
    # student and as a sub-network of the supernet is never one label over two networks.
    candidate = store.candidate(run_id, shown.arch)
    return replace(shown, weights=models.weights_of(arch), final=arch is None,
                   scores=candidate["metrics"] if candidate and arch is not None else None,
                   measured_latency=_measured_in_search(settings, run_id, shown.arch, candidate))


def _measured_in_search(settings: Settings, run_id: int, arch: str, candidate: dict[str, Any] | None) -> str | None:
    """How fast the search measured this sub-network under a latency budget decided on measurement, in words (the
    kept student: its reading and how it was taken); None where it was not measured."""
    search = _readable_result(settings, run_id, "search") or {}
    kept = search.get("latency_measured")
    if kept and kept.get("arch") == arch:
        return f"the search's measurement of the kept student: {describe_kept(kept)}"
    if candidate and candidate.get("measured_ms") is not None:
        return f"the search measured it at {candidate['measured_ms']:.3g} ms end to end (its latency budget's backend)"
    return None


def measure_latency(store: Store, settings: Settings, run_id: int, arch: str | None, device: str,
                    backend: str) -> LatencyReading:
    """Teacher and student of a run timed together with the one latency protocol."""
    from engine.run_models import RunModels, latency

    return latency(RunModels.open(store, settings, run_id), arch, device, backend)


# --- the same, for a process of their own (the window runs model work there: workbench.background.model_process)
_stores: dict[str, Store] = {}


def _store_of(settings: Settings) -> Store:
    """This process's store of ``settings`` (opened once: opening checks the schema)."""
    url = settings.resolved_store_url
    if url not in _stores:
        _stores[url] = open_store(url)
    return _stores[url]


def preview_of_run(settings: Settings, run_id: int, image: Path, arch: str | None,
                   conditioning_seed: int = 0) -> Preview:
    """``preview`` with the run's store found from ``settings`` (picklable arguments, for another process)."""
    return preview(_store_of(settings), settings, run_id, image, arch, conditioning_seed)


def latency_of_run(settings: Settings, run_id: int, arch: str | None, device: str, backend: str) -> LatencyReading:
    """``measure_latency`` with the run's store found from ``settings`` (for another process)."""
    return measure_latency(_store_of(settings), settings, run_id, arch, device, backend)


def estimate_time(config: RunConfig, device: str = "cpu"):
    """How long ``config`` will take on ``device``, from a distillation step and a generated image measured there
    (``engine.stages.time_estimate``; seconds for the paper's models on a CPU)."""
    from engine.stages.time_estimate import estimate

    return estimate(config, device)


def paper_preset_descriptions() -> dict[str, str]:
    """Each paper preset's description (its experiment, the figure to land near, the data and teacher it needs)."""
    from engine.paper_presets import PAPER_PRESETS

    return {name: preset.description() for name, preset in PAPER_PRESETS.items()}


# --- what the command line does (engine.cli parses and prints; the work is here, as for the window) ----------

@dataclass(frozen=True)
class SampleInfo:
    """A built-in sample dataset as ``datasets`` lists it."""

    name: str
    layout: str
    family: str
    description: str
    built: bool
    path: Path


def list_samples(settings: Settings, params: SampleParams | None = None) -> list[SampleInfo]:
    params = params or SampleParams()
    infos = []
    for name in SAMPLES.names():
        spec = SAMPLES.get(name)
        infos.append(SampleInfo(name, spec.layout, spec.family, spec.description,
                                is_built(name, settings.datasets_dir, params),
                                sample_path(name, settings.datasets_dir, params)))
    return infos


def build_sample(name: str, settings: Settings, params: SampleParams, events=None) -> SampleDataset:
    """The sample ``name`` made now (or found made) under the workspace's datasets folder."""
    return ensure_sample(name, settings.datasets_dir, params, events=events)


@dataclass(frozen=True)
class NetworkProfile:
    """A family's teacher or sub-network, in words, with its MACs and parameters at one image size."""

    what: str
    macs: int
    params: int
    height: int
    width: int

    def as_dict(self) -> dict[str, int]:
        return {"macs": self.macs, "params": self.params}


def profile_network(family_name: str, options: dict[str, Any], arch: str | None,
                    image_size: tuple[int, int]) -> NetworkProfile:
    """MACs and parameters of ``family_name``'s teacher (``arch`` None) or sub-network ``arch``, with its model
    ``options``, at ``image_size`` (height, width): refused with the fix where it would not fit this machine."""
    from engine.errors import ConfigError
    from engine.families import get_family
    from engine.families.base import check_image_size
    from engine.profile import check_fits_in_memory, check_parameters_fit, profile_model

    family = get_family(family_name)
    parsed = family.options(options)
    if arch:
        network = family.parse_arch(arch)
        build, what = (lambda: family.build_student(parsed, network)), f"{family.name} sub-network {network}"
    else:
        build, what = (lambda: family.build_teacher(parsed)), family.describe_teacher(parsed)
    check_parameters_fit(build, what, "choose smaller model options (--model) or a narrower --arch", training=False)
    model = build()
    try:
        check_image_size(family, parsed, image_size)
    except ValueError as exc:
        raise ConfigError(f"--image-size: {exc}") from None
    check_fits_in_memory(model, lambda size: family.example_inputs(parsed, size), image_size, what,
                         multiple=family.size_multiple(parsed))
    profile = profile_model(model, family.example_inputs(parsed, image_size))
    return NetworkProfile(what, profile.macs, profile.params, *image_size)


@dataclass(frozen=True)
class ListedRun:
    """A run of the store as ``runs`` lists it, with whether its process has gone silent."""

    run: RunSummary
    not_responding: bool | None


def list_runs(settings: Settings) -> list[ListedRun]:
    """Every run in the store, read only (a reader never fails a run: engine.liveness)."""
    store = open_store(settings.resolved_store_url)
    try:
        runs = store.list_runs()
    finally:
        store.close()
    return [ListedRun(run, not_responding(run)) for run in runs]


def act_on_run(settings: Settings, action: str, run_id: int, keep_files: bool = False) -> str:
    """``delete``, ``cancel`` or ``mark-failed`` run ``run_id``: what was done, in words."""
    store = open_store(settings.resolved_store_url)
    try:
        if action == "delete":
            return delete_run(store, run_id, run_dir(settings, run_id), keep_files=keep_files)
        if action == "cancel":
            return cancel_run(store, run_id)
        if action == "mark-failed":
            return mark_failed(store, run_id, folder=run_dir(settings, run_id))
    finally:
        store.close()
    raise ValueError(f"unknown action {action!r} on a run: delete, cancel or mark-failed")


def export_run(settings: Settings, run_id: int, arch: str | None, out: Path | None = None) -> ExportedCandidate:
    """Sub-network ``arch`` of run ``run_id`` (None: its final student) exported to ONNX with its card, variants
    and latency, into ``out`` (default: the run's exports folder); the run is held meanwhile, so that a delete of
    it is refused."""
    from engine.files import output_folder
    from engine.liveness import hold_run
    from engine.run_models import RunModels, export_candidate
    from engine.stages.data import prepare_data

    out_dir = output_folder(out, "--out") if out else run_dir(settings, run_id) / "exports"
    with hold_run(run_dir(settings, run_id), "export"):
        store = open_store(settings.resolved_store_url)
        try:
            models = RunModels.open(store, settings, run_id)
        finally:
            store.close()
        data = prepare_data(models.config, settings, lambda event: None)
        family, options = models.config.family_impl, models.config.options
        return export_candidate(models, arch, out_dir, data.feed(family, options, "test", 8),
                                calibration=data.feed(family, options, "search"))
