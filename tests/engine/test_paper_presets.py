"""The paper's experiments as presets: each resolves to the values of the reference's scripts (written here from
them, independently of engine/paper_presets.py, with the file each comes from), a run that keeps them is on the
"paper protocol", and one that departs lists every departure."""

from __future__ import annotations

import pytest

from engine.config import PRESETS, load_config
from engine.model_card import protocol_of
from engine.paper_presets import PAPER_PRESETS
from engine.preflight import preflight
from engine.settings import Settings

# (preset, setting, value, where in mit-han-lab/gan-compression)
SCRIPTS = [
    ("paper-cyclegan-horse2zebra", "supernet.steps", 400 * 1214, "horse2zebra_fast/train_supernet.sh 200+200 epochs; "
                                                                 "metas/horse2zebra/train1B.meta 1214 names"),
    ("paper-cyclegan-horse2zebra", "search.macs_budget", 3e9, "horse2zebra_fast/evolution_search.sh --budget 3e9"),
    ("paper-cyclegan-horse2zebra", "dataset.search_images", 120, "metas/horse2zebra/train2A.meta"),
    ("paper-cyclegan-horse2zebra", "recipe.mutation_prob", 0.4, "evolution_search.sh --mutate_prob 0.4"),
    ("paper-cyclegan-horse2zebra", "recipe.weighted_sample", 2.0, "evolution_search.sh --weighted_sample 2"),
    ("paper-cyclegan-horse2zebra", "finetune.steps", 0, "no horse2zebra_fast/finetune.sh"),
    ("paper-cyclegan-horse2zebra", "batch_size", 1, "options/base_options.py --batch_size 1"),
    ("paper-pix2pix-edges2shoes", "supernet.steps", 40 * 11483, "edges2shoes-r_fast/train_supernet.sh 10+30 epochs, "
                                                                "--batch_size 4; train1.meta 45929 names"),
    ("paper-pix2pix-edges2shoes", "finetune.steps", 20 * 11483, "edges2shoes-r_fast/finetune.sh 5+15 epochs"),
    ("paper-pix2pix-edges2shoes", "search.macs_budget", 4.9e9, "evolution_search.sh --budget 4.9e9"),
    ("paper-pix2pix-edges2shoes", "dataset.search_images", 2048, "metas/edges2shoes-r/train2.meta"),
    ("paper-pix2pix-edges2shoes", "dataset.search_statistics", "train", "--real_stat_path ..._subtrain_B.npz"),
    ("paper-pix2pix-edges2shoes", "recipe.supernet_decay", 0.75, "30 of 40 epochs decaying"),
    ("paper-pix2pix-map2sat", "supernet.steps", 600 * 796, "map2sat_fast/train_supernet.sh 200+400; train1.meta 796"),
    ("paper-pix2pix-map2sat", "finetune.steps", 300 * 796, "map2sat_fast/finetune.sh 100+200"),
    ("paper-pix2pix-map2sat", "search.macs_budget", 4.6e9, "evolution_search.sh --budget 4.6e9"),
    ("paper-pix2pix-map2sat", "dataset.direction", "BtoA", "--direction BtoA"),
    ("paper-pix2pix-map2sat", "recipe.lambda_recon", 10.0, "train_supernet.sh --lambda_recon 10"),
    ("paper-pix2pix-map2sat", "recipe.lambda_distill", 0.01, "train_supernet.sh --lambda_distill 0.01"),
    ("paper-pix2pix-map2sat", "dataset.search_images", 300, "metas/maps/train2.meta"),
    ("paper-pix2pix-cityscapes", "supernet.steps", 500 * 2775, "cityscapes_fast/train_supernet.sh 200+300; train1 2775"),
    ("paper-pix2pix-cityscapes", "search.macs_budget", 5.7e9, "evolution_search.sh --budget 5.7e9"),
    ("paper-pix2pix-cityscapes", "recipe.supernet_decay", 0.6, "300 of 500 epochs decaying"),
    ("paper-gaugan-cityscapes", "supernet.steps", 400 * 174, "gaugan/cityscapes_fast/train_supernet.sh 200+200 at "
                                                            "batch 16 (spade_supernet.py); train1.meta 2775"),
    ("paper-gaugan-cityscapes", "finetune.steps", 200 * 174, "cityscapes_fast/finetune.sh 100+100"),
    ("paper-gaugan-cityscapes", "search.macs_budget", 32e9, "evolution_search.sh --budget 32e9"),
    ("paper-gaugan-cityscapes", "metric", "miou", "evolution_search.sh --criterion mIoU"),
    ("paper-gaugan-cityscapes", "batch_size", 16, "supernets/spade_supernet.py batch_size=16"),
    ("paper-gaugan-cityscapes", "image_size", "512x256", "Cityscapes at 512x256"),
    ("paper-gaugan-cityscapes", "recipe.weight_strategy", "geometric", "--weight_strategy geometric"),
    ("paper-gaugan-cityscapes", "recipe.weighted_sample", 3.0, "--weighted_sample 3"),
    ("paper-munit-edges2shoes", "supernet.steps", 42 * 45929, "munit/edges2shoes-r_fast/train_supernet.sh --nepochs 42 "
                                                             "(within --niters 2000000); train1A.meta 45929"),
    ("paper-munit-edges2shoes", "search.macs_budget", 2.7e9, "evolution_search.sh --budget 2.7e9"),
    ("paper-munit-edges2shoes", "dataset.search_images", 2048, "metas/edges2shoes-r-unaligned/train2A.meta"),
    ("paper-munit-edges2shoes", "recipe.lr_decay_steps", 200_000, "train_supernet.sh --lr_decay_steps 200000"),
]
# Every experiment: the evolution's defaults (options/evolution_options.py), a random held-out draw.
COMMON = {"search.method": "evolution", "search.population": 100, "search.generations": 500,
          "search.target_ratio": None, "dataset.search_split": "random"}


