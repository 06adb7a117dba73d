import pytest

from engine.config import PRESETS, SAMPLE_PRESETS, load_config
from engine.errors import ConfigError
from engine.families import get_family


@pytest.mark.parametrize("preset", SAMPLE_PRESETS)
def test_presets_are_valid_and_use_built_in_samples(preset):
    config = load_config(preset)
    assert config.dataset.sample is not None and config.name == preset


def test_every_preset_is_a_sample_or_one_of_the_papers_experiments():
    assert all(name in SAMPLE_PRESETS or name.startswith("paper-") for name in PRESETS) and len(SAMPLE_PRESETS) == 4


def test_a_yaml_file_extends_a_preset_and_resolves_relative_paths(tmp_path):
    (tmp_path / "data").mkdir()
    path = tmp_path / "run.yaml"
    path.write_text("preset: cyclegan-sample\nname: mine\ndataset: {path: data, layout: unaligned}\n"
                    "teacher: {checkpoint: ckpt/latest_net_G.pth}\nsearch: {macs_budget: 1.0e8}\n")
    with pytest.raises(ConfigError, match="either dataset.sample .* or dataset.path"):
        load_config(path=path)  # the preset's sample and the file's path together are ambiguous
    path.write_text(path.read_text().replace("dataset: {path: data", "dataset: {sample: null, path: data"))
    config = load_config(path=path)
    assert config.name == "mine" and config.dataset.path == tmp_path / "data"
    assert config.teacher.checkpoint == tmp_path / "ckpt" / "latest_net_G.pth"
    assert config.search.macs_budget == 1e8 and config.search.target_ratio is None
    assert config.supernet.steps == PRESETS["cyclegan-sample"]["supernet"]["steps"]  # the rest is the preset's


