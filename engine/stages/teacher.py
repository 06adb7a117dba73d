"""Stage ``teacher``: import a pretrained generator, or train one (CycleGAN: two generators, two
discriminators, cycle and identity losses, image pools; pix2pix: conditional discriminator, L1 + GAN)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine import checkpoints
from engine.config import RunConfig
from engine.errors import UserError
from engine.families import get_family
from engine.losses import GANLoss, ImagePool, discriminator_loss
from engine.models import build_discriminator
from engine.stages.context import StageContext
from engine.stages.data import RunData, training_batches

LAMBDA_CYCLE = 10.0
LAMBDA_IDENTITY = 0.5
LAMBDA_L1 = 100.0
#: Keys under which known projects nest the generator's state dict in a full-model checkpoint.
NESTED_KEYS = ("G", "netG", "G_A", "netG_A", "state_dict", "model", "generator")


def build_teacher(config: RunConfig, input_nc: int = 3, output_nc: int = 3) -> nn.Module:
    t = config.teacher
    return get_family(config.family).build_teacher(input_nc, output_nc, ngf=t.ngf, n_blocks=t.n_blocks, norm=t.norm)


def build_discriminator_for(config: RunConfig) -> nn.Module:
    # pix2pix's discriminator sees the input beside the output.
    input_nc = 6 if get_family(config.family).paired else 3
    return build_discriminator("basic", input_nc=input_nc, ndf=64, norm=config.teacher.norm)


def generator_state(raw: dict[str, Any], path: Path) -> dict[str, torch.Tensor]:
    """The generator's state dict out of a checkpoint of pytorch-CycleGAN-and-pix2pix (a plain state
    dict), gan-compression (plain, or nested in a full-model dict) or DataParallel (``module.``)."""
    state = raw
    if not any(isinstance(v, torch.Tensor) for v in raw.values()):
        nested = next((raw[k] for k in NESTED_KEYS if isinstance(raw.get(k), dict)), None)
        if nested is None:
            raise UserError(f"{path} holds no generator weights: expected a state dict, or one nested under "
                            f"one of {', '.join(NESTED_KEYS)}; found keys {', '.join(list(raw)[:8])}")
        state = nested
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}
    # Checkpoints from older PyTorch kept running statistics of InstanceNorm layers that have none
    # (pytorch-CycleGAN-and-pix2pix drops them the same way).
    return {k: v for k, v in state.items()
            if not (k.endswith(("running_mean", "running_var", "num_batches_tracked")) and _is_instance_norm_key(k, state))}


def _is_instance_norm_key(key: str, state: dict[str, Any]) -> bool:
    prefix = key.rsplit(".", 1)[0]
    return f"{prefix}.weight" not in state


def load_into(model: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str, config: RunConfig) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                  if k in state and state[k].shape != v.shape]
    if missing or unexpected or mismatched:
        details = [f"{label} {', '.join(keys[:3])}" for label, keys in
                   (("missing", missing), ("unexpected", unexpected), ("shape of", mismatched)) if keys]
        raise UserError(f"{path} does not fit the {config.family} {what} (ngf {config.teacher.ngf}, "
                        f"{config.teacher.n_blocks} blocks, norm {config.teacher.norm}): {'; '.join(details)}. "
                        "Set teacher.ngf, teacher.n_blocks and teacher.norm to the checkpoint's architecture")
    model.load_state_dict(state, strict=True)


def _import(ctx: StageContext) -> dict[str, Any]:
    config = ctx.config
    path = Path(config.teacher.checkpoint).expanduser()  # type: ignore[arg-type]
    netG = build_teacher(config)
    load_into(netG, generator_state(checkpoints.load(path), path), path, "teacher generator", config)
    state: dict[str, Any] = {"G": netG.state_dict(), "D": None, "source": str(path)}
    if config.teacher.discriminator_checkpoint:
        d_path = Path(config.teacher.discriminator_checkpoint).expanduser()
        netD = build_discriminator_for(config)
        load_into(netD, generator_state(checkpoints.load(d_path), d_path), d_path, "discriminator", config)
        state["D"] = netD.state_dict()
    ctx.message(f"imported teacher from {path}")
    return state


def _linear_decay(optimizer: torch.optim.Optimizer, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Constant for the first half of the steps, then linearly to zero (the original schedules)."""
    half = total // 2
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 1.0 if step < half else max(0.0, 1.0 - (step - half) / max(1, total - half)))


def _set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        net.requires_grad_(flag)


