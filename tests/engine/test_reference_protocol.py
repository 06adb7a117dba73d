"""Each family's defaults are the reference's recipe and evaluation protocol (mit-han-lab/gan-compression; the
file each value comes from is named beside it), and the mechanics behind them: per-family run defaults, the
geometric first-generation weighting, the summed multi-scale GAN loss. The step schedule is tested in
tests/engine/stages/test_schedule.py; whole-split evaluation and the real images each split is scored against in
tests/engine/stages/test_data.py."""

import json
import random

import torch
import torch.nn.functional as F

import main
from engine.arch import Arch
from engine.config import explain_config, load_config
from engine.losses import GANLoss
from engine.search import SearchProblem, _random_fitting, sample_weights
from engine.stages.resources import build_mappings


def _defaults(family: str):
    config, settings, sources = explain_config(family=family)
    return config, settings


def test_every_family_scores_the_whole_test_split_by_default():
    # test.py scores every image of the test/val split (no --num_test in the fast scripts' test_compressed.sh).
    for family in ("cyclegan", "pix2pix", "gaugan", "munit"):
        assert _defaults(family)[0].dataset.test_images is None


def test_cyclegan_defaults_are_the_references():
    config, _ = _defaults("cyclegan")
    recipe = config.resolved_recipe
    # docs/tutorials/fast_gan_compression.md: fine-tuning raised horse2zebra's FID, so the fast pipeline skips it.
    assert config.finetune.steps == 0
    # scripts/cycle_gan/horse2zebra_fast/evolution_search.sh: --weighted_sample 2 (arithmetic) --mutate_prob 0.4.
    assert (recipe.weighted_sample, recipe.weight_strategy, recipe.mutation_prob) == (2.0, "arithmetic", 0.4)
    # README "FID Computation": CycleGAN against real training + test images (horse2zebra_B.npz).
    assert config.family_impl.real_statistics_from == {"search": "train+test", "test": "train+test"}
    assert recipe.crop_jitter  # base_options: load 286, crop 256


def test_pix2pix_keeps_its_fine_tuning_and_crop_jitter():
    config, _ = _defaults("pix2pix")
    # scripts/pix2pix/edges2shoes-r_fast/finetune.sh exists and its tutorial recommends it.
    assert config.finetune.steps == 500
    assert config.resolved_recipe.crop_jitter and config.size_hw == (256, 256)
    assert config.family_impl.real_statistics_from == {"search": "split", "test": "split"}


def test_gaugan_defaults_are_the_references():
    config, _ = _defaults("gaugan")
    recipe, options = config.resolved_recipe, config.options
    # distillers/base_spade_distiller.py set_defaults: batch_size=16.
    assert config.batch_size == 16
    # scripts/gaugan/cityscapes_fast/evolution_search.sh: train2.meta (200 held-out images), --weighted_sample 3
    # --weight_strategy geometric.
    assert config.dataset.search_images == 200
    assert (recipe.weighted_sample, recipe.weight_strategy) == (3.0, "geometric")
    # data/cityscapes_dataset.py: preprocess scale_width, load = crop = 512 (aspect 2): no crop jitter.
    assert not recipe.crop_jitter and config.size_hw == (256, 512)
    # data/__init__.py create_train_dataloader: max_dataset_size 512, shuffled, flipped.
    assert (options.calibration_images, options.calibration_draw) == (512, "per_candidate")
    assert (recipe.gan_mode, recipe.lr_policy) == ("hinge", "linear")


def test_munit_defaults_are_the_references():
    config, _ = _defaults("munit")
    recipe = config.resolved_recipe
    # distillers/base_munit_distiller.py and models/munit_model.py set_defaults: lr 1e-4, lr_policy step;
    # scripts/munit/edges2shoes-r_fast/train_supernet.sh --lr_decay_steps 200000; options/train_options.py
    # --lr_decay_steps 100000 for the teacher; gamma 0.5.
    assert (config.teacher.lr, config.supernet.lr, config.finetune.lr) == (1e-4, 1e-4, 1e-4)
    assert (recipe.lr_policy, recipe.lr_decay_steps, recipe.teacher_lr_decay_steps) == ("step", 200_000, 100_000)
    # evolution_search.sh: train2A.meta (2048 held-out images), --weighted_sample 2 --weight_strategy geometric.
    assert config.dataset.search_images == 2048
    assert (recipe.weighted_sample, recipe.weight_strategy) == (2.0, "geometric")
    # No fine-tuning script in scripts/munit/edges2shoes-r_fast.
    assert config.finetune.steps == 0
    # base_munit_distiller: load_size 256 (= crop 256), netA through init_net's default normal(0, 0.02).
    assert not recipe.crop_jitter and recipe.mapping_init == "normal"
    # evolution_search.sh scores against subtrain_B; test_compressed.sh against edges2shoes-r_B.npz, which
    # get_real_stat.py makes from its default phase, val.
    assert config.family_impl.real_statistics_from == {"search": "train", "test": "test"}