def test_invalid_values_name_the_field_and_the_problem(tmp_path):
    with pytest.raises(ConfigError, match=r"image_size: .*multiples of 4"):
        load_config("pix2pix-sample", overrides={"image_size": 30})
    with pytest.raises(ConfigError, match=r"teacher\.steps: .*greater than or equal to 0"):
        load_config("pix2pix-sample", overrides={"teacher": {"steps": -1}})
    with pytest.raises(ConfigError, match=r"search space needs 8"):
        load_config("pix2pix-sample", overrides={"supernet": {"search_space": [[8]]}})
    with pytest.raises(ConfigError, match=r"unknown preset 'horse2zebra'"):
        load_config("horse2zebra")
    with pytest.raises(ConfigError, match=r"config file not found"):
        load_config(path=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("family: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path=bad)
    with pytest.raises(ConfigError, match=r"typo: Extra inputs"):
        load_config("pix2pix-sample", overrides={"typo": 1})
    with pytest.raises(ConfigError, match="give --preset NAME or --config FILE"):
        load_config()


def test_recipe_defaults_are_the_reference_scripts():
    cyclegan, pix2pix = load_config("cyclegan-sample").resolved_recipe, load_config("pix2pix-sample").resolved_recipe
    assert (cyclegan.gan_mode, cyclegan.lambda_recon, cyclegan.lambda_distill) == ("lsgan", 10, 0.01)
    assert (pix2pix.gan_mode, pix2pix.lambda_recon, pix2pix.lambda_distill) == ("hinge", 100, 1)
    # The reference's discriminators are for 256 px images; the samples' 64 px crops take half their width
    # (docs/benchmarks.md), and the families keep the reference's for users' data.
    munit = load_config("munit-sample").resolved_recipe
    assert get_family("pix2pix").default_recipe.ndf == 128 and pix2pix.ndf == 64
    assert get_family("cyclegan").default_recipe.ndf == 64 and cyclegan.ndf == 32
    assert get_family("munit").default_recipe.ndf == 64 and munit.ndf == 32
    # The MUNIT sample's student learns from the teacher alone; the family keeps the reference's GAN term.
    assert get_family("munit").default_recipe.lambda_gan == 1 and munit.lambda_gan == 0
    # ... and starts its style MLP from the teacher's; users' runs start it fresh, as the reference.
    assert load_config("munit-sample").options.student_style_mlp == "teacher"
    assert get_family("munit").options({}).student_style_mlp == "fresh"
    for recipe in (cyclegan, pix2pix):
        assert (recipe.sampling, recipe.student_discriminator, recipe.init, recipe.finetune_mappings) == \
            ("uniform", "new", "normal", "fresh")
        assert recipe.fid_8bit
        assert (recipe.parent_ratio, recipe.mutation_ratio) == (0.25, 0.5)
    assert pix2pix.discriminator_real == "real" and get_family("cyclegan").default_recipe.discriminator_real == "real"
    assert cyclegan.discriminator_real == "teacher"  # the sample's student keeps the teacher's reds so
    assert (cyclegan.weighted_sample, cyclegan.mutation_prob) == (2, 0.4)
    assert (pix2pix.supernet_decay, cyclegan.supernet_decay) == (0.75, 0.5)


def test_recipe_overrides_and_the_workbench_base():
    config = load_config("pix2pix-sample", overrides={"recipe": {"base": "workbench", "lambda_distill": 0.5}})
    recipe = config.resolved_recipe
    assert (recipe.sampling, recipe.student_discriminator, recipe.gan_mode) == ("sandwich", "teacher", "vanilla")
    assert recipe.lambda_distill == 0.5 and recipe.supernet_decay == 0
    assert load_config("cyclegan-sample", overrides={"recipe": {"base": "workbench"}}).resolved_recipe \
        .discriminator_real == "teacher"
    with pytest.raises(ConfigError, match="recipe.sampling"):
        load_config("pix2pix-sample", overrides={"recipe": {"sampling": "largest"}})


def test_family_is_checked_against_the_registry_and_its_options():
    with pytest.raises(ConfigError, match="unknown family 'stylegan'.*cyclegan, gaugan, munit, pix2pix"):
        load_config("pix2pix-sample", overrides={"family": "stylegan"})
    with pytest.raises(ConfigError, match=r"model.ngf"):
        load_config("pix2pix-sample", overrides={"model": {"ngf": 0}})
    with pytest.raises(ConfigError, match="psnr is not available for cyclegan"):
        load_config("cyclegan-sample", overrides={"metric": "psnr"})


def test_settings_of_earlier_versions_are_read_in_their_new_place():
    config = load_config("pix2pix-sample", overrides={"teacher": {"ngf": 16, "n_blocks": 6},
                                                       "supernet": {"lambda_distill": 0.3}, "gan_mode": "lsgan"})
    assert (config.options.ngf, config.options.n_blocks) == (16, 6)
    assert (config.resolved_recipe.lambda_distill, config.resolved_recipe.gan_mode) == (0.3, "lsgan")


def test_image_sizes_may_be_non_square():
    config = load_config("pix2pix-sample", overrides={"image_size": "96x64"})
    assert config.size_hw == (64, 96)
    with pytest.raises(ConfigError, match="multiples of 4"):
        load_config("pix2pix-sample", overrides={"image_size": "96x66"})


def test_a_latency_budget_replaces_the_presets_macs_budget_unless_given_with_one():
    config = load_config("pix2pix-sample", overrides={"search": {"latency_budget_ms": 40}})
    assert config.search.target_ratio is None and not config.search.limits_macs and config.search.predicts_latency
    both = load_config("pix2pix-sample", overrides={"search": {"latency_budget_ms": 40, "target_ratio": 5}})
    assert both.search.target_ratio == 5 and both.search.limits_macs
    assert load_config("pix2pix-sample").search.limits_macs and not load_config("pix2pix-sample").search.predicts_latency
    with pytest.raises(ConfigError, match=r"search.latency_device: must be cpu, cuda or cuda:N .*not 'gpu'"):
        load_config("pix2pix-sample", overrides={"search": {"latency_device": "gpu"}})
    with pytest.raises(ConfigError, match=r"onnxruntime is measured on the CPU"):
        load_config("pix2pix-sample", overrides={"search": {"latency_backend": "onnxruntime", "latency_device": "cuda"}})
    with pytest.raises(ConfigError, match=r"latency_budget_ms: .*greater than 0"):
        load_config("pix2pix-sample", overrides={"search": {"latency_budget_ms": 0}})


def test_each_family_has_its_own_recipe_and_refuses_another_familys_knob_by_name():
    from engine.families import FAMILIES

    munit = load_config("munit-sample", overrides={"recipe": {"lambda_style": 5}})
    assert munit.resolved_recipe.lambda_style == 5
    assert "lambda_feat" in FAMILIES.get("gaugan").recipe_model.model_fields
    assert "lambda_style" not in FAMILIES.get("pix2pix").recipe_model.model_fields
    with pytest.raises(ConfigError, match=r"recipe.lambda_style is not a setting of pix2pix's recipe \(it is munit's\)"):
        load_config("pix2pix-sample", overrides={"recipe": {"lambda_style": 5}})
    with pytest.raises(ConfigError, match="recipe.teacher_spectral_norm is not a setting of munit's recipe"):
        load_config("munit-sample", overrides={"recipe": {"teacher_spectral_norm": True}})


def test_search_seed_draws_the_evolution_apart_from_the_run_seed():
    """``search.seed`` searches the same supernet again from another first population; unset, the run's seed."""
    config = load_config("pix2pix-sample", overrides={"seed": 3})
    assert config.search.evolution_seed(config.seed) == 3
    other = load_config("pix2pix-sample", overrides={"seed": 3, "search": {"seed": 11}})
    assert other.search.evolution_seed(other.seed) == 11
    assert other.departures == config.departures  # the reference fixes no seed: a draw is not a departure
    with pytest.raises(ConfigError, match="search.seed"):
        load_config("pix2pix-sample", overrides={"search": {"seed": -1}})


def test_the_configuration_imports_no_family_and_checks_recipe_knobs_against_the_runs_family():
    import subprocess
    import sys

    # Issue 43: the schema of a recipe is its family's own; the configuration module stands without them.
    loaded = subprocess.run([sys.executable, "-c", "import sys, engine.config; "
                             "print(sorted(m for m in sys.modules if m.startswith('engine.families')))"],
                            capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
    from engine.config import default_preset

    assert default_preset() == sorted(PRESETS)[0] and default_preset() in SAMPLE_PRESETS
    with pytest.raises(ConfigError, match=r"recipe.lambda_stlye is not a setting of munit's recipe \(no family has it\): "
                                          r"remove it \(its settings: .*lambda_style"):
        load_config("munit-sample", overrides={"recipe": {"lambda_stlye": 5}})
    with pytest.raises(ConfigError, match=r"recipe.lambda_style: Input should be a valid number"):
        load_config("munit-sample", overrides={"recipe": {"lambda_style": "high"}})
