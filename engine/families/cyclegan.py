"""CycleGAN: unpaired translation (``trainA``/``trainB``). The teacher is trained with two generators,
two discriminators, cycle and identity losses and image pools; the student learns from the teacher's
outputs (an unpaired task becomes paired) while its discriminator sees real domain-B images, as
gan-compression's ``scripts/cycle_gan/horse2zebra_fast``."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F

from engine.families.base import Recipe, TeacherTrainer, set_requires_grad
from engine.families.shipped import shipped_teacher
from engine.families.mobile_resnet import MobileResnetFamily, ResnetOptions, seeded_rng
from engine.families.registry import FAMILIES
from engine.losses import GANLoss, ImagePool

LAMBDA_CYCLE = 10.0
LAMBDA_IDENTITY = 0.5


class CycleGANTeacherTrainer(TeacherTrainer):
    def __init__(self, family: CycleGANFamily, options: ResnetOptions, recipe: Recipe, seed: int):
        self.nets = {"G": family.new_generator(options, recipe.init), "G_B": family.new_generator(options, recipe.init),
                     "D": family.new_discriminator(options, recipe.ndf, recipe.init),
                     "D_B": family.new_discriminator(options, recipe.ndf, recipe.init)}
        self.criterion = GANLoss(recipe.gan_mode)
        self.pools = [ImagePool(50, seeded_rng(seed, 1)), ImagePool(50, seeded_rng(seed, 2))]

    def step(self, batch, opt_g, opt_d) -> dict[str, float]:
        g_a, g_b, d_a, d_b = (self.nets[k] for k in ("G", "G_B", "D", "D_B"))
        real_a, real_b = batch["A"], batch["B"]
        set_requires_grad([d_a, d_b], False)
        opt_g.zero_grad(set_to_none=True)
        fake_b, fake_a = g_a(real_a), g_b(real_b)
        rec_a, rec_b = g_b(fake_b), g_a(fake_a)
        idt = LAMBDA_CYCLE * LAMBDA_IDENTITY
        loss_idt = (F.l1_loss(g_a(real_b), real_b) + F.l1_loss(g_b(real_a), real_a)) * idt
        loss_gan = (self.criterion(d_a(fake_b), True, for_discriminator=False)
                    + self.criterion(d_b(fake_a), True, for_discriminator=False))
        loss_cycle = (F.l1_loss(rec_a, real_a) + F.l1_loss(rec_b, real_b)) * LAMBDA_CYCLE
        (loss_gan + loss_cycle + loss_idt).backward()
        opt_g.step()
        set_requires_grad([d_a, d_b], True)
        opt_d.zero_grad(set_to_none=True)
        losses = {"G_gan": loss_gan.item(), "G_cycle": loss_cycle.item(), "G_idt": loss_idt.item()}
        for net, real, fake, pool, suffix in ((d_a, real_b, fake_b, self.pools[0], ""),
                                              (d_b, real_a, fake_a, self.pools[1], "_B")):
            loss_real = self.criterion(net(real), True)
            loss_fake = self.criterion(net(pool.query(fake).detach()), False)
            (0.5 * (loss_real + loss_fake)).backward()
            losses[f"D_real{suffix}"], losses[f"D_fake{suffix}"] = loss_real.item(), loss_fake.item()
        opt_d.step()
        return losses

    def state_dict(self) -> dict[str, Any]:
        return {"pools": [p.state_dict() for p in self.pools]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for pool, saved in zip(self.pools, state["pools"]):
            pool.load_state_dict(saved)


class CycleGANFamily(MobileResnetFamily):
    name = "cyclegan"
    description = "CycleGAN: unpaired translation (trainA/trainB); ResNet teacher, 9 blocks, ngf 64"
    dataset_layout = "unaligned"
    metrics = ("fid", "rfid")
    # As the reference (its README's FID protocol; horse2zebra_B.npz in scripts/cycle_gan/horse2zebra_fast): against
    # every real domain-B image of the training and test sets, for the search and the final metrics alike.
    real_statistics_from = {"search": "train+test", "test": "train+test"}
    # Its fast pipeline does not fine-tune (docs/tutorials/fast_gan_compression.md: fine-tuning raised horse2zebra's
    # FID); ``finetune: {steps: N}`` fine-tunes, keeping the student only if not worse.
    run_defaults = {"finetune": {"steps": 0}, "image_size": 256}
    choices = (64, 48, 32, 24, 16)
    # scripts/cycle_gan/horse2zebra_fast: lsgan, ndf 64, lambda_recon 10, lambda_distill 0.01, 200+200
    # epochs; evolution with --weighted_sample 2 --mutate_prob 0.4; the CycleGAN teacher 100+100 epochs.
    default_recipe = Recipe(gan_mode="lsgan", ndf=64, lambda_recon=10.0, lambda_distill=0.01, teacher_decay=0.5,
                            supernet_decay=0.5, finetune_decay=0.75, weighted_sample=2.0, mutation_prob=0.4)

    # Photographs -> the same photographs in a warm evening grade (day2dusk: unpaired, the grade only seen in B),
    # 128 px, trained on 64 px crops, with a teacher shipped in resources/teachers (trained there for 2400 steps
    # with this recipe), so the preset's minutes go to compression. The student's discriminator is ndf 32, not
    # the reference's 64 (for 256 px images): on 64 px crops ndf 32 makes a step a third cheaper, and 4000 steps
    # with ndf 32 take less time than 3000 with 64, for a better student. That discriminator sees the teacher's
    # outputs as real, not the reference's real domain-B photographs: those pulled the student off the teacher's
    # saturated reds (orange-brown for red; rfid 2.61 against 2.22 this way, docs/benchmarks.md).
    sample_presets = {"cyclegan-sample": {
        "dataset": {"sample": "day2dusk", "sample_size": 128}, "image_size": 128, "train_crop": 64,
        "model": {"ngf": 16}, "teacher": {"checkpoint": shipped_teacher("cyclegan-day2dusk")},
        "recipe": {"ndf": 32, "discriminator_real": "teacher"},
        "supernet": {"steps": 4000, "search_space": [[16, 12, 8, 4]] * 8}, "finetune": {"steps": 500}, "metric": "fid"}}
    workbench_changes = {**MobileResnetFamily.workbench_changes, "gan_mode": "lsgan", "discriminator_real": "teacher"}

    def teacher_trainer(self, options: ResnetOptions, recipe: Recipe, seed: int) -> CycleGANTeacherTrainer:
        return CycleGANTeacherTrainer(self, options, recipe, seed)


FAMILIES.register("cyclegan")(CycleGANFamily())
