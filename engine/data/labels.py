"""Label maps as GauGAN's generator takes them: one channel per class (one-hot) and, where the dataset has
instance maps, one channel marking the edges between instances (as the reference's ``get_edges``: a pixel
whose right or lower neighbour belongs to another instance, and that neighbour, are edges)."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def one_hot_map(ids: torch.Tensor, class_ids: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) class ids (any number type) -> (N, C, H, W) floats, one channel per entry of ``class_ids``
    (shaped (1, C, 1, 1)). Comparisons only, so that a generator doing it exports to ONNX."""
    return (ids == class_ids).to(torch.float32)


def edge_map(instances: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) instance ids -> (N, 1, H, W): 1 where a pixel and its right or lower neighbour differ, on
    both sides of the boundary (exportable: comparisons and padding)."""
    horizontal = (instances[:, :, :, 1:] != instances[:, :, :, :-1]).to(torch.float32)
    vertical = (instances[:, :, 1:, :] != instances[:, :, :-1, :]).to(torch.float32)
    edges = torch.maximum(F.pad(horizontal, (1, 0)), F.pad(horizontal, (0, 1)))
    return torch.maximum(edges, torch.maximum(F.pad(vertical, (0, 0, 1, 0)), F.pad(vertical, (0, 0, 0, 1))))


def one_hot(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """(N, H, W) class ids -> (N, classes, H, W) floats; an id outside [0, classes) is a ValueError naming
    the ids found (the caller names the file)."""
    if labels.dtype not in (torch.int64, torch.int32, torch.uint8, torch.int16):
        raise ValueError(f"label maps hold integer class ids, not {labels.dtype}")
    labels = labels.long()
    if labels.numel() and (labels.min() < 0 or labels.max() >= classes):
        bad = sorted({int(v) for v in labels.unique() if v < 0 or v >= classes})
        raise ValueError(f"class ids {bad[:10]} outside 0..{classes - 1}; set the number of classes to at least "
                         f"{max(bad) + 1}" if max(bad) >= classes else f"negative class ids {bad[:10]}")
    class_ids = torch.arange(classes, device=labels.device).view(1, classes, 1, 1)
    return one_hot_map(labels.unsqueeze(1), class_ids)


def instance_edges(instances: torch.Tensor) -> torch.Tensor:
    """(N, H, W) instance ids -> (N, 1, H, W): 1 where a pixel and its right or lower neighbour differ."""
    return edge_map(instances.unsqueeze(1))


def generator_input(labels: torch.Tensor, classes: int, instances: torch.Tensor | None = None) -> torch.Tensor:
    """The generator's input: the one-hot label map, with the instance edges as one more channel when given."""
    semantics = one_hot(labels, classes)
    if instances is None:
        return semantics
    return torch.cat([semantics, instance_edges(instances)], dim=1)


def palette(classes: int) -> torch.Tensor:
    """(classes, 3) uint8 colours, the same for the same number of classes: hues a golden angle apart, in
    three lightness bands so that neighbouring ids differ in lightness too."""
    import colorsys

    colours = []
    for index in range(classes):
        hue = (index * 0.618033988749895) % 1.0
        lightness = (0.45, 0.65, 0.3)[index % 3]
        colours.append([round(255 * c) for c in colorsys.hls_to_rgb(hue, lightness, 0.75)])
    return torch.tensor(colours, dtype=torch.uint8)


def colourise(ids: torch.Tensor, classes: int) -> torch.Tensor:
    """(N, C>=1, H, W) class ids (the first channel) -> (N, 3, H, W) colours in [-1, 1], for grids and views;
    ids outside the classes are black."""
    colours = torch.cat([palette(classes).float() / 127.5 - 1, torch.full((1, 3), -1.0)])
    index = ids[:, 0].round().long()
    index = torch.where((index >= 0) & (index < classes), index, torch.full_like(index, classes))
    return colours[index].permute(0, 3, 1, 2).contiguous()
