import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from engine.data.layouts import DatasetConfig, detect_layout, open_dataset
from engine.data.transforms import PreprocessOptions
from engine.errors import DatasetError

SMALL = PreprocessOptions(preprocess="resize_and_crop", load_size=20, crop_size=16, flip=True)


def _image(path: Path, width: int, height: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def _pair(path: Path, size: int = 24, seed: int = 0) -> Path:
    """An A|B image whose halves are identical, so any mismatch of the two transforms shows."""
    rng = np.random.default_rng(seed)
    half = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([half, half], axis=1)).save(path)
    return path


def _truncated(path: Path) -> Path:
    _image(path, 32, 32)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_aligned_pairs_get_the_same_crop_and_flip(tmp_path):
    for i in range(6):
        _pair(tmp_path / "train" / f"{i}.png", seed=i)
    dataset = open_dataset(DatasetConfig(root=tmp_path, layout="aligned", preprocess=SMALL, seed=3))
    assert len(dataset) == 6
    for i in range(6):
        item = dataset[i]
        assert item["A"].shape == (3, 16, 16) and item["A"].dtype == torch.float32
        assert -1.0 <= item["A"].min() and item["A"].max() <= 1.0
        assert torch.equal(item["A"], item["B"])


def test_aligned_direction_btoa_swaps_the_halves(tmp_path):
    path = tmp_path / "train" / "0.png"
    path.parent.mkdir(parents=True)
    Image.fromarray(np.concatenate([np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)], 1)).save(path)
    opts = PreprocessOptions.for_testing(8)
    forward = open_dataset(DatasetConfig(root=tmp_path, layout="aligned", preprocess=opts))[0]
    backward = open_dataset(DatasetConfig(root=tmp_path, layout="aligned", preprocess=opts, direction="BtoA"))[0]
    assert forward["A"].mean() == -1.0 and forward["B"].mean() == 1.0
    assert torch.equal(backward["A"], forward["B"])


def test_aligned_images_of_mixed_size_name_the_odd_file(tmp_path):
    for i in range(3):
        _image(tmp_path / "train" / f"{i}.png", 48, 24)
    _image(tmp_path / "train" / "odd.png", 64, 32)
    with pytest.raises(DatasetError, match=r"mixed size.*odd\.png is 64x32 but most images are 48x24"):
        open_dataset(DatasetConfig(root=tmp_path, layout="aligned"))


def test_aligned_odd_width_cannot_be_split(tmp_path):
    _image(tmp_path / "train" / "a.png", 33, 16)
    with pytest.raises(DatasetError, match="33 pixels wide.*A|B"):
        open_dataset(DatasetConfig(root=tmp_path, layout="aligned"))


def test_square_aligned_images_are_said_to_look_like_single_images_and_wide_pairs_are_not(tmp_path):
    for i in range(2):
        _image(tmp_path / "square" / "train" / f"{i}.png", 32, 32)
        _pair(tmp_path / "pairs" / "train" / f"{i}.png")
    square = open_dataset(DatasetConfig(root=tmp_path / "square", layout="aligned"))
    assert "is 32x32, not twice as wide as tall" in square.looks_single
    assert "combine_A_and_B.py" in square.looks_single and len(square) == 2  # said, not refused
    assert open_dataset(DatasetConfig(root=tmp_path / "pairs", layout="aligned")).looks_single is None


def test_missing_and_empty_folders_say_what_is_expected(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found"):
        open_dataset(DatasetConfig(root=tmp_path / "nope", layout="aligned"))
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "notes.txt").write_text("hi")
    with pytest.raises(DatasetError, match=r"no images in .*train \(expected A\|B pairs"):
        open_dataset(DatasetConfig(root=tmp_path, layout="aligned"))


def test_unreadable_file_in_a_folder_is_skipped_with_a_warning(tmp_path, caplog):
    for i in range(4):
        _pair(tmp_path / "train" / f"{i}.png", seed=i)
    (tmp_path / "train" / "broken.png").write_bytes(b"not really a png")
    with caplog.at_level(logging.WARNING):
        dataset = open_dataset(DatasetConfig(root=tmp_path, layout="aligned", preprocess=SMALL))
    assert len(dataset) == 4
    assert "broken.png" in caplog.text and "skipping" in caplog.text


def test_truncated_image_is_skipped_when_it_fails_to_decode(tmp_path, caplog):
    folder = tmp_path / "trainA"
    _truncated(folder / "0_truncated.png")
    _image(folder / "1.png", 32, 32)
    _image(tmp_path / "trainB" / "0.png", 32, 32)
    dataset = open_dataset(DatasetConfig(root=tmp_path, layout="unaligned", preprocess=SMALL, serial_batches=True))
    with caplog.at_level(logging.WARNING):
        item = dataset[0]
    assert item["A_path"].endswith("1.png")
    assert "0_truncated.png" in caplog.text


