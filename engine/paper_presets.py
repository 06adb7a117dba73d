"""The paper's experiments as presets: ``paper-<family>-<dataset>``, one per row of its table that its "fast"
pipeline reproduces, with every setting the reference's scripts use for it.

Each value is written from mit-han-lab/gan-compression (``scripts/<family>/<dataset>_fast/*.sh``,
``options/*.py``, ``datasets/metas/``), cited beside it. Lengths are the reference's epochs turned into our
steps (iterations of one batch): epochs x training images / batch, where the training images are the
reference's ``train1`` meta list (the training folder less the held-out ``train2`` list) and an unpaired set's
length is its larger domain's, as the reference's ``UnalignedDataset`` counts it.

A preset needs the user's dataset folder where the reference's download script puts it (``dataset.path``,
relative to the working directory as in the scripts) and the reference's released teacher
(``teacher.checkpoint``; ``--set`` either to point elsewhere). The held-out search images are drawn at random
across the training folder (``dataset.search_split: random``) in the reference's number; for the very same
images give the reference's list: ``--set dataset.search_list=datasets/metas/<dataset>/train2.meta``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PaperPreset:
    name: str
    family: str
    #: The reference's script that makes the dataset folder (said when the folder is missing).
    dataset_script: str
    #: The figure of the paper's table a run of it should land near.
    paper_figure: str
    settings: dict[str, Any] = field(default_factory=dict)

    def description(self) -> str:
        return (f"The paper's {self.family} experiment on {self.name.split('-', 2)[2]} with every setting of the "
                f"reference's fast pipeline (engine/paper_presets.py cites each). Should land near: "
                f"{self.paper_figure}. Needs the dataset made by `{self.dataset_script}` at "
                f"{self.settings['dataset']['path']} and the reference's released teacher at "
                f"{self.settings['teacher']['checkpoint']} (--set dataset.path=... / teacher.checkpoint=...). "
                f"Days on one GPU: `python main.py config --preset {self.name} --check --estimate` gives its time.")


def _steps(epochs: int, images: int, batch: int) -> int:
    """The reference's epochs as iterations: ``ceil(images / batch)`` batches an epoch."""
    return epochs * -(-images // batch)


PAPER_PRESETS: dict[str, PaperPreset] = {p.name: p for p in (
    PaperPreset(
        "paper-cyclegan-horse2zebra", "cyclegan", "bash datasets/download_cyclegan_dataset.sh horse2zebra",
        "FID 65.19 at 2.64G MACs (Fast GAN Compression; the teacher 65.75 at 56.8G)",
        {"dataset": {"path": "database/horse2zebra",  # train_supernet.sh --dataroot
                     "search_split": "random",
                     "search_images": 120},  # evolution_search.sh --meta_path train2A.meta: 120 names
         "teacher": {"checkpoint": "pretrained/cycle_gan/horse2zebra/full/latest_net_G.pth"},  # --restore_teacher_G_path
         "image_size": 256,  # options/base_options.py --crop_size 256
         "batch_size": 1,  # options/base_options.py --batch_size 1
         # train_supernet.sh --nepochs 200 --nepochs_decay 200 over max(train1A 947, train1B 1214) images
         "supernet": {"steps": _steps(400, 1214, 1)},
         "recipe": {"supernet_decay": 0.5, "mutation_prob": 0.4, "weighted_sample": 2.0},  # 200/400; --mutate_prob 0.4 --weighted_sample 2
         # evolution_search.sh --budget 3e9; options/evolution_options.py population 100, 500 iterations
         "search": {"method": "evolution", "macs_budget": 3e9, "target_ratio": None, "population": 100,
                    "generations": 500},
         "finetune": {"steps": 0},  # the fast pipeline has no finetune.sh for horse2zebra
         "metric": "fid"}),  # --real_stat_path real_stat/horse2zebra_B.npz: domain B, train and test
    PaperPreset(
        "paper-pix2pix-edges2shoes", "pix2pix", "bash datasets/download_pix2pix_dataset.sh edges2shoes-r",
        "FID 25.76 at 4.83G MACs (Fast GAN Compression; the teacher 24.12 at 56.8G)",
        {"dataset": {"path": "database/edges2shoes-r", "search_split": "random",
                     "search_images": 2048,  # evolution_search.sh --meta_path train2.meta: 2048 names
                     "search_statistics": "train"},  # --real_stat_path edges2shoes-r_subtrain_B.npz
         "teacher": {"checkpoint": "pretrained/pix2pix/edges2shoes-r/full/latest_net_G.pth"},
         "image_size": 256, "batch_size": 4,  # train_supernet.sh --batch_size 4
         "supernet": {"steps": _steps(40, 45929, 4)},  # --nepochs 10 --nepochs_decay 30; train1.meta 45929 names
         "recipe": {"supernet_decay": 0.75, "finetune_decay": 0.75, "mutation_prob": 0.3},  # 30/40, 15/20; --mutate_prob 0.3
         "search": {"method": "evolution", "macs_budget": 4.9e9, "target_ratio": None, "population": 100,
                    "generations": 500},  # --budget 4.9e9
         "finetune": {"steps": _steps(20, 45929, 4)},  # finetune.sh --nepochs 5 --nepochs_decay 15
         "metric": "fid"}),
    PaperPreset(
        "paper-pix2pix-map2sat", "pix2pix", "bash datasets/download_pix2pix_dataset.sh maps",
        "FID 48.02 at 4.68G MACs (GAN Compression; the teacher 47.91 at 56.8G)",
        {"dataset": {"path": "database/maps", "direction": "BtoA",  # --direction BtoA
                     "search_split": "random", "search_images": 300,  # train2.meta: 300 names
                     "search_statistics": "train"},  # --real_stat_path maps_subtrain_A.npz
         "teacher": {"checkpoint": "pretrained/pix2pix/map2sat/full/latest_net_G.pth"},
         "image_size": 256, "batch_size": 1,
         "supernet": {"steps": _steps(600, 796, 1)},  # --nepochs 200 --nepochs_decay 400; train1.meta 796 names
         # --lambda_recon 10 --lambda_distill 0.01; 400/600 and 200/300 decaying; --mutate_prob 0.3
         "recipe": {"lambda_recon": 10.0, "lambda_distill": 0.01, "supernet_decay": 400 / 600,
                    "finetune_decay": 200 / 300, "mutation_prob": 0.3},
         "search": {"method": "evolution", "macs_budget": 4.6e9, "target_ratio": None, "population": 100,
                    "generations": 500},  # --budget 4.6e9
         "finetune": {"steps": _steps(300, 796, 1)},  # finetune.sh --nepochs 100 --nepochs_decay 200
         "metric": "fid"}),
    PaperPreset(
        "paper-pix2pix-cityscapes", "pix2pix", "bash datasets/download_pix2pix_dataset.sh cityscapes",
        "mIoU 41.71 at 5.61G MACs (Fast GAN Compression; the teacher 42.06 at 56.8G); scored here by FID, as this "
        "program's pix2pix has no label ids to compute mIoU against (its one departure, listed on the card)",
        {"dataset": {"path": "database/cityscapes", "direction": "BtoA",  # --direction BtoA
                     "search_split": "random", "search_images": 200},  # train2.meta: 200 names
         "teacher": {"checkpoint": "pretrained/pix2pix/cityscapes/full/latest_net_G.pth"},
         "image_size": 256, "batch_size": 1,
         "supernet": {"steps": _steps(500, 2775, 1)},  # --nepochs 200 --nepochs_decay 300; train1.meta 2775 names
         "recipe": {"supernet_decay": 0.6, "mutation_prob": 0.3},  # 300/500; --mutate_prob 0.3
         # evolution_search.sh --budget 5.7e9 --criterion mIoU: see paper_figure for the metric
         "search": {"method": "evolution", "macs_budget": 5.7e9, "target_ratio": None, "population": 100,
                    "generations": 500},
         "finetune": {"steps": 0},  # no finetune.sh in scripts/pix2pix/cityscapes_fast
         "metric": "fid"}),
    PaperPreset(
        "paper-gaugan-cityscapes", "gaugan", "python datasets/prepare_cityscapes_dataset.py (Cityscapes from its site)",
        "mIoU 61.22, FID 55.19 at 31.7G MACs (GAN Compression; the teacher 61.04 and 57.60 at 281G)",
        {"dataset": {"path": "database/cityscapes-origin", "search_split": "random",
                     "search_images": 200},  # train2.meta: 200 names
         "teacher": {"checkpoint": "pretrained/gaugan/cityscapes/full/latest_net_G.pth"},
         "image_size": "512x256", "batch_size": 16,  # supernets/spade_supernet.py batch_size 16
         "supernet": {"steps": _steps(400, 2775, 16)},  # --nepochs 200 --nepochs_decay 200; train1.meta 2775
         "recipe": {"supernet_decay": 0.5, "finetune_decay": 0.5, "weighted_sample": 3.0,
                    "weight_strategy": "geometric"},  # evolution_search.sh --weighted_sample 3 --weight_strategy geometric
         "search": {"method": "evolution", "macs_budget": 32e9, "target_ratio": None, "population": 100,
                    "generations": 500},  # --budget 32e9 --criterion mIoU
         "finetune": {"steps": _steps(200, 2775, 16)},  # finetune.sh --nepochs 100 --nepochs_decay 100
         # --drn_path drn-d-105_ms_cityscapes.pth, exported to ONNX by the user; its 19 outputs are Cityscapes'
         # evaluation classes, whose label ids (cityscapesScripts' labels.py, trainId 0-18) these are
         "segmentation": {"onnx": "drn-d-105_ms_cityscapes.onnx",
                          "classes": [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]},
         "metric": "miou"}),
    PaperPreset(
        "paper-munit-edges2shoes", "munit",
        "bash datasets/download_pix2pix_dataset.sh edges2shoes-r, then python datasets/separate_A_and_B.py",
        "FID 30.53 at 2.63G MACs (Fast GAN Compression; the teacher 30.13 at 77.3G)",
        {"dataset": {"path": "database/edges2shoes-r-unaligned", "search_split": "random",
                     "search_images": 2048},  # train2A.meta: 2048 names; --real_stat_path ..._subtrain_B.npz
         "teacher": {"checkpoint": "pretrained/munit/edges2shoes-r_fast/full/latest_net_G.pth"},
         "image_size": 256, "batch_size": 1,
         # train_supernet.sh --nepochs 42 (nepochs_decay 0) over train1A's 45929 names: 1,929,018 iterations,
         # within its --niters 2000000
         "supernet": {"steps": min(_steps(42, 45929, 1), 2_000_000)},
         "recipe": {"lr_decay_steps": 200_000, "weighted_sample": 2.0, "weight_strategy": "geometric"},
         "search": {"method": "evolution", "macs_budget": 2.7e9, "target_ratio": None, "population": 100,
                    "generations": 500},  # evolution_search.sh --budget 2.7e9
         "finetune": {"steps": 0},  # no finetune.sh in scripts/munit/edges2shoes-r_fast
         "metric": "fid"}),
)}


def preset_settings(preset: PaperPreset) -> dict[str, Any]:
    """The preset as a configuration layer (with its name and family)."""
    return {"name": preset.name, "family": preset.family, "protocol": preset.name, **preset.settings}


def missing_dataset(protocol: str | None, path: Path | str | None) -> str | None:
    """For a run of a paper preset whose dataset folder is not there: one line naming the reference's script
    that makes it (None otherwise)."""
    preset = PAPER_PRESETS.get(protocol or "")
    if preset is None or path is None or Path(path).expanduser().is_dir():
        return None
    return (f"dataset.path {path} is not a folder: {preset.name} needs the reference's dataset there, made by "
            f"`{preset.dataset_script}` in a clone of mit-han-lab/gan-compression; or --set dataset.path=YOUR_FOLDER")
