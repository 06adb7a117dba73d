"""Read-only access to a finished (or running) run's models for previews, latency and exports of any
candidate: sub-networks of the supernet need no training, so any point can be shown at once."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import checkpoints
from engine.config import RunConfig
from engine.errors import UserError
from engine.export import export_checked, export_onnx, measure_models, measure_teacher_and_student
from engine.families.capabilities import (calibrate, column_title, conditioning_of, conditioning_tooltip,
                                         display_conditioning, display_input, export_input_names, inputs_from_file,
                                         needs_calibration)
from engine.families.weights import load_saved
from engine.models.elastic import subnet_of
from engine.model_card import build_model_card, weights_of
from engine.panels import difference_levels, to_uint8
from engine.onnx_variants import build_variants
from engine.pipeline import run_dir
from engine.latency import LatencyReading
from engine.profile import ModelProfile, profile_model
from engine.settings import Settings
from engine.stages.context import stage_result
from engine.stages.data import open_training_set
from engine.stages.resources import build_supernet, build_teacher
from engine.store import Store


@dataclass
class RunModels:
    run_id: int
    config: RunConfig
    run_dir: Path
    settings: Settings

    @classmethod
    def open(cls, store: Store, settings: Settings, run_id: int) -> RunModels:
        run = store.get_run(run_id)
        try:
            config = RunConfig.model_validate(run.config)
        except ValueError as exc:
            raise UserError(f"run {run_id} has a configuration this version cannot read: {exc}") from None
        return cls(run_id, config, run_dir(settings, run_id), settings)

    def _result(self, stage: str) -> dict[str, Any]:
        result = stage_result(self.run_dir, stage)
        if result is None and not self.run_dir.is_dir():
            # The store still lists the run, but the folder with its weights is gone: say that, not "not finished".
            raise UserError(f"run {self.run_id}'s folder {self.run_dir} is gone (deleted or moved), and its weights "
                            f"with it: put the folder back, or remove the run's record with: python main.py runs "
                            f"delete {self.run_id}")
        if result is None:
            raise UserError(f"run {self.run_id} has no finished {stage} stage yet")
        return result

    def teacher(self) -> torch.nn.Module:
        path = Path(self._result("teacher")["weights"])
        saved = checkpoints.load(path)
        net = build_teacher(self.config)
        load_saved(net, saved["G"], path, "run's teacher", saved.get("settings"), self.config.shape_settings())
        return net.eval()

    def student(self, arch: str | None = None) -> torch.nn.Module:
        """The sub-network ``arch`` of the supernet (weights shared, nothing trained); without an arch, the
        final student of the run (fine-tuned if that was kept)."""
        family, options = self.config.family_impl, self.config.options
        if arch is None:
            path = Path(self._result("finetune")["weights"])
            saved = checkpoints.load(path)
            net = family.build_student(options, family.parse_arch(saved["arch"]))
            load_saved(net, saved["G"], path, "run's student", saved.get("settings"), self.config.shape_settings())
            return net.eval()
        checked = family.check_arch(arch, self.config.search_space())
        supernet = build_supernet(self.config)
        path = Path(self._result("supernet")["weights"])
        saved = checkpoints.load(path)
        load_saved(supernet, saved["supernet"], path, "run's supernet", saved.get("settings"),
                   self.config.shape_settings())
        student = subnet_of(supernet, checked)
        if needs_calibration(family):
            # As the search scored it: its own BatchNorm statistics, re-estimated on training batches.
            calibrate(family, student, None, SimpleNamespace(train=_training_set(self.config, self.settings)),
                               options)
        return student.eval()

    def weights_of(self, arch: str | None) -> str:
        """Which weights ``student(arch)`` shows, in words: the two differ for the same arch (the final student
        was fine-tuned; a sub-network of the supernet was not)."""
        return weights_of(arch is not None, stage_result(self.run_dir, "finetune"))

    def best_arch(self) -> str | None:
        result = stage_result(self.run_dir, "search")
        return result["arch"] if result else None

    def open_file(self, path: Path) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A file as the generator's input at the run's size (the A half of an A|B pair when the run's dataset
        is aligned and the image is twice as wide as tall; a label map's class ids) and the ground truth that
        belongs with it (the B half of such a pair), or None."""
        return inputs_from_file(self.config.family_impl, path, self.config.options, self.config.size_hw)


