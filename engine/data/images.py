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


#: Integer modes of more than 8 bits per sample (16-bit PNGs and TIFFs) and their full scale. PIL's
#: convert("RGB") clips them at 255, which turns a 16-bit photograph all white: they are scaled instead.
WIDE_MODES = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I;16N": 65535, "I": 65535}


def _eight_bit(image: Image.Image, path: Path) -> Image.Image:
    """A grayscale image of more than 8 bits per sample at 8 bits, its full scale kept (65535 -> 255)."""
    if image.mode == "F":
        raise DatasetError(f"cannot read image {path}: 32-bit floating-point samples, whose range is unknown; "
                           "save it as an 8- or 16-bit image")
    if image.mode not in WIDE_MODES:
        return image
    array = np.asarray(image).astype(np.int64)
    if array.min() < 0 or array.max() > WIDE_MODES[image.mode]:
        raise DatasetError(f"cannot read image {path}: 32-bit integer samples outside 0-65535; save it as an 8- or "
                           "16-bit image")
    return Image.fromarray(np.round(array / 257.0).astype(np.uint8), mode="L")


def load_image(path: Path, mode: str = "RGB") -> Image.Image:
    """Decode an image fully (so a truncated file fails here, not later) and convert it to ``mode`` (a photograph
    of 16 bits per sample is scaled to 8; ``mode`` "" keeps the file's own mode, e.g. for label and instance maps)."""
    try:
        with Image.open(path) as image:
            image.load()
            if not mode:
                return image.copy()
            return _eight_bit(image, Path(path)).convert(mode)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"cannot read image {path}: {_describe(exc)}; replace or remove the file") from None


def scan_images(paths: list[Path], decode: bool = False) -> tuple[list[ImageInfo], list[tuple[Path, str]]]:
    """Headers of all ``paths``: the readable ones, and (path, reason) for those that are not. A run reads the
    headers when it starts and skips, with a warning, a file that fails to decode later; ``decode`` (what
    ``datasets check`` does) decodes each file as a run would, so the check reports every file a run skips."""
    good, bad = [], []
    for path in paths:
        try:
            info = read_info(path)
            if decode:  # once: as it is, or (wide samples, which must scale) as a photograph is read
                load_image(path, "RGB" if info.mode == "F" or info.mode in WIDE_MODES else "")
            good.append(info)
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