def test_a_folder_of_only_broken_files_is_an_error_naming_it(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.jpg").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=r"none of the 3 files in .*train could be read.*0\.jpg"):
        open_dataset(DatasetConfig(root=tmp_path, layout="aligned"))


def test_a_dataset_whose_every_image_is_truncated_fails_clearly(tmp_path):
    for i in range(2):
        _truncated(tmp_path / "train" / f"{i}.png")
    dataset = open_dataset(DatasetConfig(root=tmp_path, layout="single", preprocess=SMALL))
    with pytest.raises(DatasetError, match="no image of .* could be decoded"):
        dataset[0]


def test_unaligned_pairs_two_folders_and_needs_both(tmp_path):
    for i in range(3):
        _image(tmp_path / "trainA" / f"{i}.png", 32, 32, seed=i)
    for i in range(5):
        _image(tmp_path / "trainB" / f"{i}.jpg", 40, 30, seed=10 + i)
    dataset = open_dataset(DatasetConfig(root=tmp_path, layout="unaligned", preprocess=SMALL))
    assert len(dataset) == 5
    item = dataset[4]
    assert item["A"].shape == item["B"].shape == (3, 16, 16)
    assert "trainA" in item["A_path"] and "trainB" in item["B_path"]
    swapped = open_dataset(DatasetConfig(root=tmp_path, layout="unaligned", preprocess=SMALL, direction="BtoA"))
    assert "trainB" in swapped[0]["A_path"]
    (tmp_path / "testA").mkdir()
    with pytest.raises(DatasetError, match=r"testA \(expected a folder of images of domain A\)|no images in .*testA"):
        open_dataset(DatasetConfig(root=tmp_path, layout="unaligned", phase="test"))


def test_single_layout_reads_a_plain_folder(tmp_path):
    for i in range(2):
        _image(tmp_path / f"{i}.png", 30, 20)
    dataset = open_dataset(DatasetConfig(root=tmp_path, layout="single", preprocess=PreprocessOptions.for_testing(16)))
    assert len(dataset) == 2 and dataset[1]["A"].shape == (3, 16, 16)


def test_labelmap_layout_keeps_class_ids_and_matches_names(tmp_path):
    labels = np.zeros((32, 32), np.uint8)
    labels[:, 16:] = 5
    (tmp_path / "train_label").mkdir()
    Image.fromarray(labels).save(tmp_path / "train_label" / "x.png")
    _image(tmp_path / "train_img" / "x.jpg", 32, 32)
    dataset = open_dataset(DatasetConfig(root=tmp_path, layout="labelmap", preprocess=PreprocessOptions.for_testing(16)))
    item = dataset[0]
    assert item["A"].shape == (1, 16, 16) and set(item["A"].unique().tolist()) == {0, 5}
    assert item["B"].shape == (3, 16, 16)
    Image.fromarray(labels).save(tmp_path / "train_label" / "y.png")
    with pytest.raises(DatasetError, match=r"y\.png has no photograph named y\.\*"):
        open_dataset(DatasetConfig(root=tmp_path, layout="labelmap"))


def test_labelmap_ids_outside_the_classes_name_the_file_and_instance_maps_come_as_a_second_channel(tmp_path):
    labels = np.full((16, 16), 2, np.uint8)
    labels[:4] = 9
    _image(tmp_path / "train_img" / "x.png", 16, 16)
    (tmp_path / "train_label").mkdir()
    Image.fromarray(labels).save(tmp_path / "train_label" / "x.png")
    opts = PreprocessOptions.for_testing(16)
    with pytest.raises(DatasetError, match=r"x\.png holds class ids \[9\] outside 0\.\.7: set the number of classes "
                                           r"\(model\.classes\) to at least 10"):
        open_dataset(DatasetConfig(root=tmp_path, layout="labelmap", preprocess=opts, label_classes=8))[0]
    with pytest.raises(DatasetError, match="train_inst does not exist"):
        open_dataset(DatasetConfig(root=tmp_path, layout="labelmap", instance_maps=True))
    instances = np.zeros((16, 16), np.uint16)
    instances[:, 8:] = 26001  # Cityscapes-style ids beyond 8 bits
    (tmp_path / "train_inst").mkdir()
    Image.fromarray(instances).save(tmp_path / "train_inst" / "x.png")
    item = open_dataset(DatasetConfig(root=tmp_path, layout="labelmap", preprocess=opts, label_classes=10,
                                      instance_maps=True))[0]
    assert item["A"].shape == (2, 16, 16) and set(item["A"][1].unique().tolist()) == {0, 26001}


def test_labelmap_in_colour_is_rejected(tmp_path):
    _image(tmp_path / "train_label" / "x.png", 16, 16)
    _image(tmp_path / "train_img" / "x.png", 16, 16)
    with pytest.raises(DatasetError, match="mode RGB; expected one channel"):
        open_dataset(DatasetConfig(root=tmp_path, layout="labelmap"))


def test_layout_detection(tmp_path):
    _image(tmp_path / "u" / "trainA" / "0.png", 8, 8)
    _image(tmp_path / "u" / "trainB" / "0.png", 8, 8)
    _image(tmp_path / "a" / "train" / "0.png", 16, 8)
    _image(tmp_path / "l" / "train_img" / "0.png", 8, 8)
    (tmp_path / "l" / "train_label").mkdir()
    _image(tmp_path / "s" / "0.png", 8, 8)
    (tmp_path / "empty").mkdir()
    assert [detect_layout(tmp_path / k) for k in "uals"] == ["unaligned", "aligned", "labelmap", "single"]
    with pytest.raises(DatasetError, match="none of the known layouts"):
        detect_layout(tmp_path / "empty")


def test_preprocess_options_are_validated():
    with pytest.raises(ValidationError, match="crop_size"):
        PreprocessOptions(load_size=128, crop_size=256)
    with pytest.raises(ValidationError):
        PreprocessOptions(preprocess="zoom")


def test_crop_larger_than_the_image_names_the_file(tmp_path):
    _image(tmp_path / "0.png", 12, 12)
    dataset = open_dataset(DatasetConfig(root=tmp_path, layout="single",
                                         preprocess=PreprocessOptions(preprocess="crop", crop_size=16)))
    with pytest.raises(DatasetError, match=r"0\.png: 12x12 is smaller than crop_size 16x16"):
        dataset[0]


def test_an_unpaired_split_read_for_scoring_holds_each_input_once(tmp_path):
    # horse2zebra's test split: 120 horses (testA) against 140 zebras (testB) is 120 outputs, as the reference
    # scores it, not 140 with 20 horses twice; a training epoch stays the larger domain's.
    for i in range(3):
        _image(tmp_path / "testA" / f"{i}.png", 32, 32, seed=i)
    for i in range(5):
        _image(tmp_path / "testB" / f"{i}.png", 32, 32, seed=10 + i)
    scored = open_dataset(DatasetConfig(root=tmp_path, layout="unaligned", phase="test", preprocess=SMALL,
                                        serial_batches=True))
    assert len(scored) == 3
    assert sorted(scored[i]["A_path"] for i in range(len(scored))) == sorted(
        str(p) for p in (tmp_path / "testA").iterdir())
    trained = open_dataset(DatasetConfig(root=tmp_path, layout="unaligned", phase="test", preprocess=SMALL))
    assert len(trained) == 5


def test_the_held_out_split_is_the_last_images_a_seeded_draw_across_the_folder_or_a_list(tmp_path):
    # The reference draws its held-out images across the whole training set (on Cityscapes the last files of the
    # sorted list would be whole cities the supernet never trains on).
    for i in range(20):
        _image(tmp_path / "trainA" / f"{i:02d}.png", 16, 16, seed=i)
        _image(tmp_path / "trainB" / f"{i:02d}.png", 16, 16, seed=50 + i)

    def names(**settings):
        opened = {subset: open_dataset(DatasetConfig(root=tmp_path, layout="unaligned", preprocess=SMALL, holdout=5,
                                                     subset=subset, serial_batches=True, **settings))
                  for subset in ("holdout", "fit")}
        return {subset: [Path(p).stem for p in dataset.paths_a] for subset, dataset in opened.items()}, opened

    last, _ = names()
    assert last["holdout"] == ["15", "16", "17", "18", "19"]
    drawn, opened = names(holdout_draw="random", seed=3)
    assert len(drawn["holdout"]) == 5 and set(drawn["holdout"]).isdisjoint(drawn["fit"])
    assert sorted(drawn["holdout"] + drawn["fit"]) == [f"{i:02d}" for i in range(20)]
    assert drawn["holdout"] != last["holdout"] and min(drawn["holdout"]) < "15"  # across the folder
    assert [Path(p).stem for p in opened["holdout"].paths_b] == drawn["holdout"]  # each folder draws alike
    assert names(holdout_draw="random", seed=3)[0] == drawn  # the run's seed: a resume holds out the same
    assert names(holdout_draw="random", seed=4)[0] != drawn
    listed, _ = names(holdout_names=("03", "11.png"))
    assert listed["holdout"] == ["03", "11"] and len(listed["fit"]) == 18
    with pytest.raises(DatasetError, match="names 0 of the 20 images"):
        names(holdout_names=("nothing",))
