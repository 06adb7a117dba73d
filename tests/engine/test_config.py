import pytest

from engine.config import PRESETS, load_config
from engine.errors import ConfigError


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_are_valid_and_use_built_in_samples(preset):
    config = load_config(preset)
    assert config.dataset.sample is not None and config.name == preset


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
    assert config.teacher.steps == PRESETS["cyclegan-sample"]["teacher"]["steps"]  # the rest is the preset's


def test_invalid_values_name_the_field_and_the_problem(tmp_path):
    with pytest.raises(ConfigError, match=r"image_size: .*multiple of 4"):
        load_config("pix2pix-sample", overrides={"image_size": 30})
    with pytest.raises(ConfigError, match=r"teacher\.steps: .*greater than or equal to 0"):
        load_config("pix2pix-sample", overrides={"teacher": {"steps": -1}})
    with pytest.raises(ConfigError, match=r"search_space needs 8"):
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


def test_gan_mode_defaults_follow_the_original_projects():
    assert load_config("cyclegan-sample").resolved_gan_mode == "lsgan"
    assert load_config("pix2pix-sample").resolved_gan_mode == "vanilla"
