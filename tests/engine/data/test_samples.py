import json

import numpy as np
import pytest
from PIL import Image

from engine.data.layouts import DatasetConfig, detect_layout, open_dataset
from engine.data.samples import SAMPLES, TINTS, SampleParams, edge_map, ensure_sample, is_built, tinted
from engine.data.transforms import PreprocessOptions
from engine.errors import ConfigError
from engine.events import StepProgress

TINY = SampleParams(size=32, n_train=6, n_test=3, seed=1)


@pytest.mark.parametrize("name", SAMPLES.names())
def test_each_sample_builds_in_its_layout_and_loads(tmp_path, name):
    events = []
    sample = ensure_sample(name, tmp_path, TINY, events=events.append)
    assert detect_layout(sample.path) == sample.layout == SAMPLES.get(name).layout
    meta = json.loads((sample.path / "sample.json").read_text())
    assert (meta["name"], meta["size"], meta["n_train"]) == (name, 32, 6)
    for phase, count in (("train", 6), ("test", 3)):
        dataset = open_dataset(DatasetConfig(root=sample.path, layout=sample.layout, phase=phase,
                                             preprocess=PreprocessOptions.for_testing(32)))
        assert len(dataset) == count
        item = dataset[0]
        assert item["B"].shape == (3, 32, 32)
    progress = [e for e in events if isinstance(e, StepProgress)]
    assert progress and progress[-1].step == progress[-1].total_steps


def test_samples_are_cached_and_reproducible(tmp_path):
    first = ensure_sample("edges2photos", tmp_path / "one", TINY)
    stamp = (first.path / "train" / "00000.png").stat().st_mtime_ns
    again = ensure_sample("edges2photos", tmp_path / "one", TINY)
    assert again.path == first.path
    assert (first.path / "train" / "00000.png").stat().st_mtime_ns == stamp
    other = ensure_sample("edges2photos", tmp_path / "two", TINY)
    for phase in ("train", "test"):
        for path in sorted((first.path / phase).iterdir()):
            assert path.read_bytes() == (other.path / phase / path.name).read_bytes()
    assert is_built("edges2photos", tmp_path / "one", TINY)
    assert not is_built("edges2photos", tmp_path / "one", SampleParams(size=32, n_train=7, n_test=3, seed=1))


def test_test_images_are_not_training_images(tmp_path):
    sample = ensure_sample("grass2gravel", tmp_path, TINY)
    train = {p.read_bytes() for p in (sample.path / "trainA").iterdir()}
    test = {p.read_bytes() for p in (sample.path / "testA").iterdir()}
    assert not train & test


def test_gray2tints_grades_are_far_apart_and_each_b_photograph_has_one(tmp_path):
    import colorsys

    # A style code picks the grade, so a person (and a short-trained teacher) must be able to tell them apart.
    hues = [colorsys.rgb_to_hsv(*(tinted(np.full((1, 1, 3), 128, np.uint8), g)[0, 0] / 255))[0] * 360
            for g in range(len(TINTS))]
    gaps = [min(abs(a - b), 360 - abs(a - b)) for i, a in enumerate(hues) for b in hues[i + 1:]]
    assert len(TINTS) >= 2 and min(gaps) >= 90
    sample = ensure_sample("gray2tints", tmp_path, SampleParams(size=32, n_train=24, n_test=3, seed=1))
    seen = set()
    for path in sorted((sample.path / "trainB").iterdir()):
        image = np.asarray(Image.open(path).convert("RGB"))
        errors = []
        for red, green, blue, lift in TINTS:  # how well one grey image, in this grade, explains it
            gains = np.array([red, green, blue])
            gray = ((image / 255.0 - lift) @ gains / (gains @ gains)).clip(0, 1)
            errors.append(np.abs((gray[..., None] * gains + lift).clip(0, 1) * 255 - image).mean())
        assert sorted(errors)[0] < 6 < 20 < sorted(errors)[1], (path.name, errors)
        seen.add(int(np.argmin(errors)))
    for path in sorted((sample.path / "trainA").iterdir()):
        image = np.asarray(Image.open(path).convert("RGB"))
        assert (image == image[..., :1]).all()  # A is grayscale
    assert seen == set(range(len(TINTS)))


def test_edges2photos_pairs_an_edge_drawing_with_its_photo(tmp_path):
    sample = ensure_sample("edges2photos", tmp_path, TINY)
    pair = np.asarray(Image.open(sample.path / "train" / "00000.png"))
    assert pair.shape == (32, 64, 3)
    drawing, photo = pair[:, :32], pair[:, 32:]
    assert set(np.unique(drawing)) <= {0, 255}
    assert 0.01 < (drawing == 0).mean() < 0.5  # some edges, mostly white paper
    assert np.array_equal(drawing, edge_map(photo))
    assert photo.std() > 5  # a real photograph crop, not a flat colour


def test_labels2photos_has_consistent_class_ids(tmp_path):
    sample = ensure_sample("labels2photos", tmp_path, TINY)
    n_classes = json.loads((sample.path / "classes.json").read_text())["n_classes"]
    ids = np.concatenate([np.asarray(Image.open(p)).ravel() for p in (sample.path / "train_label").iterdir()])
    assert ids.max() < n_classes and len(np.unique(ids)) >= 3


def test_bad_sample_parameters_are_rejected():
    with pytest.raises(ConfigError, match="multiple of 4"):
        SampleParams(size=30)
    with pytest.raises(ConfigError, match="at least one"):
        SampleParams(n_train=0)
    with pytest.raises(ConfigError, match="unknown sample dataset 'horses'"):
        ensure_sample("horses", "/tmp")
