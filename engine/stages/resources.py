"""A run's resources, as every stage and every reader of a run loads them: its teacher, supernet and student
(built from the run's configuration, their weights checked against the settings they were made with) and the
search's teacher reference. Stages import this module, not each other; ``engine.run_models``, the facade and
the command line load a run's models through it too. (A run's data is ``engine.stages.data``.)"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from engine import checkpoints
from engine.arch import Arch
from engine.config import RunConfig
from engine.families.weights import load_saved
from engine.stages.context import StageContext

#: The teacher's scores on the search split, written as the search starts: the reference the Pareto
#: view draws beside the candidates (which are scored on the same images).
TEACHER_REFERENCE = "teacher_reference.json"


def build_teacher(config: RunConfig) -> nn.Module:
    return config.family_impl.build_teacher(config.options)


def build_discriminator_for(config: RunConfig, ndf: int | None = None) -> nn.Module:
    return config.family_impl.build_discriminator(config.options, ndf or config.resolved_recipe.ndf)


def build_supernet(config: RunConfig) -> nn.Module:
    return config.family_impl.build_supernet(config.options, config.search_space())


def build_mappings(config: RunConfig, arch: Arch | None = None) -> nn.Module:
    arch = arch if arch is not None else Arch.largest(config.search_space())
    return config.family_impl.build_mappings(config.options, arch, config.resolved_recipe.mapping_init_type)


def load_teacher(ctx: StageContext) -> tuple[nn.Module, nn.Module | None]:
    """The finished teacher generator (eval mode, frozen) and its discriminator, if there is one."""
    path = Path(ctx.result("teacher")["weights"])
    saved = checkpoints.load(path, map_location=ctx.device)
    made_with, now = saved.get("settings"), ctx.config.shape_settings()
    netG = build_teacher(ctx.config)
    load_saved(netG, saved["G"], path, "run's teacher", made_with, now)
    netD = None
    if saved["D"] is not None:
        netD = build_discriminator_for(ctx.config, saved.get("D_ndf") or 64)
        load_saved(netD, saved["D"], path, "run's teacher discriminator", made_with, now)
        netD.to(ctx.device)
    return netG.to(ctx.device).eval().requires_grad_(False), netD


def load_supernet(ctx: StageContext) -> tuple[nn.Module, nn.Module, nn.Module]:
    """The trained supernet, its mapping layers and its discriminator, on the run's device."""
    path = Path(ctx.result("supernet")["weights"])
    saved = checkpoints.load(path, map_location=ctx.device)
    supernet, mappings = build_supernet(ctx.config), build_mappings(ctx.config)
    made_with, now = saved.get("settings"), ctx.config.shape_settings()
    load_saved(supernet, saved["supernet"], path, "run's supernet", made_with, now)
    load_saved(mappings, saved["mappings"], path, "run's mapping layers", made_with, now)
    netD = build_discriminator_for(ctx.config, saved.get("D_ndf") or 64)
    load_saved(netD, saved["D"], path, "run's discriminator", made_with, now)
    return supernet.to(ctx.device), mappings.to(ctx.device), netD.to(ctx.device)


def load_student(ctx: StageContext) -> nn.Module:
    """The fine-tuned (or kept) student of the finished ``finetune`` stage, in eval mode."""
    path = Path(ctx.result("finetune")["weights"])
    saved = checkpoints.load(path, map_location=ctx.device)
    family = ctx.config.family_impl
    student = family.build_student(ctx.config.options, family.parse_arch(saved["arch"]))
    load_saved(student, saved["G"], path, "run's student", saved.get("settings"), ctx.config.shape_settings())
    return student.to(ctx.device).eval()


@dataclass(frozen=True)
class TeacherReference:
    """The teacher of a run's search: its MACs and its scores on the split the candidates are scored on."""

    macs: float
    metrics: dict[str, float]
    split: str = "search"


def teacher_reference(run_dir: Path) -> TeacherReference | None:
    """The teacher of the run in ``run_dir`` as its search wrote it when it started (None before, or damaged: the
    search writes it again)."""
    path = run_dir / "search" / TEACHER_REFERENCE
    try:
        data = json.loads(path.read_text())
        return TeacherReference(float(data["macs"]), {k: float(v) for k, v in data["metrics"].items()},
                                str(data.get("split", "search")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
