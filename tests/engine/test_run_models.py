"""engine.run_models: a finished run's teacher and students, opened for the compare view (files a user opens,
previews with the family's columns, sub-networks of the supernet)."""

import numpy as np
import pytest
import torch
from PIL import Image

from engine.errors import UserError
from engine.run_models import RunModels, preview


def test_a_file_a_user_opens_becomes_the_runs_input_and_a_preview_with_the_familys_columns(finished_munit, tmp_path):
    settings, store, run_id, summary = finished_munit
    models = RunModels.open(store, settings, run_id)
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 90, 3), dtype=np.uint8)).save(photo)

    inputs, target = models.open_file(photo)
    height, width = models.config.size_hw
    assert inputs.shape == (1, models.config.options.input_nc, height, width)  # resized to the run's size
    assert target is None  # an unpaired family's file holds no ground truth
    shown = preview(models, inputs, None, None, conditioning_seed=3)
    assert shown.columns == ["input", "conditioning", "teacher", "student", "difference"]
    assert shown.titles["conditioning"] == "style" and shown.input_title == "content"
    assert shown.images["conditioning"].shape == (height, width, 3) and shown.conditioning_seed == 3
    assert shown.images["student"].shape == shown.images["teacher"].shape == (height, width, 3)
    assert shown.arch == summary["student"]["arch"]
    # Another seed is another style code: the same teacher renders the same content otherwise.
    assert not np.array_equal(preview(models, inputs, None, None, conditioning_seed=4).images["teacher"], shown.images["teacher"])


def test_a_sub_network_of_the_supernet_is_shown_with_the_supernets_weights(finished_munit):
    settings, store, run_id, summary = finished_munit
    models = RunModels.open(store, settings, run_id)
    smallest = "_".join(["2"] * 10)
    student = models.student(smallest)
    assert str(student.arch) == smallest and not student.training
    assert models.weights_of(smallest) != models.weights_of(None)  # never one label over two networks
    with torch.no_grad():
        inputs = torch.zeros(1, models.config.options.input_nc, *models.config.size_hw)
        assert torch.isfinite(student(inputs, torch.zeros(1, models.config.options.style_dim, 1, 1))).all()
    with pytest.raises(Exception, match="outside the run's search space"):
        models.student("_".join(["3"] * 10))


def test_a_run_without_a_finished_stage_says_which(settings, store):
    from engine.pipeline import create_run
    from tests.engine.stages.tiny import tiny_config

    run_id = create_run(tiny_config(), store, settings)
    with pytest.raises(UserError, match=f"run {run_id} has no finished teacher stage yet"):
        RunModels.open(store, settings, run_id).teacher()
