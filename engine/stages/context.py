"""What every stage is given: the run's config and folder, the store, an event sink and a cancel flag,
with helpers for progress, checkpoints, artifacts and results."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine import checkpoints
from engine.config import RunConfig
from engine.distributed import SINGLE, World
from engine.errors import TrainingDiverged, UserError
from engine.events import ArtifactWritten, EventSink, Message, StepProgress
from engine.files import result_as_located, result_as_recorded, write_text_atomic
from engine.settings import Settings
from engine.store import Store


def stage_result(run_dir: Path, stage: str) -> dict[str, Any] | None:
    """What a finished stage of the run in ``run_dir`` returned, or None before it has finished."""
    path = run_dir / stage / "result.json"
    return result_as_located(json.loads(path.read_text()), run_dir) if path.is_file() else None


class Cancelled(Exception):
    """The user asked the run to stop; raised at a safe point after a checkpoint was written."""


@dataclass
class StageContext:
    run_id: int
    stage: str
    config: RunConfig
    settings: Settings
    store: Store
    run_dir: Path
    events: EventSink
    cancel_requested: Callable[[], bool]
    device: torch.device
    #: This process's place in a multi-process run (``engine.distributed``): only rank 0 writes (the store,
    #: checkpoints, results); the other ranks have no store (None) and a sink that drops events.
    world: World = SINGLE
    _last_checkpoint: float = field(default_factory=time.monotonic)

    @property
    def stage_dir(self) -> Path:
        path = self.run_dir / self.stage
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def checkpoint_path(self) -> Path:
        return self.stage_dir / "checkpoint.pt"

    @property
    def previous_checkpoint_path(self) -> Path:
        return self.stage_dir / "checkpoint.previous.pt"

    def message(self, text: str, level: str = "info") -> None:
        self.events(Message(run_id=self.run_id, level=level, text=text))

    def begin(self, total_steps: int, step: int = 0) -> None:
        """The stage's length in steps, and where it starts (a resumed stage: its checkpoint's step)."""
        self.events(StepProgress(run_id=self.run_id, stage=self.stage, step=step, total_steps=total_steps))

    def progress(self, step: int, total: int, losses: dict[str, float] | None = None) -> None:
        """Report a finished step (the store records it from the event: ``engine.recorder``). A loss that is
        not finite ends the stage here, before the step's weights can reach a checkpoint."""
        bad = {name: value for name, value in (losses or {}).items() if not math.isfinite(value)}
        if bad:
            spec = getattr(self.config, self.stage, None)
            lr = f"{self.stage}.lr, now {spec.lr:g}" if spec is not None and hasattr(spec, "lr") else "its learning rate"
            raise TrainingDiverged(
                f"the {self.stage} stage diverged at step {step}: {', '.join(f'{k} is {v}' for k, v in bad.items())}; "
                f"lower the learning rate ({lr}) or the recipe's loss weights and start a new run (its weights up "
                "to the last checkpoint are kept in the run folder; resuming this run would diverge again)")
        self.events(StepProgress(run_id=self.run_id, stage=self.stage, step=step, total_steps=total,
                                 losses=losses or {}))

    def checkpoint_due(self) -> bool:
        return time.monotonic() - self._last_checkpoint >= self.config.checkpoint_interval_s

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Write the checkpoint; the one before it is kept as the previous, so a checkpoint damaged on
        disk later (a full disk, a copy cut short) still leaves one to resume from."""
        self._last_checkpoint = time.monotonic()
        if not self.world.is_main:
            return
        checkpoints.save({**state, "rng": checkpoints.rng_state()}, self.checkpoint_path,
                         previous=self.previous_checkpoint_path)
        self.store.update_stage(self.run_id, self.stage, checkpoint_path=str(self.checkpoint_path))

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The latest good checkpoint of the stage (falling back to the previous one when the latest is
        damaged, saying so), with the random state restored; None to start the stage from step 0. The
        stage's series recorded after that step are forgotten: the resumed stage records them again."""
        state = None
        for path in (self.checkpoint_path, self.previous_checkpoint_path):
            if not path.is_file():
                continue
            try:
                state = checkpoints.load_training_state(path, map_location=self.device)
                break
            except UserError as exc:
                self.message(f"{self.stage}: {exc}; trying an earlier checkpoint", level="warning")
        if state is None:
            if self.checkpoint_path.is_file() or self.previous_checkpoint_path.is_file():
                self.message(f"{self.stage}: no usable checkpoint; the stage starts again from step 0", level="warning")
            if self.world.is_main:
                self.store.truncate_metrics(self.run_id, self.stage, after_step=0)
            return None
        checkpoints.set_rng_state({"python": state["rng"]["python"], "torch": state["rng"]["torch"].cpu()})
        if self.world.is_main:
            self.store.truncate_metrics(self.run_id, self.stage, after_step=int(state["step"]))
        self.message(f"resuming {self.stage} from step {state['step']}")
        return state

    def discard_checkpoint(self) -> None:
        """Once the stage has finished and written its weights, its training checkpoints (optimiser states
        and all, the bulk of a run's disk use) are of no further use."""
        self.checkpoint_path.unlink(missing_ok=True)
        self.previous_checkpoint_path.unlink(missing_ok=True)

    def maybe_checkpoint(self, make_state: Callable[[], dict[str, Any]]) -> None:
        """At a step boundary: checkpoint when due, and stop (after checkpointing) when asked to."""
        cancel = self.world.any(self.cancel_requested())  # every rank stops at the same step
        if cancel or (self.world.is_main and self.checkpoint_due()):
            self.save_checkpoint(make_state())
        if cancel:
            raise Cancelled(f"{self.stage} stopped at a checkpoint; resume with: python main.py resume {self.run_id}")

    def artifact(self, path: Path, kind: str) -> None:
        self.events(ArtifactWritten(run_id=self.run_id, stage=self.stage, path=str(path), artifact_kind=kind))

    def save_weights(self, state: dict[str, Any], path: Path) -> Path:
        """A stage's output weights (rank 0 writes them; every rank reads them once the stage has finished)."""
        if self.world.is_main:
            checkpoints.save(state, path)
        return path

    def write_result(self, result: dict[str, Any]) -> None:
        if not self.world.is_main:
            return
        write_text_atomic(self.stage_dir / "result.json",
                          json.dumps(result_as_recorded(result, self.run_dir), indent=1, default=str))

    def result(self, stage: str) -> dict[str, Any]:
        result = stage_result(self.run_dir, stage)
        if result is None:
            raise RuntimeError(f"stage {stage} has no result in {self.run_dir}; it must finish first")
        return result
