"""Teacher | student | difference panels, composed one way for every place that shows them: the export stage's
grid (a PNG beside the run) and the compare view (through the facade). The difference is |teacher - student| of
the outputs as shown (clamped to [-1, 1]), averaged over the colour channels, in 8-bit steps, drawn on one colour
scale from 0 to ``scale_top`` of the levels shown together."""

from __future__ import annotations

import numpy as np
import torch

#: Anchors of the difference's colour scale (black, through purple and orange, to pale yellow: "inferno"-like),
#: interpolated into a 256-entry table.
SCALE_ANCHORS = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=float)
COLOUR_TABLE = np.stack([np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(SCALE_ANCHORS)), SCALE_ANCHORS[:, c])
                         for c in range(3)], axis=1).round().astype(np.uint8)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) images in [-1, 1] as (N, H, W, 3) 8-bit pictures (one channel repeated as grey)."""
    array = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    array = array.permute(0, 2, 3, 1).numpy()
    return np.repeat(array, 3, axis=3) if array.shape[3] == 1 else array[..., :3]


def difference_levels(teacher: torch.Tensor, student: torch.Tensor) -> np.ndarray:
    """(N, H, W) mean over channels of |teacher - student| (both clamped to [-1, 1]) in 8-bit steps (0-255)."""
    difference = (teacher.detach().float().cpu().clamp(-1, 1) - student.detach().float().cpu().clamp(-1, 1)).abs()
    return (difference.mean(1) * 127.5).numpy().astype(np.float32)


def scale_top(levels: np.ndarray) -> float:
    """The level the colour scale tops out at: the 99th percentile (a few outliers do not wash it out), at least
    8 steps so that an almost exact student does not show amplified noise."""
    return max(float(np.percentile(levels, 99)), 8.0)


def colour_map(levels: np.ndarray, top: float) -> np.ndarray:
    """Difference levels (any shape) as 8-bit colours (that shape x 3) on the scale from 0 to ``top``."""
    index = np.clip(levels / top * 255, 0, 255).astype(np.uint8)
    return COLOUR_TABLE[index]


def compose(columns: tuple[str, ...], panels: dict[str, np.ndarray]) -> np.ndarray:
    """One picture of rows of ``columns`` side by side: ``panels`` maps a column to its (N, H, W, 3) pictures (a
    column without panels is left out)."""
    shown = [panels[c] for c in columns if c in panels]
    rows = [np.concatenate([column[i] for column in shown], axis=1) for i in range(len(shown[0]))]
    return np.concatenate(rows, axis=0)


#: The strip beneath a grid that gives the difference column's colour scale.
LEGEND_HEIGHT = 28


def with_legend(picture: np.ndarray, columns: tuple[str, ...], panels: dict[str, np.ndarray],
                top: float) -> np.ndarray:
    """``picture`` (composed from ``panels``) with a strip beneath that says what the difference column shows:
    its colour scale under that column, labelled from 0 to ``top`` 8-bit steps, and the words on the left."""
    from PIL import Image, ImageDraw

    shown = [c for c in columns if c in panels]
    widths = [panels[c].shape[2] for c in shown]
    left = sum(widths[:shown.index("difference")]) if "difference" in shown else 0
    width = widths[shown.index("difference")] if "difference" in shown else picture.shape[1]
    height = LEGEND_HEIGHT
    strip = Image.new("RGB", (picture.shape[1], height), (255, 255, 255))
    bar = COLOUR_TABLE[np.linspace(0, 255, max(width - 8, 1)).astype(np.uint8)]
    strip.paste(Image.fromarray(np.repeat(bar[None], 10, axis=0)), (left + 4, 2))
    draw = ImageDraw.Draw(strip)
    draw.text((left + 4, 14), "0", fill=(0, 0, 0))
    label = f"{top:.0f}"
    draw.text((left + width - 4 - 6 * len(label), 14), label, fill=(0, 0, 0))
    if left > 280:  # room for the words before the difference column
        draw.text((4, 8), "difference: |teacher - student| in 8-bit steps ->", fill=(0, 0, 0))
    return np.concatenate([picture, np.asarray(strip)], axis=0)


def grid_panels(inputs: torch.Tensor, teacher: torch.Tensor, student: torch.Tensor,
                targets: torch.Tensor | None = None, conditioning: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    """The panels of every column for a batch, the difference coloured on one scale for the whole batch."""
    levels = difference_levels(teacher, student)
    panels = {"input": to_uint8(inputs), "teacher": to_uint8(teacher), "student": to_uint8(student),
              "difference": colour_map(levels, scale_top(levels))}
    if targets is not None:
        panels["ground truth"] = to_uint8(targets)
    if conditioning is not None:
        panels["conditioning"] = to_uint8(conditioning)
    return panels