#: Training sets opened for calibration, by run configuration: a compare view previews one candidate after
#: another, and opening a large folder (every header read) and decoding its calibration images each time
#: would make every preview wait; the family keeps the decoded batches of the last dataset it saw.
_TRAINING_SETS: dict[str, Any] = {}


def _training_set(config: RunConfig, settings: Settings) -> Any:
    key = f"{settings.datasets_dir}|{config.model_dump_json()}"
    if key not in _TRAINING_SETS:
        if len(_TRAINING_SETS) >= 4:
            _TRAINING_SETS.pop(next(iter(_TRAINING_SETS)))
        _TRAINING_SETS[key] = open_training_set(config, settings)
    return _TRAINING_SETS[key]


@dataclass(frozen=True)
class Preview:
    """One image through a run's teacher and student, as the compare view shows it."""

    #: HxWx3 uint8 panels: "input", "teacher", "student", and "ground truth" / "conditioning" where there are.
    images: dict[str, np.ndarray]
    #: HxW mean over channels of |teacher - student| in 8-bit levels (0-255), for a colour scale.
    difference_levels: np.ndarray
    arch: str  # the student's
    columns: list[str]  # the family's compare columns, in order
    titles: dict[str, str]  # what the family calls each column (MUNIT's "content", "style")
    conditioning_tooltip: str
    conditioning_seed: int | None  # the seed of the conditioning both models ran with (None: the family has none)
    teacher_profile: ModelProfile
    student_profile: ModelProfile
    weights: str = "student"  # which weights the student has, in words
    final: bool = False  # the run's final student (else a sub-network of the supernet)
    scores: dict[str, float] | None = None  # a candidate's scores in the search (search split)
    measured_latency: str | None = None  # how fast the search measured it, in words (a measured latency budget)

    @property
    def input_title(self) -> str:
        return self.titles.get("input", "input")


@torch.no_grad()
def preview(models: RunModels, inputs: torch.Tensor, arch: str | None,
            target: torch.Tensor | None = None, conditioning_seed: int = 0) -> Preview:
    """Input, teacher and student outputs (and the ground truth when given) as HxWx3 uint8 arrays; the
    difference teacher - student as levels for a colour scale; with MACs and params. A family with conditioning
    (style codes) runs both models with the same one, drawn from ``conditioning_seed``, and shows it as the
    "conditioning" image (titled by the family: MUNIT's "style")."""
    family, options = models.config.family_impl, models.config.options
    teacher, student = models.teacher(), models.student(arch)
    conditioning = conditioning_of(family, options, len(inputs), conditioning_seed)
    t_out, s_out = teacher(inputs, *conditioning), student(inputs, *conditioning)
    example = family.example_inputs(options, models.config.size_hw)
    images = {"input": to_uint8(display_input(family, inputs, options))[0], "teacher": to_uint8(t_out)[0],
              "student": to_uint8(s_out)[0]}
    if target is not None:
        images["ground truth"] = to_uint8(target)[0]
    shown = display_conditioning(family, conditioning, options, models.config.size_hw)
    if shown is not None:
        images["conditioning"] = to_uint8(shown)[0]
    return Preview(images=images, difference_levels=difference_levels(t_out, s_out)[0], arch=str(student.arch),
                   columns=list(family.compare_columns),
                   titles={c: column_title(family, c) for c in family.compare_columns},
                   conditioning_tooltip=conditioning_tooltip(family),
                   conditioning_seed=conditioning_seed if conditioning else None,
                   teacher_profile=profile_model(teacher, example), student_profile=profile_model(student, example))