@pytest.mark.parametrize("name,key,value,source", SCRIPTS + [(name, k, v, "evolution_options.py")
                                                             for name in PAPER_PRESETS for k, v in COMMON.items()])
def test_each_paper_preset_resolves_to_the_reference_scripts_values(name, key, value, source):
    settings = load_config(name).protocol_settings()
    assert settings[key] == pytest.approx(value) if isinstance(value, float) else settings[key] == value, source


def test_the_six_experiments_of_the_table_are_presets():
    assert sorted(PAPER_PRESETS) == ["paper-cyclegan-horse2zebra", "paper-gaugan-cityscapes", "paper-munit-edges2shoes",
                                     "paper-pix2pix-cityscapes", "paper-pix2pix-edges2shoes", "paper-pix2pix-map2sat"]
    assert set(PAPER_PRESETS) <= set(PRESETS)
    for preset in PAPER_PRESETS.values():
        assert "Should land near" in preset.description() and preset.dataset_script in preset.description()


def test_a_paper_run_says_paper_protocol_and_a_departing_one_lists_every_departure():
    kept = load_config("paper-pix2pix-map2sat", overrides={"dataset": {"path": "/data/maps"},
                                                           "teacher": {"checkpoint": "/t/latest_net_G.pth"}})
    assert kept.departures == {} and protocol_of(kept)["words"] == "paper protocol"
    shorter = load_config("paper-pix2pix-map2sat", overrides={"supernet": {"steps": 10}, "train_crop": 64,
                                                              "model": {"ngf": 32}})
    assert set(shorter.departures) == {"supernet.steps", "train_crop", "model.ngf"}
    assert shorter.departures["supernet.steps"] == {"run": 10, "reference": 477600}
    assert protocol_of(shorter)["words"] == "departs from the paper protocol (paper-pix2pix-map2sat) in 3 settings"
    # A run of no paper preset is compared with its family's first experiment: a GauGAN run of 10 steps on 64 px
    # crops lists those, and more.
    gaugan = load_config("gaugan-sample", overrides={"supernet": {"steps": 10}})
    assert {"supernet.steps", "train_crop", "batch_size", "search.macs_budget"} <= set(gaugan.departures)


def test_a_missing_dataset_folder_names_the_reference_script_that_makes_it(tmp_path):
    config = load_config("paper-cyclegan-horse2zebra", overrides={"dataset": {"path": str(tmp_path / "nowhere")}})
    checked = preflight(config, Settings(workspace=tmp_path / "ws"))
    [problem] = checked.problems_for("dataset.path")
    assert "bash datasets/download_cyclegan_dataset.sh horse2zebra" in problem.sentence
    assert problem.sentence.startswith(f"dataset.path {tmp_path / 'nowhere'} is not a folder")


def test_config_labels_the_generic_lengths_and_budget_as_this_programs_defaults():
    from engine.config import explain_config

    _, _, sources = explain_config(family="pix2pix")
    for name in ("supernet.steps", "finetune.steps", "search.target_ratio", "dataset.search_images"):
        assert sources[name] == "this program's default, not the paper's", name
    assert sources["search.population"] == "default"  # the reference's own (options/evolution_options.py)
    _, _, from_preset = explain_config("paper-pix2pix-map2sat")
    assert from_preset["supernet.steps"] == "preset paper-pix2pix-map2sat"
