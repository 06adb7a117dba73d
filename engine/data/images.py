"""Finding and reading image files, with errors that name the file and what is wrong with it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from engine.errors import DatasetError

log = logging.getLogger(__name__)

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMG_EXTENSIONS


def list_images(folder: Path, *, what: str = "images") -> list[Path]:
    """All image files under ``folder`` (recursively, sorted), or a DatasetError saying what is missing."""
    folder = Path(folder)
    if not folder.exists():
        raise DatasetError(f"folder not found: {folder} (expected a folder of {what})")
    if not folder.is_dir():
        raise DatasetError(f"{folder} is a file, not a folder (expected a folder of {what})")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p))
    if not paths:
        raise DatasetError(f"no images in {folder} (expected {what}: files ending in {', '.join(IMG_EXTENSIONS)})")
    return paths


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    width: int
    height: int
    mode: str


def _describe(exc: Exception) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return "not an image PIL can read (corrupt, or another format with an image extension)"
    return str(exc) or type(exc).__name__


def read_info(path: Path) -> ImageInfo:
    """Size and mode from the file's header, without decoding the pixels."""
    try:
        with Image.open(path) as image:
            return ImageInfo(Path(path), image.width, image.height, image.mode)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"cannot read image {path}: {_describe(exc)}; replace or remove the file") from None


def load_image(path: Path, mode: str = "RGB") -> Image.Image:
    """Decode an image fully (so a truncated file fails here, not later) and convert it to ``mode``."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert(mode) if mode else image.copy()
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"cannot read image {path}: {_describe(exc)}; replace or remove the file") from None


def scan_images(paths: list[Path]) -> tuple[list[ImageInfo], list[tuple[Path, str]]]:
    """Headers of all ``paths``: the readable ones, and (path, reason) for those that are not."""
    good, bad = [], []
    for path in paths:
        try:
            good.append(read_info(path))
        except DatasetError as exc:
            bad.append((path, str(exc)))
    return good, bad


def to_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB or L image as a float tensor in [-1, 1], channels first."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))) * 2.0 - 1.0


def to_image(tensor: torch.Tensor) -> Image.Image:
    """A [-1, 1] tensor (C, H, W) back to an 8-bit image, for grids and previews."""
    array = ((tensor.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    array = array.permute(1, 2, 0).numpy()
    if array.shape[2] == 1:
        return Image.fromarray(array[:, :, 0], mode="L")
    return Image.fromarray(array[:, :, :3], mode="RGB")