def test_a_preset_or_a_file_wins_over_the_family_defaults(tmp_path):
    config = load_config("munit-sample")
    assert config.dataset.search_images == 40 and config.finetune.steps == 150
    path = tmp_path / "run.yaml"
    path.write_text("family: gaugan\ndataset: {path: data}\nbatch_size: 2\n")
    config, _, sources = explain_config(path=path)
    assert config.batch_size == 2 and sources["batch_size"] == str(path)
    assert config.dataset.search_images == 200 and sources["dataset.search_images"] == "family default"
    assert sources["seed"] == "default" and sources["recipe.weight_strategy"] == "family default"


def test_config_command_prints_the_resolved_run_with_sources(capsys):
    assert main.main(["config", "--preset", "gaugan-sample", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["config"]["model"]["calibration_images"] == 64
    assert shown["sources"]["model.calibration_images"] == "preset gaugan-sample"
    assert shown["config"]["recipe"]["weight_strategy"] == "geometric"
    assert shown["sources"]["recipe.weight_strategy"] == "family default"
    assert main.main(["config", "--family", "munit"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split()[:2] == ["dataset.search_images", "2048"] and line.endswith("(family default)")
               for line in lines)
    assert main.main(["config"]) == 2
    assert "--preset" in capsys.readouterr().err


def test_geometric_weights_and_the_first_generation_they_draw():
    # configs/channel_configs.py: weights 1, w, w^2, ... from the widest choice.
    assert sample_weights((64, 48, 40, 32), 3.0, "geometric") == [1.0, 3.0, 9.0, 27.0]
    assert sample_weights((64, 48, 40, 32), 3.0, "arithmetic") == [1.5, 2.5, 3.5, 4.5]
    assert sample_weights((64, 48), 1.0, "geometric") is None
    space = [(64, 48, 40, 32)] * 3
    problem = SearchProblem(space=space, macs=lambda a: 0, score=lambda a: 0.0, budget=1.0)
    rng = random.Random(0)
    draws = [_random_fitting(problem, rng, 3.0, "geometric") for _ in range(4000)]
    counts = {width: sum(arch.values[0] == width for arch in draws) for width in space[0]}
    for width, weight in zip((64, 48, 40, 32), (1, 3, 9, 27)):
        expected = 4000 * weight / 40
        assert abs(counts[width] - expected) < 5 * (expected * (1 - weight / 40)) ** 0.5, counts


def test_multiscale_gan_loss_sums_lsgan_scales_and_averages_hinge():
    torch.manual_seed(0)
    scales = [torch.randn(2, 1, 8, 8), torch.randn(2, 1, 4, 4), torch.randn(2, 1, 2, 2)]
    by_hand = sum(((p - 1) ** 2).mean() for p in scales)
    torch.testing.assert_close(GANLoss("lsgan")(scales, True), by_hand, rtol=1e-6, atol=0)
    fake_by_hand = sum((p ** 2).mean() for p in scales)
    torch.testing.assert_close(GANLoss("lsgan")(scales, False), fake_by_hand, rtol=1e-6, atol=0)
    bce = sum(F.binary_cross_entropy_with_logits(p, torch.ones_like(p)) for p in scales)
    torch.testing.assert_close(GANLoss("vanilla")(scales, True), bce, rtol=1e-6, atol=0)
    hinge = sum(torch.relu(1 - p).mean() for p in scales) / 3
    torch.testing.assert_close(GANLoss("hinge")(scales, True), hinge, rtol=1e-6, atol=0)
    generator_hinge = sum(-p.mean() for p in scales) / 3
    torch.testing.assert_close(GANLoss("hinge")(scales, True, for_discriminator=False), generator_hinge,
                               rtol=1e-6, atol=0)


def test_munit_mapping_starts_from_normal_002():
    config = load_config(overrides={"family": "munit", "dataset": {"path": "d"}})
    torch.manual_seed(0)
    weights = torch.cat([m.weight.flatten() for m in build_mappings(config, Arch((64,) * 10)).maps])
    # 256 x 256 weights from N(0, 0.02): their standard deviation within a few per cent of 0.02.
    assert abs(weights.std().item() - 0.02) < 0.001


def test_the_model_card_lists_every_departure_from_the_reference():
    # The recipe at its defaults is the reference's; the program's generic lengths and budget are not the paper's
    # (issue 42): a default run departs in those alone, the paper preset in nothing.
    defaults = load_config(overrides={"family": "munit", "dataset": {"path": "d"}}).departures
    assert not any(key.startswith("recipe.") for key in defaults)
    assert {"supernet.steps", "search.macs_budget", "search.target_ratio"} <= set(defaults)
    assert load_config("paper-munit-edges2shoes").departures == {}
    departures = load_config("munit-sample").departures
    assert departures["recipe.lambda_gan"] == {"run": 0.0, "reference": 1.0}
    assert departures["dataset.search_images"] == {"run": 40, "reference": 2048}
    assert departures["supernet.lr"] == {"run": 5e-4, "reference": 1e-4}
    assert "recipe.gan_mode" not in departures  # what the preset leaves at the reference's is not listed
