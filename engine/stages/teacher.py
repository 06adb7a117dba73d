"""Stage ``teacher``: import a pretrained generator (the family reads the checkpoint layouts users
bring), or train one here with the family's trainer and recipe."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from engine import checkpoints
from engine.families.shipped import shipped_teacher_provenance
from engine.families.weights import load_strict
from engine.stages.context import StageContext
from engine.stages.data import RunData, training_batches
from engine.stages.resources import build_discriminator_for, build_teacher
from engine.stages.schedule import adam_pair, lr_schedule


def _import(ctx: StageContext) -> dict[str, Any]:
    config = ctx.config
    family, options = config.family_impl, config.options
    path = Path(config.teacher.checkpoint).expanduser()  # type: ignore[arg-type]
    netG = build_teacher(config)
    fields = ", ".join(f"model.{name}" for name in family.options_model.model_fields)
    hint = f"Set the run's model options ({fields}) to the checkpoint's architecture"
    load_strict(netG, family.teacher_state(checkpoints.load(path), path, options), path,
                family.describe_teacher(options), hint)
    state: dict[str, Any] = {"G": netG.state_dict(), "D": None, "D_ndf": None, "source": str(path),
                             "shipped": shipped_teacher_provenance(path)}
    if config.teacher.discriminator_checkpoint:
        d_path = Path(config.teacher.discriminator_checkpoint).expanduser()
        raw = family.teacher_state(checkpoints.load(d_path), d_path, options)
        first = next((v for k, v in raw.items() if k.endswith("weight") and v.dim() == 4), None)
        ndf = int(first.shape[0]) if first is not None else config.resolved_recipe.ndf
        netD = build_discriminator_for(config, ndf)
        load_strict(netD, raw, d_path, f"{family.name} discriminator (ndf {ndf})", hint)
        state["D"], state["D_ndf"] = netD.state_dict(), ndf
    ctx.message(f"imported teacher from {path}" + (" (shipped with the program; re-train it with "
                                                  f"{state['shipped']['retrain']})" if state["shipped"] else ""))
    return state


def _train(ctx: StageContext, data: RunData) -> dict[str, Any]:
    config, device = ctx.config, ctx.device
    family, recipe = config.family_impl, config.resolved_recipe
    total = config.teacher.steps
    trainer = family.teacher_trainer(config.options, recipe, config.seed)
    for net in trainer.nets.values():
        net.to(device).train()
    g_params = itertools.chain(*(n.parameters() for k, n in trainer.nets.items() if k.startswith("G")))
    d_params = itertools.chain(*(n.parameters() for k, n in trainer.nets.items() if k.startswith("D")))
    world = ctx.world
    world.batchnorm_over_ranks(*trainer.nets.values())
    opt_g, opt_d = (world.synchronise(o) for o in adam_pair(g_params, d_params, config.teacher.lr, recipe))
    sched = [lr_schedule(opt_g, total, recipe, "teacher"), lr_schedule(opt_d, total, recipe, "teacher")]
    step = 0

    def make_state() -> dict[str, Any]:
        return {"step": step, "nets": {k: n.state_dict() for k, n in trainer.nets.items()},
                "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                "sched": [s.state_dict() for s in sched], "trainer": trainer.state_dict()}

    saved = ctx.load_checkpoint()
    if saved is not None:
        step = saved["step"]
        for k, net in trainer.nets.items():
            net.load_state_dict(saved["nets"][k])
        opt_g.load_state_dict(saved["opt_g"])
        opt_d.load_state_dict(saved["opt_d"])
        for s, state in zip(sched, saved["sched"]):
            s.load_state_dict(state)
        trainer.load_state_dict(saved["trainer"])
    world.same_weights(*trainer.nets.values())
    ctx.begin(total, step)
    batches = training_batches(data.train, config.batch_size, config.seed, step, world)
    while step < total:
        batch = {k: v.to(device) for k, v in next(batches).items()}
        losses = world.mean(trainer.step(batch, opt_g, opt_d))
        for s in sched:
            s.step()
        step += 1
        ctx.progress(step, total, losses)
        if step < total:
            ctx.maybe_checkpoint(make_state)
    ctx.save_checkpoint(make_state())
    # A generator trained with spectral norms is saved as the plain network it is in eval mode.
    return {"G": checkpoints.fold_spectral_norm(trainer.nets["G"].state_dict()), "D": trainer.nets["D"].state_dict(),
            "D_ndf": recipe.ndf,
            "source": f"trained here for {total} steps"}


def run(ctx: StageContext, data: RunData) -> dict[str, Any]:
    state = _import(ctx) if ctx.config.teacher.checkpoint else _train(ctx, data)
    weights = ctx.stage_dir / "teacher.pt"
    ctx.save_weights({"G": state["G"], "D": state["D"], "D_ndf": state["D_ndf"],
                      "settings": ctx.config.shape_settings()}, weights)
    ctx.artifact(weights, "teacher_weights")
    return {"weights": str(weights), "source": state["source"], "shipped": state.get("shipped"),
            "has_discriminator": state["D"] is not None}