def _train(ctx: StageContext, data: RunData) -> dict[str, Any]:
    config, device = ctx.config, ctx.device
    paired = get_family(config.family).paired
    total = config.teacher.steps
    criterion = GANLoss(config.resolved_gan_mode)
    nets: dict[str, nn.Module] = {"G": build_teacher(config), "D": build_discriminator_for(config)}
    if not paired:
        nets["G_B"], nets["D_B"] = build_teacher(config), build_discriminator_for(config)
    for net in nets.values():
        net.to(device).train()
    g_params = itertools.chain(*(nets[k].parameters() for k in nets if k.startswith("G")))
    d_params = itertools.chain(*(nets[k].parameters() for k in nets if k.startswith("D")))
    opt_g = torch.optim.Adam(g_params, lr=config.teacher.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d_params, lr=config.teacher.lr, betas=(0.5, 0.999))
    sched = [_linear_decay(opt_g, total), _linear_decay(opt_d, total)]
    pools = [ImagePool(50, random.Random(config.seed)), ImagePool(50, random.Random(config.seed + 1))]
    step = 0

    def make_state() -> dict[str, Any]:
        return {"step": step, "nets": {k: n.state_dict() for k, n in nets.items()},
                "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                "sched": [s.state_dict() for s in sched], "pools": [p.state_dict() for p in pools]}

    saved = ctx.load_checkpoint()
    if saved is not None:
        step = saved["step"]
        for k, net in nets.items():
            net.load_state_dict(saved["nets"][k])
        opt_g.load_state_dict(saved["opt_g"])
        opt_d.load_state_dict(saved["opt_d"])
        for s, state in zip(sched, saved["sched"]):
            s.load_state_dict(state)
        for p, state in zip(pools, saved["pools"]):
            p.load_state_dict(state)
    ctx.begin(total)
    batches = training_batches(data.train, config.batch_size, config.seed, step)
    while step < total:
        batch = next(batches)
        real_a, real_b = batch["A"].to(device), batch["B"].to(device)
        discriminators = [nets["D"]] + ([nets["D_B"]] if not paired else [])
        _set_requires_grad(discriminators, False)
        opt_g.zero_grad(set_to_none=True)
        if paired:
            fake_b = nets["G"](real_a)
            loss_gan = criterion(nets["D"](torch.cat([real_a, fake_b], 1)), True)
            loss_l1 = F.l1_loss(fake_b, real_b) * LAMBDA_L1
            (loss_gan + loss_l1).backward()
            losses = {"G_gan": loss_gan.item(), "G_L1": loss_l1.item()}
        else:
            fake_b, fake_a = nets["G"](real_a), nets["G_B"](real_b)
            rec_a, rec_b = nets["G_B"](fake_b), nets["G"](fake_a)
            idt = LAMBDA_CYCLE * LAMBDA_IDENTITY
            loss_idt = (F.l1_loss(nets["G"](real_b), real_b) + F.l1_loss(nets["G_B"](real_a), real_a)) * idt
            loss_gan = criterion(nets["D"](fake_b), True) + criterion(nets["D_B"](fake_a), True)
            loss_cycle = (F.l1_loss(rec_a, real_a) + F.l1_loss(rec_b, real_b)) * LAMBDA_CYCLE
            (loss_gan + loss_cycle + loss_idt).backward()
            losses = {"G_gan": loss_gan.item(), "G_cycle": loss_cycle.item(), "G_idt": loss_idt.item()}
        opt_g.step()
        _set_requires_grad(discriminators, True)
        opt_d.zero_grad(set_to_none=True)
        if paired:
            loss_d, parts = discriminator_loss(criterion, nets["D"], torch.cat([real_a, real_b], 1),
                                               torch.cat([real_a, fake_b], 1))
        else:
            loss_d, parts = discriminator_loss(criterion, nets["D"], real_b, pools[0].query(fake_b))
            loss_d_b, _ = discriminator_loss(criterion, nets["D_B"], real_a, pools[1].query(fake_a))
            loss_d = loss_d + loss_d_b
        loss_d.backward()
        opt_d.step()
        for s in sched:
            s.step()
        step += 1
        ctx.progress(step, total, {**losses, **parts})
        if step < total:
            ctx.maybe_checkpoint(make_state)
    ctx.save_checkpoint(make_state())
    return {"G": nets["G"].state_dict(), "D": nets["D"].state_dict(), "source": f"trained here for {total} steps"}


def run(ctx: StageContext, data: RunData) -> dict[str, Any]:
    state = _import(ctx) if ctx.config.teacher.checkpoint else _train(ctx, data)
    weights = ctx.stage_dir / "teacher.pt"
    checkpoints.save({"G": state["G"], "D": state["D"]}, weights)
    ctx.artifact(weights, "teacher_weights")
    return {"weights": str(weights), "source": state["source"], "has_discriminator": state["D"] is not None}


def load_teacher(ctx: StageContext) -> tuple[nn.Module, nn.Module | None]:
    """The finished teacher generator (eval mode, frozen) and its discriminator, if there is one."""
    saved = checkpoints.load(Path(ctx.result("teacher")["weights"]), map_location=ctx.device)
    netG = build_teacher(ctx.config)
    netG.load_state_dict(saved["G"])
    netD = None
    if saved["D"] is not None:
        netD = build_discriminator_for(ctx.config)
        netD.load_state_dict(saved["D"])
        netD.to(ctx.device)
    return netG.to(ctx.device).eval().requires_grad_(False), netD
