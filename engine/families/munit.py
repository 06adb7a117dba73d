"""MUNIT: unpaired, multimodal translation (``trainA``/``trainB``): the image's content in a style code's style.
The teacher is NVlabs/MUNIT's AdaIN generator (its ``gen_a``/``gen_b`` checkpoints and gan-compression's
load); the student gan-compression's mobile MUNIT over the reference's ``channels-64`` space and its
10-position config string.

Distillation as ``distillers/base_munit_distiller.py``: for the same content image and style code, the
student's image to the teacher's (L1, lambda 10), its content code through a 1x1 mapping to the teacher's
(L1, lambda 1), LSGAN on NVlabs' multi-scale image discriminator against real domain-B images (or the teacher's
outputs, ``discriminator_real: teacher``); every other
step the style codes come from the style encoders reading a real B image, and the student's code is drawn
to the teacher's (L1, lambda 1); otherwise a random code N(0, 1) for both. Adam lr 1e-4, weight decay 1e-4, halved
every 200k steps, Kaiming initialisation (the discriminator's and the mapping's normal).

Scoring, comparing and exporting use one seeded style code per image (``conditioning``), the same for the
teacher and every candidate. A student that keeps its style encoder exports to ONNX with a reference style
image as its second input; without it, with the style code."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import Field, model_validator
from torch import nn

from engine.arch import Arch
from engine.errors import UserError
from engine.families.base import (DistillState, Family, FamilyOptions, Recipe, SizeHW, TeacherTrainer,
                                  set_requires_grad)
from engine.families.capabilities import Conditioned, InheritsFromTeacher
from engine.families.shipped import shipped_teacher
from engine.families.weights import unwrap_state_dict, without_unused_norm_statistics
from engine.families.registry import FAMILIES
from engine.losses import FeatureMappings, GANLoss
from engine.models.init import init_weights
from engine.models.munit import (STUDENT_POSITIONS, MobileMUNITGenerator, MobileMUNITSupernet, MsImageDiscriminator,
                                 MUNITGenerator, mobile_munit_macs)

#: Keys under which NVlabs/MUNIT (``a``/``b``) and other trainers keep the two domains' generators.
DOMAIN_KEYS = (("a", "b"), ("gen_a", "gen_b"), ("G_A", "G_B"), ("netG_A", "netG_B"))


class MUNITOptions(FamilyOptions):
    """The AdaIN generator (edges2shoes in the paper: ngf 64, style dim 8, MLP dim 256; 2 downsamplings and 4
    residual blocks, as the reference's student space assumes)."""

    ngf: int = Field(64, ge=1, description="teacher width (4 x ngf in the content code)",
                     json_schema_extra={"unit": "channels"})
    style_dim: int = Field(8, ge=1, description="length of the style code", json_schema_extra={"unit": "values"})
    mlp_dim: int = Field(256, ge=1, description="width of the teacher's MLP that makes the AdaIN parameters",
                         json_schema_extra={"unit": "units"})
    student_mlp_dim: int = Field(256, ge=1, description="width of the student's MLP",
                                 json_schema_extra={"unit": "units"})
    style_encoder: bool = Field(
        True, description="the student keeps a style encoder (trained to the teacher's); its ONNX model then takes "
                          "a reference style image, without it a style code")
    input_nc: int = Field(3, ge=1, description="image channels (both domains)", json_schema_extra={"unit": "channels"})
    student_style_mlp: Literal["fresh", "teacher"] = Field(
        "fresh", description="how the supernet's style MLP starts: fresh (the reference), or its first two layers "
                             "copied from the teacher's, so that it starts from the teacher's reading of a style "
                             "code (needs student_mlp_dim = mlp_dim)")

    @model_validator(mode="after")
    def _style_mlp_fits(self) -> MUNITOptions:
        if self.student_style_mlp == "teacher" and self.student_mlp_dim != self.mlp_dim:
            raise ValueError(f"student_style_mlp: teacher copies the teacher's MLP layers, so student_mlp_dim "
                             f"({self.student_mlp_dim}) must equal mlp_dim ({self.mlp_dim}); set them equal or use "
                             f"student_style_mlp: fresh")
        return self


def _codes(count: int, style_dim: int, seed: int) -> torch.Tensor:
    return torch.randn(count, style_dim, 1, 1, generator=torch.Generator().manual_seed(seed))


def _random_codes(count: int, style_dim: int, device: torch.device) -> torch.Tensor:
    """Style codes N(0, 1) from the training's random stream, as the reference draws them at every step."""
    return torch.randn(count, style_dim, 1, 1, device=device)


class MUNITRecipe(Recipe):
    """MUNIT's knob beside every family's: the weight of its style-code reconstruction."""

    lambda_style: float = Field(1.0, ge=0, description="style-code reconstruction")


class MUNITTeacherTrainer(TeacherTrainer):
    """MUNIT's own training (gan-compression's ``munit_model``, NVlabs' trainer): both domains' generators;
    within-domain image reconstruction (lambda 10), style and content reconstruction of the cross-domain
    translations (lambda 1 each), LSGAN on both domains. ``G`` is the A->B generator (A's content encoder, B's
    style encoder, decoder and MLP); ``G_B`` the B->A one (B's content encoder, A's style parts)."""

    def __init__(self, family: MUNITFamily, options: MUNITOptions, recipe: MUNITRecipe):
        self.options, self.recipe = options, recipe
        d_init = recipe.discriminator_init_type
        self.nets = {"G": init_weights(family.build_teacher(options), recipe.init),
                     "G_B": init_weights(family.build_teacher(options), recipe.init),
                     "D": init_weights(family.build_discriminator(options, recipe.ndf), d_init),
                     "D_B": init_weights(family.build_discriminator(options, recipe.ndf), d_init)}
        self.criterion = GANLoss(recipe.gan_mode)

    def step(self, batch, opt_g, opt_d) -> dict[str, float]:
        g_ab, g_ba, d_b, d_a = (self.nets[k] for k in ("G", "G_B", "D", "D_B"))
        real_a, real_b, recipe = batch["A"], batch["B"], self.recipe
        n, dim = real_a.shape[0], self.options.style_dim
        set_requires_grad([d_a, d_b], False)
        opt_g.zero_grad(set_to_none=True)
        s_a, s_b = (_random_codes(n, dim, real_a.device) for _ in range(2))
        c_a, c_b = g_ab.content_code(real_a), g_ba.content_code(real_b)
        s_a_own, s_b_own = g_ba.style_of(real_a), g_ab.style_of(real_b)
        rec_a, rec_b = g_ba.decode(c_a, s_a_own), g_ab.decode(c_b, s_b_own)
        fake_a, fake_b = g_ba.decode(c_b, s_a), g_ab.decode(c_a, s_b)
        losses = {"G_recon": (F.l1_loss(rec_a, real_a) + F.l1_loss(rec_b, real_b)) * recipe.lambda_recon,
                  "G_style": (F.l1_loss(g_ba.style_of(fake_a), s_a) + F.l1_loss(g_ab.style_of(fake_b), s_b))
                  * recipe.lambda_style,
                  "G_content": (F.l1_loss(g_ab.content_code(fake_a), c_b) + F.l1_loss(g_ba.content_code(fake_b), c_a))
                  * recipe.lambda_distill,
                  "G_gan": (self.criterion(d_a(fake_a), True, for_discriminator=False)
                            + self.criterion(d_b(fake_b), True, for_discriminator=False)) * recipe.lambda_gan}
        sum(losses.values()).backward()
        opt_g.step()
        set_requires_grad([d_a, d_b], True)
        opt_d.zero_grad(set_to_none=True)
        with torch.no_grad():  # new codes and the updated generators, as the reference's backward_D
            s_a, s_b = (_random_codes(n, dim, real_a.device) for _ in range(2))
            fake_a = g_ba.decode(g_ba.content_code(real_b), s_a)
            fake_b = g_ab.decode(g_ab.content_code(real_a), s_b)
        d_losses = {"D_fake": (self.criterion(d_a(fake_a), False) + self.criterion(d_b(fake_b), False)) * recipe.lambda_gan,
                    "D_real": (self.criterion(d_a(real_a), True) + self.criterion(d_b(real_b), True)) * recipe.lambda_gan}
        sum(d_losses.values()).backward()
        opt_d.step()
        return {k: v.item() for k, v in {**losses, **d_losses}.items()}


class MUNITFamily(Family, Conditioned, InheritsFromTeacher):
    name = "munit"
    description = "MUNIT: unpaired, multimodal translation (trainA/trainB); AdaIN generator, style code input"
    dataset_layout = "unaligned"
    positions = tuple(name for name, _ in STUDENT_POSITIONS)
    options_model = MUNITOptions
    metrics = ("fid", "rfid")
    # As the reference: the search against training domain-B images (scripts/munit/edges2shoes-r_fast/
    # evolution_search.sh, real_stat/..._subtrain_B.npz), the final metrics against the test (its val) domain-B
    # images (test_compressed.sh, edges2shoes-r_B.npz from get_real_stat.py, whose phase is val).
    real_statistics_from = {"search": "train", "test": "test"}
    # scripts/munit/edges2shoes-r_fast: lr 1e-4 (base_munit_distiller, munit_model), 2048 held-out images scoring
    # the search (train2A.meta), no fine-tuning in its fast pipeline.
    run_defaults = {"teacher": {"lr": 1e-4}, "supernet": {"lr": 1e-4}, "finetune": {"steps": 0, "lr": 1e-4},
                    "dataset": {"search_images": 2048}, "image_size": 256}
    compare_columns = ("input", "conditioning", "teacher", "student", "difference")
    conditioning_title = "style"
    conditioning_tooltip = "The style code teacher and student both get: one bar per dimension"
    loss_names = ("G_recon", "G_distill", "G_style", "G_gan", "D_real", "D_fake")
    #: The reference's ``channels-64`` space: seven widths at each of the ten positions.
    choices = (64, 56, 48, 40, 32, 24, 16)
    # base_munit_distiller and scripts/munit/edges2shoes-r_fast: lsgan (summed over the 3 scales), ndf 64 (4
    # layers, 3 scales), Kaiming initialisation (normal for the discriminator and the mapping layer, init_net's
    # default), lambda_rec_x 10, lambda_rec_c 1, lambda_rec_s 1, Adam (0.5, 0.999) with weight decay 1e-4, the
    # rate halved every 200k steps (lr_policy step; the teacher's every 100k, train_options), load 256 = crop
    # 256 (no crop jitter); evolution with --weighted_sample 2 --weight_strategy geometric.
    recipe_model = MUNITRecipe
    default_recipe = MUNITRecipe(gan_mode="lsgan", ndf=64, init="kaiming", discriminator_init="normal",
                                 mapping_init="normal", lambda_recon=10.0, lambda_distill=1.0, lambda_style=1.0,
                                 lambda_gan=1.0, weight_decay=1e-4, lr_policy="step", lr_decay_steps=200_000,
                                 teacher_lr_decay_steps=100_000, teacher_decay=0.0, supernet_decay=0.0,
                                 finetune_decay=0.0, crop_jitter=False, weighted_sample=2.0, weight_strategy="geometric",
                                 student_discriminator="new", discriminator_real="real", finetune_mappings="fresh")
    workbench_changes = {**Family.workbench_changes, "init": "kaiming", "gan_mode": "lsgan", "lr_policy": "linear",
                         "mapping_init": None, "crop_jitter": True, "weight_strategy": "arithmetic"}

    # Grayscale photographs -> photographs in one of three colour grades (the style), 128 px, trained on 64 px
    # crops, with a teacher shipped in resources/teachers (packaging/train_sample_teachers.py). The student
    # learns from the teacher alone (``lambda_gan: 0``; the reference's is 1): its discriminator judged it against
    # real B photographs of any grade, not the teacher's grade for that code, and took 40% of every step. Without
    # it 4500 supernet steps fit where 2900 did, and the student came closer to the teacher (L1 0.17 against 0.23
    # at the same codes, rfid 5.19 against 6.17; docs/benchmarks.md). ndf 32 is its width where re-enabled.
    # Its style MLP starts from the teacher's (``student_style_mlp: teacher``): started fresh, the student gave
    # most codes one middling grade (the teacher's grade for 56% of codes, rfid 6.39); from the teacher's,
    # 92% and rfid 2.18 in the same steps.
    sample_presets = {"munit-sample": {
        "dataset": {"sample": "gray2tints", "sample_size": 128}, "image_size": 128, "train_crop": 64,
        "model": {"ngf": 16, "mlp_dim": 64, "student_mlp_dim": 64, "student_style_mlp": "teacher"},
        "teacher": {"checkpoint": shipped_teacher("munit-gray2tints")},
        # A uniform first generation, not the reference's geometric one (weighted_sample 2): a search of 3
        # generations cannot climb back from the narrow widths that draws (measured: 18.1x fewer MACs under a 5x
        # budget, rfid 6.43 against the teacher's 1.92; docs/benchmarks.md).
        "recipe": {"ndf": 32, "lambda_gan": 0, "weighted_sample": 1},
        # 5e-4, not the reference's 1e-4: a student at 1e-4 or 2e-4 first learns to ignore the style code and
        # takes ~1000 steps to learn it back (one colour for every code); 1e-3 diverges (docs/benchmarks.md).
        "supernet": {"steps": 4500, "lr": 5e-4, "search_space": [[16, 12, 8, 4]] * 10},
        "search": {"method": "auto", "target_ratio": 5, "population": 12, "generations": 3},
        "finetune": {"steps": 150, "lr": 2e-4}, "metric": "fid"}}

    # --- options and arch space ---------------------------------------------------------------------

    def default_search_space(self, options: MUNITOptions) -> list[tuple[int, ...]]:
        # Scaled with the teacher's width, so that a narrower teacher gets proportionally narrower choices.
        scaled = tuple(sorted({max(1, round(c * options.ngf / 64)) for c in self.choices}, reverse=True))
        return [scaled] * len(self.positions)

    def macs(self, arch: Arch, options: MUNITOptions, size: SizeHW) -> int:
        return mobile_munit_macs(arch.values, size, options.input_nc, options.style_dim, options.student_mlp_dim,
                                 options.style_encoder)

    # --- models -------------------------------------------------------------------------------------

    def describe_teacher(self, options: MUNITOptions) -> str:
        return (f"MUNIT AdaIN teacher (ngf {options.ngf}, style dim {options.style_dim}, MLP dim {options.mlp_dim}, "
                f"2 downsamplings, 4 residual blocks, {options.input_nc} channels)")

    def build_teacher(self, options: MUNITOptions) -> MUNITGenerator:
        return MUNITGenerator(options.input_nc, options.ngf, style_dim=options.style_dim, mlp_dim=options.mlp_dim)

    def teacher_state(self, raw: dict[str, Any], path: Path, options: MUNITOptions) -> dict[str, torch.Tensor]:
        """One generator's state (ours, gan-compression's), or NVlabs/MUNIT's pair of domain generators, of
        which the A->B teacher is ``a``'s content encoder with ``b``'s style encoder, decoder and MLP."""
        pair = next(((raw[a], raw[b]) for a, b in DOMAIN_KEYS
                     if isinstance(raw.get(a), dict) and isinstance(raw.get(b), dict)), None)
        if pair is not None:
            gen_a, gen_b = (unwrap_state_dict(g, path) for g in pair)
            state = {**{k: v for k, v in gen_b.items() if not k.startswith("enc_content.")},
                     **{k: v for k, v in gen_a.items() if k.startswith("enc_content.")}}
        else:
            state = unwrap_state_dict(raw, path)
        state = without_unused_norm_statistics(state)
        if not any(k.startswith("enc_style.") for k in state):
            raise UserError(f"{path} has no style encoder (enc_style.*); a MUNIT teacher needs its content encoder, "
                            "style encoder, decoder and MLP (NVlabs' gen checkpoint with 'a' and 'b', or one "
                            "generator)")
        return state

    def build_supernet(self, options: MUNITOptions, space: list[tuple[int, ...]]) -> MobileMUNITSupernet:
        return MobileMUNITSupernet(Arch.largest(space).values, options.input_nc, options.style_dim,
                                   options.student_mlp_dim, style_encoder=options.style_encoder)

    @torch.no_grad()
    def inherit_from_teacher(self, supernet: nn.Module, teacher: nn.Module, options: MUNITOptions) -> str | None:
        if options.student_style_mlp != "teacher":
            return None
        # The MLP's last layer makes each AdaIN layer's parameters at the student's widths; the two before it
        # only read the style code, and have the teacher's shapes.
        for ours, theirs in zip(list(supernet.mlp.model)[:2], list(teacher.mlp.model)[:2]):
            ours.fc.weight.copy_(theirs.fc.weight)
            ours.fc.bias.copy_(theirs.fc.bias)
        return "supernet: the style MLP's first two layers start from the teacher's (student_style_mlp: teacher)"

    def build_student(self, options: MUNITOptions, arch: Arch) -> MobileMUNITGenerator:
        return MobileMUNITGenerator(self.parse_arch(arch).values, options.input_nc, options.style_dim,
                                    options.student_mlp_dim, style_encoder=options.style_encoder)

    def build_mappings(self, options: MUNITOptions, student_arch: Arch, init: str) -> FeatureMappings:
        # The content code: 4 x position 3 wide in the student, 4 x ngf in the teacher (the reference's netA).
        return FeatureMappings([4 * student_arch.values[3]], [4 * options.ngf], init=init)

    def build_discriminator(self, options: MUNITOptions, ndf: int) -> MsImageDiscriminator:
        return MsImageDiscriminator(options.input_nc, ndf, n_layers=4, num_scales=3)

    def size_multiple(self, options: MUNITOptions) -> int:
        return 16  # the style encoder halves the image four times

    # --- data, inputs, export -----------------------------------------------------------------------

    def conditioning(self, options: MUNITOptions, count: int, seed: int) -> tuple[torch.Tensor, ...]:
        return (_codes(count, options.style_dim, seed),)

    def conditioning_names(self, options: MUNITOptions) -> tuple[str, ...]:
        return ("style_image" if options.style_encoder else "style",)

    def export_conditioning(self, options: MUNITOptions, conditioning: tuple[torch.Tensor, ...],
                            references: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        if options.style_encoder:
            if references is None:
                raise ValueError("a MUNIT student with a style encoder is exported with reference style images")
            return (references,)
        return conditioning

    def example_inputs(self, options: MUNITOptions, size: SizeHW, batch: int = 1) -> tuple[torch.Tensor, ...]:
        # With the style encoder the paper's count: content encoder + style encoder (on a reference) + decoder.
        style = torch.zeros(batch, options.input_nc, *size) if options.style_encoder else \
            torch.zeros(batch, options.style_dim, 1, 1)
        return (torch.zeros(batch, options.input_nc, *size), style)

    def random_inputs(self, options: MUNITOptions, size: SizeHW, generator: torch.Generator) -> torch.Tensor:
        return torch.rand(1, options.input_nc, *size, generator=generator) * 2 - 1

    def display_conditioning(self, conditioning: tuple[torch.Tensor, ...], options: MUNITOptions,
                             size: SizeHW) -> torch.Tensor | None:
        """The style code as bars (one per dimension, up for positive, down for negative, +-3 at the edges)."""
        code = conditioning[0].flatten()
        height, width = size
        picture = torch.full((3, height, width), 0.7)
        middle = height // 2
        picture[:, middle, :] = -0.2
        bar = width / len(code)
        for index, value in enumerate(code.clamp(-3, 3).tolist()):
            left = int(index * bar + bar * 0.15)
            right = max(left + 1, int((index + 1) * bar - bar * 0.15))
            reach = int(abs(value) / 3 * (middle - 1))
            top, bottom = (middle - reach, middle) if value >= 0 else (middle + 1, middle + 1 + reach)
            colour = torch.tensor([0.9, -0.4, -0.5] if value >= 0 else [-0.6, -0.1, 0.9])
            picture[:, top:bottom, left:right] = colour[:, None, None]
        return picture[None]

    def images_in_file(self, image: Image.Image, options: MUNITOptions) -> tuple[Image.Image, None]:
        return image.convert("RGB" if options.input_nc == 3 else "L"), None

    def teacher_trainer(self, options: MUNITOptions, recipe: MUNITRecipe, seed: int) -> MUNITTeacherTrainer:
        return MUNITTeacherTrainer(self, options, recipe)

    # --- distillation (base_munit_distiller's optimize_parameters) ------------------------------------

    def distill_extras(self, options: MUNITOptions) -> dict[str, Any]:
        return {"steps": 0, "style_encoder": options.style_encoder}

    def distill_step(self, state: DistillState, batch: dict[str, torch.Tensor], arch: Arch | None) -> dict[str, float]:
        recipe, netD, criterion, teacher = state.recipe, state.netD, state.criterion, state.teacher
        real_a, real_b = batch["A"], batch["B"]
        state.extras["steps"] = step = state.extras["steps"] + 1
        # Every other step the style encoders read a real B image (the student's is trained to the teacher's).
        with_encoder = state.extras["style_encoder"] and step % 2 == 0
        with torch.no_grad():
            teacher_code = teacher.style_of(real_b) if with_encoder else \
                _random_codes(real_a.shape[0], teacher.style_dim, real_a.device)
            teacher_out, teacher_features = teacher.forward_with_features(real_a, teacher_code)
        out, features = state.forward(real_a, arch, real_b if with_encoder else teacher_code)

        with_d = recipe.uses_discriminator
        real_for_d = recipe.discriminator_real_images(real_b, teacher_out)
        set_requires_grad([netD], False)
        state.opt_g.zero_grad(set_to_none=True)
        mapped = state.mappings([features["content"]])[0]
        losses = {"G_recon": F.l1_loss(out, teacher_out) * recipe.lambda_recon,
                  "G_distill": F.l1_loss(mapped, teacher_features["content"]) * recipe.lambda_distill}
        if with_d:
            losses["G_gan"] = criterion(netD(out), True, for_discriminator=False) * recipe.lambda_gan
        if with_encoder:
            losses["G_style"] = F.l1_loss(features["style"], teacher_code) * recipe.lambda_style
        sum(losses.values()).backward()
        state.opt_g.step()

        d_losses = {}
        if with_d:
            set_requires_grad([netD], True)
            state.opt_d.zero_grad(set_to_none=True)
            d_losses = {"D_fake": criterion(netD(out.detach()), False) * recipe.lambda_gan,
                        "D_real": criterion(netD(real_for_d), True) * recipe.lambda_gan}
            sum(d_losses.values()).backward()
            state.opt_d.step()
        return {k: v.item() for k, v in {**losses, **d_losses}.items()}


FAMILIES.register("munit")(MUNITFamily())
