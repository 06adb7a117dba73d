"""Runs the stages of a run in order, skipping finished ones, recording status in the store.

A failure marks the stage and the run failed with the error, keeping every finished stage and every
checkpoint; ``resume`` continues from there. A cancel request stops at the next checkpoint."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.config import STAGES, RunConfig
from engine.data.fingerprint import Fingerprint, dataset_fingerprint, describe_changes
from engine.devices import check_device, describe_resolved, resolve_device
from engine.distributed import SINGLE, World, hosts, rank_device
from engine.errors import ConfigError, UserError
from engine.events import (
    EventSink,
    Fanout,
    Message,
    RunFinished,
    RunStarted,
    StageCancelled,
    StageFailed,
    StageFinished,
    StageStarted,
)
from engine.liveness import STALE_AFTER, fail_dead_runs  # noqa: F401  (re-exported)
from engine.files import DISK_FULL, NOT_WRITABLE, disk_error, write_text_atomic
from engine.preflight import preflight, process_problems
from engine.preflight import save as save_preflight
from engine.recorder import Heartbeat, StoreRecorder
from engine.settings import Settings
from engine.stages import export, finetune, search, supernet, teacher
from engine.stages.context import Cancelled, StageContext, stage_result
from engine.stages.data import RunData, describe, prepare_data
from engine.stages.outputs import fingerprint, stage_problem
from engine.store import Status, Store

log = logging.getLogger(__name__)

RUNNERS: dict[str, Callable[[StageContext, Any], dict[str, Any]]] = {
    "teacher": teacher.run, "supernet": supernet.run, "search": search.run, "finetune": finetune.run,
    "export": export.run,
}
#: Stages rank 0 runs alone in a multi-process run (the others wait for the next one).
MAIN_ONLY_STAGES = ("export",)
#: Beside a damaged stage being redone: its artifacts' digests from before (``_check_finished_stages``).
BEFORE_REDO = "before-redo.json"


def run_dir(settings: Settings, run_id: int) -> Path:
    return settings.runs_dir / f"{run_id:05d}"


def _device_choice(config: RunConfig, settings: Settings) -> tuple[str, str]:
    """The device a run names (the setting, unless it is ``auto``: then the run's own) and where it is set."""
    if settings.device == "auto":
        return config.device, "device"
    return settings.device, "the device setting (GCW_DEVICE or the workbench's Settings)"


def _checked_device(config: RunConfig, settings: Settings) -> str:
    """The device a run uses (``auto`` resolved on this machine), refused where this machine cannot run on it,
    naming where it was set."""
    name, field = _device_choice(config, settings)
    resolved = resolve_device(name)
    check_device(resolved, field)
    return resolved


def create_run(config: RunConfig, store: Store, settings: Settings, processes: int = 1, machines: int = 1) -> int:
    """A new run of ``config`` in the store, for ``processes`` per machine on ``machines``; refused when its
    pre-flight finds a problem (each named with its field and fix), stored with the run otherwise: the
    search reads its resolved budget."""
    checked = preflight(config, settings, processes, machines)
    checked.check()
    dataset = config.dataset.sample or str(config.dataset.path)
    run_id = store.create_run(name=config.name, family=config.family, dataset=dataset,
                              config=config.model_dump(mode="json"), stages=list(STAGES))
    folder = run_dir(settings, run_id)
    if folder.exists():
        # Left by a run of an earlier store that had the same id: never resume from its checkpoints.
        stale = folder.with_name(f"{folder.name}.stale-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
        folder.rename(stale)
        log.warning("moved %s, left by an earlier store's run %s, to %s", folder, run_id, stale)
    save_preflight(folder, checked)
    return run_id


def _reset(store: Store, run_id: int, folder: Path, stage: str, reason: str, *, upstream_changed: bool) -> None:
    """Mark ``stage`` to be redone. Its candidates (a search) are forgotten only when what they were scored
    on changed; a search whose own result was damaged reuses every score in the store."""
    forget = stage == "search" and upstream_changed
    store.reset_stage(run_id, stage, reason, forget_candidates=forget)
    # The teacher's reference scores go with the candidates: both were made from what came before.
    stale = ("checkpoint.pt", "checkpoint.previous.pt", "result.json", *((search.TEACHER_REFERENCE,) if forget else ()))
    for name in stale:
        (folder / stage / name).unlink(missing_ok=True)


def _invalidate_after(store: Store, run_id: int, folder: Path, stage: str, reason: str,
                      events: EventSink) -> None:
    """Mark every finished stage after ``stage`` to be redone: they were made from its old output."""
    for later in STAGES[STAGES.index(stage) + 1:]:
        if store.stage_status(run_id, later) is Status.finished:
            _reset(store, run_id, folder, later, reason, upstream_changed=True)
            events(Message(run_id=run_id, level="warning", text=f"[{later}] {reason}; it will be redone"))


def _check_finished_stages(store: Store, run_id: int, folder: Path, events: EventSink) -> dict[str, dict]:
    """Finished stages whose files are gone or damaged are marked not finished (the message names the
    file) so that they are redone; returns their artifacts' digests before the redo, by stage."""
    damaged: dict[str, dict] = {}
    for stage in STAGES:
        before = folder / stage / BEFORE_REDO
        if store.stage_status(run_id, stage) is not Status.finished:
            if before.is_file():  # a redo of a damaged stage that was interrupted
                damaged[stage] = json.loads(before.read_text())
            continue
        problem = stage_problem(store, run_id, folder, stage)
        if problem is None:
            continue
        damaged[stage] = fingerprint(store, run_id, stage)
        reason = f"{stage} was finished but {problem}"
        _reset(store, run_id, folder, stage, reason, upstream_changed=False)
        # Kept on disk until the redo has finished, so a redo that is itself interrupted still compares.
        write_text_atomic(folder / stage / BEFORE_REDO, json.dumps(damaged[stage]))
        events(Message(run_id=run_id, level="warning", text=f"[{stage}] {reason}; it is marked not finished and "
                                                            "will be redone"))
    return damaged


#: Beside a finished stage's result: the dataset's fingerprint as the stage read it.
DATASET_READ = "dataset.json"


def _report_dataset_changes(store: Store, run_id: int, folder: Path, dataset: Fingerprint, redo: str | None,
                            events: EventSink) -> None:
    """Say, for each finished stage, what changed in the dataset since it read it, and what is redone: a
    finished stage keeps its results (they hold for the data it saw) unless ``--redo`` names it or one before."""
    for stage in STAGES:
        recorded = folder / stage / DATASET_READ
        if store.stage_status(run_id, stage) is not Status.finished or not recorded.is_file():
            continue
        try:
            changes = describe_changes(json.loads(recorded.read_text()), dataset)
        except ValueError:
            continue
        if not changes:
            continue
        redone = redo is not None and STAGES.index(stage) >= STAGES.index(redo)
        events(Message(run_id=run_id, level="warning", text=(
            f"[{stage}] the dataset changed since this stage read it: {'; '.join(changes)}; "
            + ("it is redone (--redo) on the dataset as it is now" if redone else
               f"its results are kept (they hold for the data it read); to redo it and the stages after it on the "
               f"dataset as it is now: python main.py resume {run_id} --redo {stage}"))))


def redo_stage(store: Store, settings: Settings, run_id: int, stage: str, events: EventSink) -> None:
    """``resume --redo STAGE``: that stage and every stage after it are redone."""
    folder = run_dir(settings, run_id)
    reason = f"redo of {stage} asked"
    _reset(store, run_id, folder, stage, reason, upstream_changed=True)
    events(Message(run_id=run_id, level="warning", text=f"[{stage}] {reason}; it will be redone"))
    _invalidate_after(store, run_id, folder, stage, reason, events)


def _prepare_process(config: RunConfig, settings: Settings, world: World) -> torch.device:
    """What every process of a run sets up alike: threads, denormals, its device; a global batch that the
    ranks cannot share evenly is refused."""
    problems = process_problems(config, world.size)  # again: a resume may start another number of processes
    if problems:
        raise ConfigError(problems[0].sentence)
    # Denormal floats (weights and activations decaying towards zero late in training) slow CPU
    # arithmetic down by orders of magnitude; flushing them to zero costs nothing measurable.
    torch.set_flush_denormal(True)
    if config.threads or settings.threads:
        torch.set_num_threads(config.threads or settings.threads)  # type: ignore[arg-type]
    return rank_device(world, torch.device(_checked_device(config, settings)))


def _seed_stage(config: RunConfig, stage_name: str) -> None:
    position = STAGES.index(stage_name)
    random.seed(config.seed + position)
    torch.manual_seed(config.seed + position)


@dataclass
class _Where:
    """How far a run got in this process: the stage it is in, and whether it changed anything yet."""

    stage: str = "data"
    changed_anything: bool = False


def execute(run_id: int, settings: Settings, store: Store, events: EventSink,
            cancel_requested: Callable[[], bool] = lambda: False, stop_after: str | None = None,
            redo: str | None = None, world: World = SINGLE) -> dict[str, Any]:
    """Run the unfinished stages of ``run_id``; with ``stop_after``, stop (as a cancel, resumable) once
    that stage has finished; with ``redo``, that stage and the ones after it are redone. A finished stage
    whose files are gone or damaged is redone, and the stages after it too if its output changed. In a
    multi-process run this is rank 0, telling the others (``execute_worker``) each stage to run."""
    fail_dead_runs(store, run_ids=[run_id])  # this process acts on this run alone: no other is reaped here
    run = store.get_run(run_id)
    try:
        config = RunConfig.model_validate(run.config)
    except Exception as exc:
        raise ConfigError(f"run {run_id} has a configuration this version cannot read: {exc}") from None
    folder = run_dir(settings, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    if redo is not None and redo not in STAGES:
        raise ConfigError(f"unknown stage {redo!r} to redo; choose one of: {', '.join(STAGES)}")
    if (redo is None and not world.active and all(store.stage_status(run_id, s) is Status.finished for s in STAGES)
            and not any(stage_problem(store, run_id, folder, s) for s in STAGES)):
        # Nothing to do, and nothing it needs (its dataset may be gone by now) is touched.
        events(Message(run_id=run_id, text=f"run {run_id} has finished and its files are whole; nothing to do "
                                            f"(python main.py resume {run_id} --redo STAGE redoes a stage)"))
        return stage_result(folder, "export")  # type: ignore[return-value]
    before = (run.status, run.error, run.finished_at)
    store.claim_run(run_id)  # atomic: of two resumes at once, the second stops here
    # The store records the run from the same events the caller renders (engine.recorder).
    recorder = StoreRecorder(store, run_id, list(STAGES), config.log_every, run_dir=folder)
    # The caller's renderer (a terminal, the pipe to a window) may die with the window: the run goes on.
    events = Fanout(recorder, events, optional=(events,))
    events(RunStarted(run_id=run_id, name=config.name, stages=list(STAGES)))
    world.broadcast((run_id, run.config))
    where = _Where()
    with Heartbeat(store, run_id):  # on a timer, whatever the stage does
        try:
            _run_stages(RunPlan(run_id, config, settings, store, folder, events, cancel_requested, stop_after, redo,
                                world), where)
        except Cancelled as exc:
            events(StageCancelled(run_id=run_id, stage=where.stage, reason=str(exc)))
            raise
        except BaseException as exc:
            said = _record_failure(exc, store, run_id, before, where, events)
            if said is not None:
                raise said from None
            raise
    summary = stage_result(folder, "export")
    events(RunFinished(run_id=run_id, summary=summary))
    return summary


@dataclass(frozen=True)
class RunPlan:
    """What ``execute`` was asked to do, for the steps it takes."""

    run_id: int
    config: RunConfig
    settings: Settings
    store: Store
    folder: Path
    events: EventSink
    cancel_requested: Callable[[], bool]
    stop_after: str | None
    redo: str | None
    world: World


def _run_stages(plan: RunPlan, where: _Where) -> None:
    """The run's process prepared, its data read, then each unfinished stage in order."""
    run_id, config, store, events, world = plan.run_id, plan.config, plan.store, plan.events, plan.world
    group = hosts(world)
    device = _prepare_process(config, plan.settings, world)
    events(Message(run_id=run_id, text=describe_resolved(_device_choice(config, plan.settings)[0], str(device))))
    if world.active:
        events(Message(run_id=run_id, text=f"{world.size} processes on {len(group)} machine(s): "
                                           f"{', '.join(group)}; each takes {config.batch_size // world.size} "
                                           "image(s) of every batch"))
    # The data before anything is changed: a run that cannot start (its dataset gone) is left as it was.
    data = prepare_data(config, plan.settings, events)
    log.info("run %s data: %s", run_id, describe(data))
    dataset = dataset_fingerprint(data.root)
    _report_dataset_changes(store, run_id, plan.folder, dataset, plan.redo, events)
    where.changed_anything = True
    store.set_run_processes(run_id, world.size, group)
    if plan.redo is not None:
        redo_stage(store, plan.settings, run_id, plan.redo, events)
    damaged = _check_finished_stages(store, run_id, plan.folder, events)
    for position, stage_name in enumerate(STAGES):
        where.stage = stage_name
        last = position == len(STAGES) - 1
        finished = store.stage_status(run_id, stage_name) is Status.finished
        if not finished and plan.cancel_requested():
            # A stage boundary is a checkpoint too: a cancel that came as a stage ended (after its last
            # check) stops the run here, said in its log, instead of letting the next stages run.
            world.broadcast(("stop", stage_name))
            raise Cancelled(f"stopped before {stage_name} as asked; continue with: python main.py resume {run_id}")
        world.broadcast(("skip" if finished else "run", stage_name))
        if finished:
            events(Message(run_id=run_id, text=f"[{stage_name}] already finished; skipped"))
            if stage_name == plan.stop_after and not last:
                # Asked to stop after a stage that had finished before: nothing after it runs.
                world.broadcast(("stop", stage_name))
                raise Cancelled(f"{stage_name} had already finished: stopped after it as asked; continue with: "
                                f"python main.py resume {run_id}")
            continue
        _run_stage(plan, stage_name, device, data, dataset, damaged)
        if stage_name == plan.stop_after and not last:
            world.broadcast(("stop", stage_name))
            raise Cancelled(f"stopped after {stage_name} as asked; continue with: python main.py resume {run_id}")
    world.broadcast(("done", None))


def _run_stage(plan: RunPlan, stage_name: str, device: torch.device, data: RunData, dataset: Fingerprint,
               damaged: dict[str, Any]) -> None:
    """One stage, its result and the dataset it read written; a stage redone for damage whose output changed
    makes the stages after it stale."""
    run_id, folder, events = plan.run_id, plan.folder, plan.events
    _seed_stage(plan.config, stage_name)
    ctx = StageContext(run_id=run_id, stage=stage_name, config=plan.config, settings=plan.settings, store=plan.store,
                       run_dir=folder, events=events, cancel_requested=plan.cancel_requested, device=device,
                       world=plan.world)
    events(StageStarted(run_id=run_id, stage=stage_name))
    started = time.monotonic()
    result = RUNNERS[stage_name](ctx, data)
    ctx.write_result(result)
    write_text_atomic(folder / stage_name / DATASET_READ, json.dumps(dataset))
    events(StageFinished(run_id=run_id, stage=stage_name, seconds=time.monotonic() - started))
    ctx.discard_checkpoint()
    if stage_name in damaged:
        if fingerprint(plan.store, run_id, stage_name) != damaged[stage_name]:
            _invalidate_after(plan.store, run_id, folder, stage_name,
                              f"{stage_name} was redone and its output differs from before", events)
        (folder / stage_name / BEFORE_REDO).unlink(missing_ok=True)


def _record_failure(exc: BaseException, store: Store, run_id: int, before: tuple, where: _Where,
                    events: EventSink) -> UserError | None:
    """The failure recorded (a resume that could not start leaves the run as it was); the error to raise in its
    place, where there is one to say plainly (None: the original, with its traceback)."""
    if isinstance(exc, OSError) and exc.filename and exc.errno in DISK_FULL + NOT_WRITABLE:
        exc = disk_error(exc, Path(exc.filename))  # e.g. the ONNX file or the grid on a full disk
    if isinstance(exc, UserError) and not where.changed_anything and before[0] is not Status.pending:
        # A resume that could not start: the run is as it was (a new run's failure to start is recorded).
        store.restore_run(run_id, *before)
        return UserError(f"{exc}; run {run_id} is unchanged ({before[0].value})")
    error = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
    if isinstance(exc, KeyboardInterrupt):
        error = f"interrupted; resume with: python main.py resume {run_id}"
    events(StageFailed(run_id=run_id, stage=where.stage, error=error))
    return exc if isinstance(exc, UserError) else None


def execute_worker(settings: Settings, world: World, cancel_requested: Callable[[], bool] = lambda: False) -> None:
    """Rank 1 and up of a multi-process run: the stages rank 0 (``execute``) names, in step with it (the
    same collective operations in the same order), with no store and no writes of their own."""
    run_id, config_data = world.broadcast(None)
    config = RunConfig.model_validate(config_data)
    hosts(world)
    device = _prepare_process(config, settings, world)

    def drop(event: Any) -> None:
        pass

    data = prepare_data(config, settings, drop)
    folder = run_dir(settings, run_id)
    while True:
        kind, stage_name = world.broadcast(None)
        if kind in ("done", "stop"):
            return
        if kind == "skip" or stage_name in MAIN_ONLY_STAGES:
            continue
        _seed_stage(config, stage_name)
        ctx = StageContext(run_id=run_id, stage=stage_name, config=config, settings=settings, store=None,  # type: ignore[arg-type]
                           run_dir=folder, events=drop, cancel_requested=cancel_requested, device=device, world=world)
        RUNNERS[stage_name](ctx, data)
