"""Stage ``finetune``: extract the chosen sub-network and train it alone for a while with the same
losses. The paper found this helps little and sometimes hurts, so both versions are scored on the
held-out images and the better one is kept (and both scores are reported)."""

from __future__ import annotations

from typing import Any

from engine import checkpoints
from engine.models import MobileResnetGenerator, extract_subnet
from engine.stages.context import StageContext
from engine.stages.data import RunData
from engine.stages.distill import distill, make_discriminator
from engine.stages.evaluate import generate, make_scorer
from engine.stages.supernet import load_supernet
from engine.stages.teacher import build_discriminator_for, load_teacher


def run(ctx: StageContext, data: RunData) -> dict[str, Any]:
    config = ctx.config
    arch = ctx.result("search")["arch"]
    supernet, mappings, d_state = load_supernet(ctx)
    student = extract_subnet(supernet, arch)
    scorer = make_scorer(ctx, data, "search")
    student.eval()
    before = scorer.primary(generate(student, data.search_inputs, ctx.device))
    result: dict[str, Any] = {"arch": arch, "metric": scorer.metric, "before": before, "after": None,
                              "kept": "extracted", "steps": config.finetune.steps}
    extracted = ctx.stage_dir / "extracted.pt"
    checkpoints.save({"G": student.state_dict(), "arch": arch}, extracted)
    weights = extracted
    if config.finetune.steps > 0:
        teacher, _ = load_teacher(ctx)
        netD = build_discriminator_for(config)
        netD.load_state_dict(d_state)
        netD = make_discriminator(ctx, netD)
        distill(ctx, data, teacher=teacher, student=student,
                forward=lambda x, _arch: student.forward_with_features(x), mappings=mappings, netD=netD,
                steps=config.finetune.steps, lr=config.finetune.lr, sample_arch=lambda step: None)
        student.eval()
        after = scorer.primary(generate(student, data.search_inputs, ctx.device))
        result["after"] = after
        if scorer.better(after, before) or after == before:
            weights = ctx.stage_dir / "finetuned.pt"
            checkpoints.save({"G": student.state_dict(), "arch": arch}, weights)
            result["kept"] = "finetuned"
        ctx.message(f"finetune: {scorer.metric} {before:.4g} before, {after:.4g} after; keeping the {result['kept']} "
                    "sub-network")
    result["weights"] = str(weights)
    ctx.artifact(weights, "student_weights")
    return result


def load_student(ctx: StageContext) -> MobileResnetGenerator:
    saved = checkpoints.load(ctx.result("finetune")["weights"], map_location=ctx.device)
    student = MobileResnetGenerator(arch=saved["arch"], n_blocks=ctx.config.teacher.n_blocks)
    student.load_state_dict(saved["G"])
    return student.to(ctx.device).eval()