def latency(models: RunModels, arch: str | None, device: str = "cpu", backend: str = "pytorch",
            work_dir: Path | None = None) -> LatencyReading:
    """Teacher and student latency (batch 1) on ``device`` with ``backend``, measured together with the one
    protocol (medians with spread, the per-round speed-up, the conditions)."""
    family = models.config.family_impl
    example = family.example_inputs(models.config.options, models.config.size_hw)
    nets = {"teacher": models.teacher(), "student": models.student(arch)}
    input_names = export_input_names(family, models.config.options)
    onnx_paths = None
    if backend in ("onnxruntime", "openvino"):
        work_dir = work_dir or models.run_dir / "inspect"
        onnx_paths = {k: export_onnx(n, work_dir / f"{k}.onnx", example, input_names, family.output_names)
                      for k, n in nets.items()}
    return measure_models(nets, example, backend, onnx_paths=onnx_paths, device=device, input_names=input_names)


@dataclass(frozen=True)
class ExportedCandidate:
    """What exporting one candidate wrote and measured (``as_dict``: the command line's ``--json``)."""

    arch: str
    macs: int
    params: int
    onnx_path: str
    model_card_path: str
    max_abs_diff: float
    latency_ms: dict[str, Any]
    #: Readings by backend, as the card keeps them (``engine.latency.describe`` reads them).
    latency: dict[str, Any]
    weights: str | None
    onnx_variants: dict[str, dict[str, Any]]
    onnx_variants_skipped: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportedCandidate:
        """Read back from ``as_dict`` (the export dialog reads the command line's ``--json``)."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


def export_candidate(models: RunModels, arch: str | None, out_dir: Path, inputs: tuple[torch.Tensor, ...],
                     calibration: tuple[torch.Tensor, ...] | None = None) -> ExportedCandidate:
    """ONNX of any candidate (or the final student), its parity check on ``inputs`` (one tensor per model
    input: ``RunData.feed``), the run's ONNX variants (INT8 calibrated on ``calibration``, default ``inputs``)
    and a model card."""
    student = models.student(arch)
    name = str(student.arch)
    config = models.config
    family, options = config.family_impl, config.options
    input_names = export_input_names(family, options)
    onnx_path, parity = export_checked(student, out_dir / f"student-{name}.onnx", inputs, None,
                                       input_names, family.output_names)
    variants: dict[str, dict[str, Any]] = {}
    if config.export.variants:
        with torch.no_grad():
            float_out = student.eval()(*inputs).numpy()
        calibration = inputs if calibration is None else calibration
        count = config.export.calibration_images
        variants = build_variants(onnx_path, tuple(config.export.variants),
                                  tuple(t[:count].numpy() for t in calibration), tuple(t.numpy() for t in inputs),
                                  float_out, input_name=input_names)
    example = family.example_inputs(options, config.size_hw)
    profile = profile_model(student, example)
    # The student is timed beside its teacher, as everywhere: a ratio from one measurement holds on a
    # busy machine where two separate timings would not.
    teacher = models.teacher()
    teacher_onnx = export_onnx(teacher, out_dir / "teacher-for-latency.onnx", example, input_names,
                               family.output_names)
    readings = measure_teacher_and_student(teacher, student, teacher_onnx, onnx_path, example, variants=variants,
                                           input_names=input_names, time_cap_s=config.export.latency_time_cap_s,
                                           compiled=config.export.torch_compile)
    teacher_onnx.unlink(missing_ok=True)
    card = build_model_card(config, arch=name, weights=models.weights_of(arch), profile=profile, readings=readings,
                            onnx_path=onnx_path, parity=parity, variants=variants,
                            source_run={"id": models.run_id, "name": config.name})
    path = card.write(out_dir / f"student-{name}.json")
    return ExportedCandidate(name, profile.macs, profile.params, str(onnx_path), str(path), parity.max_abs_diff,
                             card.latency_ms, card.latency, card.weights, variants, card.onnx_variants_skipped)
