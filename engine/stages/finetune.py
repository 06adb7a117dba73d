"""Stage ``finetune``: extract the chosen sub-network and train it alone with the same losses, as the
reference's fine-tune scripts: the supernet's discriminator, fresh mapping layers, the decaying schedule.
Both versions are scored on the held-out images and the better one is kept (both scores reported)."""

from __future__ import annotations

from typing import Any

from engine.families.capabilities import calibrate
from engine.models.elastic import subnet_of
from engine.stages.context import StageContext
from engine.stages.data import RunData
from engine.stages.distill import distill
from engine.stages.evaluate import generate, make_scorer
from engine.stages.resources import build_mappings, load_supernet, load_teacher


def run(ctx: StageContext, data: RunData) -> dict[str, Any]:
    config = ctx.config
    family, recipe = config.family_impl, config.resolved_recipe
    arch = family.parse_arch(ctx.result("search")["arch"])
    supernet, supernet_mappings, netD = load_supernet(ctx)
    student = subnet_of(supernet, arch)
    calibrate(family, student, None, data, config.options)
    scorer = make_scorer(ctx, data, "search")
    student.eval()
    before = scorer.primary(generate(student, data.search_inputs, ctx.device, data.search_conditioning))
    result: dict[str, Any] = {"arch": str(arch), "metric": scorer.metric, "split": "search", "before": before,
                              "after": None, "kept": "extracted", "steps": config.finetune.steps}
    extracted = ctx.stage_dir / "extracted.pt"
    ctx.save_weights({"G": student.state_dict(), "arch": str(arch), "settings": ctx.config.shape_settings()},
                     extracted)
    weights = extracted
    if config.finetune.steps > 0:
        teacher, _ = load_teacher(ctx)
        trace: list[tuple[int, float]] = []

        def evaluate_every(step: int) -> dict[str, float]:
            every = config.finetune.eval_every
            if not every or step % every:
                return {}
            student.eval()
            value = scorer.primary(generate(student, data.search_inputs, ctx.device, data.search_conditioning))
            student.train()
            trace.append((step, value))
            return {f"search_{scorer.metric}": value}

        mappings = supernet_mappings if recipe.finetune_mappings == "supernet" else build_mappings(config, arch)
        distill(ctx, data, teacher=teacher, student=student,
                forward=lambda x, _arch, *c: student.forward_with_features(x, *c), mappings=mappings, netD=netD.train(),
                steps=config.finetune.steps, lr=config.finetune.lr, stage="finetune",
                sample_arch=lambda step: None, after_step=evaluate_every)
        result["trace"] = [(0, before), *trace]
        student.eval()
        after = scorer.primary(generate(student, data.search_inputs, ctx.device, data.search_conditioning))
        result["after"] = after
        if scorer.better(after, before) or after == before:
            weights = ctx.stage_dir / "finetuned.pt"
            ctx.save_weights({"G": student.state_dict(), "arch": str(arch), "settings": ctx.config.shape_settings()},
                             weights)
            result["kept"] = "finetuned"
        ctx.message(f"finetune: {scorer.metric} on the search split {before:.4g} before, {after:.4g} after; "
                    f"keeping the {result['kept']} sub-network")
    result["weights"] = str(weights)
    ctx.artifact(weights, "student_weights")
    return result
