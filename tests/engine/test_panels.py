"""One composition of teacher | student | difference for the export grid and the compare view."""

import numpy as np
import torch
from PIL import Image

from engine.panels import COLOUR_TABLE, colour_map, compose, difference_levels, grid_panels, scale_top, to_uint8
from engine.panels import LEGEND_HEIGHT
from engine.stages.export import save_grid


def test_the_difference_is_in_8_bit_steps_of_the_clamped_outputs_averaged_over_channels():
    teacher = torch.zeros(1, 3, 2, 2)
    student = teacher.clone()
    student[0, 0] = 0.5  # one channel of three off by a quarter of the range
    student[0, 1, 0, 0] = 3.0  # beyond the range: clamped as it is shown
    levels = difference_levels(teacher, student)
    assert levels.shape == (1, 2, 2)
    assert levels[0, 1, 1] == np.float32(0.5 / 3 * 127.5)
    assert levels[0, 0, 0] == np.float32((0.5 + 1.0) / 3 * 127.5)
    assert scale_top(np.zeros(10)) == 8.0  # an almost exact student: no amplified noise


def test_the_export_grid_draws_the_difference_as_the_compare_view_does(tmp_path):
    generator = torch.Generator().manual_seed(0)
    inputs, teacher, student = (torch.rand(3, 3, 4, 5, generator=generator) * 2 - 1 for _ in range(3))
    columns = ("input", "teacher", "student", "difference")
    save_grid(tmp_path / "grid.png", columns, inputs, teacher, student)
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert grid.shape == (3 * 4 + LEGEND_HEIGHT, 4 * 5, 3)  # the rows, then the difference's scale beneath
    legend = grid[3 * 4:]
    assert (legend[2, 15 + 4] == COLOUR_TABLE[0]).all()  # the scale starts at 0 under the difference column
    levels = difference_levels(teacher, student)
    expected = colour_map(levels, scale_top(levels))
    for row in range(3):
        assert (grid[row * 4:(row + 1) * 4, 15:20] == expected[row]).all()
        assert (grid[row * 4:(row + 1) * 4, 5:10] == to_uint8(teacher)[row]).all()
    same = grid_panels(inputs, teacher, teacher)["difference"]
    assert (same == COLOUR_TABLE[0]).all()
    assert compose(("teacher", "ground truth"), {"teacher": to_uint8(teacher)}).shape == (12, 5, 3)
