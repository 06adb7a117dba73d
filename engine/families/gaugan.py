"""GauGAN (SPADE): label maps to photographs. The teacher is NVlabs/SPADE's generator (its checkpoints and
gan-compression's load, spectral norms folded); the student gan-compression's mobile SPADE with separable
convolutions in its SPADE layers, trained once-for-all over the reference's ``channels-64`` space and its
8-position config string. Distillation as ``distillers/base_spade_distiller.py``: the outputs of
``head_0``, ``G_middle_1`` and ``up_1`` through 1x1 mappings (MSE, lambda 10), hinge GAN loss on a
multi-scale discriminator that sees the label map beside the image, its feature matching (lambda 10) and
the VGG-19 perceptual loss (lambda 10, when its weights are on disk), Adam (0, 0.9) with TTUR.

Every normalisation is a BatchNorm, whose statistics differ per sub-network: a sub-network's are
re-estimated on training batches (``recalibrate``, the reference's ``calibrate``) before it is scored and
before it is exported."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from pydantic import Field
from torch import nn

from engine.arch import Arch
from engine.checkpoints import fold_spectral_norm
from engine.data import labels as label_maps
from engine.errors import ConfigError, DatasetError, UserError
from engine.families.base import DistillState, Family, FamilyOptions, Recipe, SizeHW, TeacherTrainer, set_requires_grad
from engine.families.capabilities import Calibrated, LabelMaps, prepared_image
from engine.families.shipped import shipped_teacher
from engine.families.weights import unwrap_state_dict
from engine.families.registry import FAMILIES
from engine.losses import FeatureMappings, GANLoss
from engine.models.elastic import calibrate_batchnorm
from engine.models.init import init_weights
from engine.models.spade import (STUDENT_POSITIONS, LabelEncoder, MobileSPADEGenerator, MobileSPADESupernet,
                                 MultiscaleDiscriminator, SPADEGenerator, SPADEResBlock, feature_matching_loss,
                                 mobile_spade_macs, upsampling_factor)

log = logging.getLogger(__name__)

#: The teacher's blocks whose outputs are distilled, as the reference's ``mapping_layers``.
DISTILLED = ("head_0", "G_middle_1", "up_1")
#: Images per calibration batch (the reference's batch size).
CALIBRATION_BATCH = 16


class GauGANOptions(FamilyOptions):
    """The label maps and the SPADE teacher (Cityscapes in the paper: 35 classes and instance edges, ngf 64,
    ``num_upsampling_layers more``)."""

    classes: int = Field(35, ge=1, description="label classes: ids 0..classes-1 in the label maps",
                         json_schema_extra={"unit": "classes"})
    instance_edges: bool = Field(True, description="one more input channel: the edges of <phase>_inst/ instance maps")
    ngf: int = Field(64, ge=1, description="teacher width (16 x ngf filters at the start)",
                     json_schema_extra={"unit": "channels"})
    upsampling: Literal["normal", "more"] = Field(
        "more", description="doublings of the resolution: normal 5, more 6 (one more between the middle blocks)")
    calibration_images: int = Field(
        512, ge=1, json_schema_extra={"unit": "images"},
        description="training images, drawn at random, that re-estimate a sub-network's BatchNorm statistics "
                    "(the reference's 512)")
    calibration_draw: Literal["per_candidate", "fixed"] = Field(
        "per_candidate", description="per_candidate: each sub-network's calibration sees those images in its own "
                                     "shuffled order and random flips, as the reference (seeded by the arch, so a "
                                     "score is reproducible); fixed: the same batches for every sub-network")
    calibration_momentum: Literal["running", "last_batch"] = Field(
        "running", description="running: the first calibration batch replaces a sub-network's BatchNorm statistics "
                               "and the others move them with the layer's momentum (statistics of every batch); "
                               "last_batch: every batch replaces them, so the last batch's are kept (what the "
                               "reference's calibrate does: its flag is never reset)")

    @property
    def label_channels(self) -> int:
        return self.classes + int(self.instance_edges)


def _encoder(options: GauGANOptions) -> LabelEncoder:
    return LabelEncoder(options.classes, options.instance_edges)


def _with_batch_counters(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    # NVlabs/SPADE's synchronised BatchNorm and older PyTorch saved no ``num_batches_tracked``; it counts
    # training batches only, so a missing one is the same network.
    expected = model.state_dict()
    missing = {k: torch.zeros_like(v) for k, v in expected.items()
               if k.endswith("num_batches_tracked") and k not in state}
    return {**state, **missing}


class GauGANRecipe(Recipe):
    """GauGAN's knobs beside every family's: its generator's extra losses and its teacher's spectral norms."""

    lambda_feat: float = Field(10.0, ge=0, description="discriminator feature matching")
    lambda_vgg: float = Field(10.0, ge=0, description="VGG-19 perceptual loss, when its weights are found")
    teacher_spectral_norm: bool = Field(
        False, description="a teacher trained here has spectral norms on its residual blocks' convolutions, folded "
                           "into plain weights when saved (the reference's GauGAN, NVlabs/SPADE's spectralspade norm)")

    @property
    def uses_discriminator(self) -> bool:
        return self.lambda_gan > 0 or self.lambda_feat > 0  # feature matching reads the discriminator too


class GauGANTeacherTrainer(TeacherTrainer):
    """SPADE's own training: hinge GAN loss, feature matching and (with weights) VGG loss for the generator;
    hinge loss on real photographs and generated images for the discriminator."""

    def __init__(self, family: GauGANFamily, options: GauGANOptions, recipe: GauGANRecipe):
        self.family, self.recipe = family, recipe
        self.nets = {"G": init_weights(family.build_teacher(options), recipe.init),
                     "D": init_weights(family.build_discriminator(options, recipe.ndf), recipe.init)}
        if recipe.teacher_spectral_norm:  # the teacher stage folds them into plain weights when it saves
            for block in self.nets["G"].modules():
                if isinstance(block, SPADEResBlock):
                    for name in ("conv_0", "conv_1", "conv_s"):
                        if hasattr(block, name):
                            setattr(block, name, nn.utils.spectral_norm(getattr(block, name)))
        self.criterion = GANLoss(recipe.gan_mode)
        self.vgg = family.perceptual_loss()
        self.encoder = _encoder(options)

    def step(self, batch, opt_g, opt_d) -> dict[str, float]:
        netG, netD = self.nets["G"], self.nets["D"]
        encoded = self.encoder.to(batch["A"].device)(batch["A"])
        real = batch["B"]
        set_requires_grad([netD], False)
        opt_g.zero_grad(set_to_none=True)
        fake = netG(batch["A"])
        losses = self.family.generator_losses(netD, encoded, fake, real, self.criterion, self.recipe, self.vgg)
        if not losses:
            raise ConfigError("the recipe leaves the GauGAN teacher no loss to train on (lambda_gan and lambda_feat "
                              "are 0 and there are no VGG weights): set lambda_gan or lambda_feat above 0")
        sum(losses.values()).backward()
        opt_g.step()
        set_requires_grad([netD], True)
        opt_d.zero_grad(set_to_none=True)
        with torch.no_grad():  # the generator after its step, as SPADE's compute_discriminator_loss
            fake = netG(batch["A"])
        d_losses = self.family.discriminator_losses(netD, encoded, fake, real, self.criterion)
        sum(d_losses.values()).backward()
        opt_d.step()
        return {k: v.item() for k, v in {**losses, **d_losses}.items()}


class GauGANFamily(Family, LabelMaps, Calibrated):
    name = "gaugan"
    description = "GauGAN (SPADE): label maps (class ids, optional instance edges) -> photographs"
    dataset_layout = "labelmap"
    positions = tuple(name for name, _ in STUDENT_POSITIONS)
    options_model = GauGANOptions
    metrics = ("fid", "rfid", "miou")
    compare_columns = ("input", "ground truth", "teacher", "student", "difference")
    #: G_vgg only when the VGG-19 weights are found.
    loss_names = ("G_gan", "G_feat", "G_vgg", "G_distill", "D_real", "D_fake")
    #: The reference's ``channels-64`` space for the ngf-64 teacher.
    choices = ((64, 48, 40, 32),) * 5 + ((64, 48, 40, 32, 24),) * 3
    # base_spade_distiller's options and scripts/gaugan/cityscapes_fast: hinge loss (averaged over the
    # discriminator's scales), ndf 64, Xavier initialisation, lambda_feat = lambda_vgg = lambda_distill = 10, TTUR
    # with Adam (0, 0.9), 200+200 epochs (supernet) and 100+100 (fine-tuning, the discriminator carried over, new
    # mappings), no crop jitter (data/cityscapes_dataset.py: scale_width, flip); evolution with --weighted_sample
    # 3 --weight_strategy geometric; a teacher trained here as scripts/gaugan/cityscapes/train_full.sh (NVlabs'
    # spectralspadesyncbatch3x3: spectral norms on the residual blocks' convolutions, batch 16).
    recipe_model = GauGANRecipe
    default_recipe = GauGANRecipe(gan_mode="hinge", ndf=64, init="xavier", lambda_recon=0.0, lambda_distill=10.0,
                                  lambda_feat=10.0, lambda_vgg=10.0, adam_beta1=0.0, adam_beta2=0.9, ttur=True,
                                  teacher_decay=0.5, supernet_decay=0.5, finetune_decay=0.5, crop_jitter=False,
                                  weighted_sample=3.0, weight_strategy="geometric", teacher_spectral_norm=True,
                                  student_discriminator="new", discriminator_real="real", finetune_mappings="fresh")
    workbench_changes = {**Family.workbench_changes, "init": "xavier", "gan_mode": "hinge", "lambda_distill": 10.0,
                         "crop_jitter": True, "weight_strategy": "arithmetic"}
    # base_spade_distiller and spade_model: batch 16 (BatchNorm statistics over the batch, synchronised over the
    # processes); evolution_search.sh: 200 held-out training images (train2.meta) score the search.
    run_defaults = {"batch_size": 16, "dataset": {"search_images": 200}, "image_size": "512x256"}

    # Label maps of scikit-image's photographs (8 colour classes) at 128 px, trained on 64 px crops, with a
    # teacher shipped in resources/teachers (trained by packaging/train_sample_teachers.py with this recipe).
    sample_presets = {"gaugan-sample": {
        "dataset": {"sample": "labels2photos", "sample_size": 128}, "image_size": 128, "train_crop": 64,
        "model": {"classes": 8, "instance_edges": False, "ngf": 16, "upsampling": "normal", "calibration_images": 64},
        "teacher": {"checkpoint": shipped_teacher("gaugan-labels2photos")},
        "supernet": {"steps": 500, "search_space": [[16, 12, 8]] * 5 + [[16, 12, 8, 6]] * 3},
        "search": {"method": "auto", "target_ratio": 4, "population": 12, "generations": 3},
        "finetune": {"steps": 150}, "metric": "fid"}}

    # --- options and arch space ---------------------------------------------------------------------

    def default_search_space(self, options: GauGANOptions) -> list[tuple[int, ...]]:
        # Scaled with the teacher's width, so that a narrower teacher gets proportionally narrower choices.
        return [tuple(sorted({max(1, round(c * options.ngf / 64)) for c in position}, reverse=True))
                for position in self.choices]

    def macs(self, arch: Arch, options: GauGANOptions, size: SizeHW) -> int:
        return mobile_spade_macs(arch.values, size, options.label_channels, options.upsampling)

    def size_multiple(self, options: GauGANOptions) -> int:
        return upsampling_factor(options.upsampling)

    # --- models -------------------------------------------------------------------------------------

    def describe_teacher(self, options: GauGANOptions) -> str:
        return (f"GauGAN SPADE teacher (ngf {options.ngf}, {options.classes} classes"
                f"{' + instance edges' if options.instance_edges else ''} = {options.label_channels} label channels, "
                f"upsampling {options.upsampling})")

    def build_teacher(self, options: GauGANOptions) -> SPADEGenerator:
        return SPADEGenerator(options.label_channels, options.ngf, options.upsampling, encoder=_encoder(options))

    def teacher_state(self, raw: dict[str, Any], path: Path, options: GauGANOptions) -> dict[str, torch.Tensor]:
        state = fold_spectral_norm(unwrap_state_dict(raw, path))
        return _with_batch_counters(state, self.build_teacher(options))

    def build_supernet(self, options: GauGANOptions, space: list[tuple[int, ...]]) -> MobileSPADESupernet:
        return MobileSPADESupernet(options.label_channels, Arch.largest(space).values, options.upsampling,
                                   encoder=_encoder(options))

    def build_student(self, options: GauGANOptions, arch: Arch) -> MobileSPADEGenerator:
        return MobileSPADEGenerator(options.label_channels, self.parse_arch(arch).values, options.upsampling,
                                    encoder=_encoder(options))

    def build_mappings(self, options: GauGANOptions, student_arch: Arch, init: str) -> FeatureMappings:
        # head_0 and G_middle_1 keep the stem's width (16 x position 0); up_1 is 4 x position 5 wide.
        stem, up_1 = student_arch.values[0] * 16, student_arch.values[5] * 4
        return FeatureMappings([stem, stem, up_1], [16 * options.ngf, 16 * options.ngf, 4 * options.ngf], init=init)

    def build_discriminator(self, options: GauGANOptions, ndf: int) -> MultiscaleDiscriminator:
        return MultiscaleDiscriminator(options.label_channels + 3, ndf=ndf, n_layers=4, num_d=2)

    def perceptual_loss(self) -> nn.Module | None:
        """The VGG-19 loss, or None (said once in the log) when its weights are not on disk."""
        from engine import perceptual

        weights = perceptual.find_weights()
        if weights is None:
            log.warning(perceptual.describe_missing())
            return None
        return perceptual.PerceptualLoss(weights)

    @torch.no_grad()
    def recalibrate(self, model: nn.Module, arch: Arch | None, data: Any, options: GauGANOptions) -> None:
        device = next(model.parameters()).device
        forward = (lambda x: model(x)) if arch is None else (lambda x: model(x, arch))
        batches = self._calibration_batches(data, options, None if arch is None else str(arch))
        calibrate_batchnorm(model, forward, (batch.to(device) for batch in batches),
                            every_batch_replaces=options.calibration_momentum == "last_batch")
        model.eval()

    def _calibration_batches(self, data: Any, options: GauGANOptions, arch: str | None) -> list[torch.Tensor]:
        """Batches of ``calibration_images`` training label maps drawn at random from the whole training set
        (read once per dataset: a search calibrates each of its many candidates), shuffled and flipped at random.
        ``per_candidate``: the order and the flips drawn for each sub-network (seeded by its arch string, so that
        its score is reproducible), as the reference's shuffling, flipping calibration loader; ``fixed`` (and the
        final student): one draw for every one. (The reference takes the first images of its file list; a random
        subset is the same on a shuffled list and is not one corner of a sorted one, where the last batches, which
        weigh most in the running statistics, could all come from one scene.)"""
        cache = self._calibration_cache
        if cache.get("train") is not data.train or cache.get("images") != options.calibration_images:
            count = min(options.calibration_images, len(data.train))
            if hasattr(data.train, "seed_augmentation"):
                data.train.seed_augmentation(0)
            chosen = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))[:count].tolist()
            # The dataset itself is kept (not its id, which a later dataset could reuse).
            self._calibration_cache = {"train": data.train, "images": options.calibration_images,
                                       "maps": torch.stack([data.train[i]["A"] for i in chosen])}
        maps = self._calibration_cache["maps"]
        per_candidate = options.calibration_draw == "per_candidate" and arch is not None
        seed = int.from_bytes(hashlib.sha256(arch.encode()).digest()[:6], "big") if per_candidate else 0  # type: ignore[union-attr]
        generator = torch.Generator().manual_seed(seed)
        maps = maps[torch.randperm(len(maps), generator=generator)]
        flip = torch.rand(len(maps), generator=generator) < 0.5
        maps = torch.where(flip[:, None, None, None], maps.flip(-1), maps)
        return list(maps.split(CALIBRATION_BATCH))

    _calibration_cache: dict[str, Any] = {}

    # --- data, inputs, export -----------------------------------------------------------------------

    def dataset_settings(self, options: GauGANOptions) -> dict[str, Any]:
        return {"label_classes": options.classes, "instance_maps": options.instance_edges}

    def example_inputs(self, options: GauGANOptions, size: SizeHW, batch: int = 1) -> tuple[torch.Tensor, ...]:
        return (torch.zeros(batch, 1 + int(options.instance_edges), *size),)

    def random_label_maps(self, options: GauGANOptions, size: SizeHW, generator: torch.Generator) -> torch.Tensor:
        # Regions of 8x8 pixels, so that every resolution of the generator sees more than one class.
        height, width = size
        ids = torch.randint(0, options.classes, (1, 1, -(-height // 8), -(-width // 8)), generator=generator)
        ids = ids.repeat_interleave(8, 2).repeat_interleave(8, 3)[:, :, :height, :width].float()
        return torch.cat([ids, ids], 1) if options.instance_edges else ids

    def label_ids(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs[:, 0].round().long()

    def colourise(self, inputs: torch.Tensor, options: GauGANOptions) -> torch.Tensor:
        return label_maps.colourise(inputs, options.classes)

    def label_map_from_file(self, path: Path, options: GauGANOptions, size: SizeHW) -> torch.Tensor:
        from engine.data.images import load_image
        from engine.data.layouts import check_class_ids

        path = Path(path)
        label = load_image(path, mode="")
        if label.mode not in ("L", "P", "I", "I;16"):
            raise DatasetError(f"{path} has mode {label.mode}: open a label map (one class id per pixel, PNG), "
                               "not a photograph")
        ids = _ids_at(label, size)
        check_class_ids(ids, options.classes, path)
        channels = [ids]
        if options.instance_edges:
            # A label map of the labelmap layout has its instance map in the sibling <phase>_inst folder.
            sibling = path.parent.parent / path.parent.name.replace("_label", "_inst") / f"{path.stem}.png"
            if not sibling.is_file():
                raise UserError(f"the run uses instance edges but {sibling} (the instance map of {path.name}) does "
                                "not exist; open a label map that has one")
            channels.append(_ids_at(load_image(sibling, mode=""), size))
        return torch.stack(channels).to(torch.float32)[None]

    def photo_beside(self, path: Path, options: GauGANOptions, size: SizeHW) -> torch.Tensor | None:
        """The photograph of the labelmap layout beside the label map (``<phase>_img/NAME.*``), if any."""
        from engine.data.images import is_image_file, load_image

        path = Path(path)
        folder = path.parent.parent / path.parent.name.replace("_label", "_img")
        if folder == path.parent or not folder.is_dir():
            return None
        photo = next((p for p in sorted(folder.glob(f"{path.stem}.*")) if is_image_file(p)), None)
        return None if photo is None else prepared_image(load_image(photo), size)

    def teacher_trainer(self, options: GauGANOptions, recipe: GauGANRecipe, seed: int) -> GauGANTeacherTrainer:
        return GauGANTeacherTrainer(self, options, recipe)

    # --- losses and distillation (base_spade_distiller's compute_G_loss / compute_D_loss) ---------------

    def generator_losses(self, netD: nn.Module, encoded: torch.Tensor, fake: torch.Tensor, real: torch.Tensor,
                         criterion: GANLoss, recipe: GauGANRecipe, vgg: nn.Module | None,
                         d_real: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``d_real``: what feature matching reads the discriminator on as real, where not ``real`` (the
        perceptual loss always compares with the photograph)."""
        losses = {}
        if recipe.uses_discriminator:
            pred_fake = netD(torch.cat([encoded, fake], 1))
            with torch.no_grad():
                pred_real = netD(torch.cat([encoded, real if d_real is None else d_real], 1))
            losses = {"G_gan": criterion([p[-1] for p in pred_fake], True, for_discriminator=False) * recipe.lambda_gan,
                      "G_feat": feature_matching_loss(pred_fake, pred_real) * recipe.lambda_feat}
        if vgg is not None:
            losses["G_vgg"] = vgg.to(fake.device)(fake, real) * recipe.lambda_vgg
        return losses

    def discriminator_losses(self, netD: nn.Module, encoded: torch.Tensor, fake: torch.Tensor, real: torch.Tensor,
                             criterion: GANLoss) -> dict[str, torch.Tensor]:
        pred_fake = netD(torch.cat([encoded, fake], 1))
        pred_real = netD(torch.cat([encoded, real], 1))
        return {"D_fake": criterion([p[-1] for p in pred_fake], False),
                "D_real": criterion([p[-1] for p in pred_real], True)}

    def distill_step(self, state: DistillState, batch: dict[str, torch.Tensor], arch: Arch | None) -> dict[str, float]:
        recipe, netD, criterion = state.recipe, state.netD, state.criterion
        labels, real = batch["A"], batch["B"]
        with torch.no_grad():
            teacher_out, teacher_features = state.teacher.forward_with_features(labels)
            encoded = state.teacher.encoder(labels)
        out, features = state.forward(labels, arch)
        real_for_d = recipe.discriminator_real_images(real, teacher_out)

        set_requires_grad([netD], False)
        state.opt_g.zero_grad(set_to_none=True)
        losses = self.generator_losses(netD, encoded, out, real, criterion, recipe, state.extras.get("vgg"),
                                       d_real=real_for_d)
        mapped = state.mappings([features[name] for name in DISTILLED])
        losses["G_distill"] = sum(torch.nn.functional.mse_loss(m, teacher_features[name])
                                  for m, name in zip(mapped, DISTILLED)) * recipe.lambda_distill
        sum(losses.values()).backward()
        state.opt_g.step()

        d_losses = {}
        if recipe.uses_discriminator:
            set_requires_grad([netD], True)
            state.opt_d.zero_grad(set_to_none=True)
            with torch.no_grad():  # the student after its step, as the reference's compute_D_loss
                fake = state.forward(labels, arch)[0]
            d_losses = self.discriminator_losses(netD, encoded, fake, real_for_d, criterion)
            sum(d_losses.values()).backward()
            state.opt_d.step()
        return {k: v.item() for k, v in {**losses, **d_losses}.items()}

    def distill_extras(self, options: GauGANOptions) -> dict[str, Any]:
        return {"vgg": self.perceptual_loss()}


def _ids_at(image: Image.Image, size: SizeHW) -> torch.Tensor:
    height, width = size
    return torch.from_numpy(np.array(image.resize((width, height), Image.NEAREST), dtype=np.int64))


FAMILIES.register("gaugan")(GauGANFamily())
