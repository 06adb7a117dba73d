"""engine.stages.data: what training sees (crops, jitter, flips), the splits that are scored and the real images each
split is scored against (the reference's protocol, the file each value comes from named beside it)."""

import pytest

from engine.config import load_config, merge
from engine.settings import Settings
from engine.stages.data import _training_preprocess, prepare_data
from tests.engine.stages.tiny import tiny_config


def test_training_preprocess_without_crop_jitter_is_the_image_size_flipped():
    gaugan = load_config(overrides={"family": "gaugan", "dataset": {"path": "d"}})
    opts = _training_preprocess(gaugan)
    assert (opts.preprocess, opts.crop_hw, opts.flip) == ("resize", (256, 512), True)
    jittered = _training_preprocess(load_config(overrides={"family": "gaugan", "dataset": {"path": "d"},
                                                           "recipe": {"crop_jitter": True}}))
    assert (jittered.preprocess, jittered.load_size, jittered.flip) == ("resize_and_crop", 572, True)


def _tiny(family: str, sample: str, **extra):
    return load_config(overrides=merge({
        "name": "protocol", "family": family, "image_size": 32, "batch_size": 2,
        "dataset": {"sample": sample, "sample_size": 32, "sample_train": 10, "sample_test": 6, "search_images": 3},
        "model": {"ngf": 8, "n_blocks": 3}}, extra))


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return Settings(workspace=tmp_path_factory.mktemp("protocol"), device="cpu")


def test_the_whole_test_split_and_the_real_images_each_family_scores_against(settings):
    cyclegan = prepare_data(_tiny("cyclegan", "grass2gravel"), settings, lambda event: None)
    assert len(cyclegan.test_inputs) == 6  # every test image, not a capped number
    root = cyclegan.root
    train_b, test_b = (len([p for p in (root / folder).iterdir() if p.is_file()]) for folder in ("trainB", "testB"))
    for split in ("search", "test"):  # every real B image of both splits, each once
        real = cyclegan.real_sets[split]
        assert len(real) == train_b + test_b
        assert len(set(real.paths)) == len(real.paths)
        assert real[len(real) - 1]["B"].shape == (3, 32, 32)
    capped = prepare_data(_tiny("cyclegan", "grass2gravel", dataset={"test_images": 4}), settings, lambda e: None)
    assert len(capped.test_inputs) == 4


def test_munit_scores_the_search_against_training_b_and_the_test_against_test_b(settings):
    config = load_config(overrides={
        "name": "protocol-munit", "family": "munit", "image_size": 64,
        "dataset": {"sample": "gray2tints", "sample_size": 64, "sample_train": 8, "sample_test": 4, "search_images": 2},
        "model": {"ngf": 4, "mlp_dim": 8, "student_mlp_dim": 8}})
    data = prepare_data(config, settings, lambda event: None)
    root = data.root
    assert [p.parent.name for p in data.real_sets["search"].paths] == ["trainB"] * len(data.real_sets["search"])
    assert sorted(data.real_sets["test"].paths) == sorted(p for p in (root / "testB").iterdir() if p.is_file())


def test_training_sees_crops_while_scoring_sees_whole_images(settings):
    config = tiny_config("pix2pix", train_crop=16)
    data = prepare_data(config, settings, lambda event: None)
    assert tuple(data.train[0]["A"].shape) == (3, 16, 16) and tuple(data.train[0]["B"].shape) == (3, 16, 16)
    assert tuple(data.test_inputs.shape[1:]) == (3, 32, 32) and tuple(data.search_inputs.shape[1:]) == (3, 32, 32)
