"""The preprocessing options of pytorch-CycleGAN-and-pix2pix (resize, crop, scale width, flip), applied
with the same random parameters to both halves of a pair."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.errors import DatasetError

Preprocess = Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "resize", "none"]


class PreprocessOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    preprocess: Preprocess = "resize_and_crop"
    load_size: int = Field(286, ge=4)
    crop_size: int = Field(256, ge=4)
    #: Height of the crop (and of the resized image, in proportion) for non-square sizes; None: square.
    crop_height: int | None = Field(None, ge=4)
    flip: bool = True

    @property
    def crop_hw(self) -> tuple[int, int]:
        return (self.crop_height or self.crop_size), self.crop_size

    @property
    def load_hw(self) -> tuple[int, int]:
        height, width = self.crop_hw
        return max(height, round(self.load_size * height / width)), self.load_size

    @model_validator(mode="after")
    def _crop_fits(self) -> PreprocessOptions:
        if self.preprocess == "resize_and_crop" and self.crop_size > self.load_size:
            raise ValueError(f"crop_size ({self.crop_size}) must not exceed load_size ({self.load_size}) "
                             "with resize_and_crop")
        return self

    @classmethod
    def for_testing(cls, size: int | tuple[int, int]) -> PreprocessOptions:
        """Deterministic: resize to ``size`` (a side, or (height, width)) and no flip, as evaluation wants."""
        height, width = (size, size) if isinstance(size, int) else size
        return cls(preprocess="resize", load_size=width, crop_size=width,
                   crop_height=None if height == width else height, flip=False)


@dataclass(frozen=True)
class TransformParams:
    crop_x: int
    crop_y: int
    flip: bool


def sample_params(size: tuple[int, int], opts: PreprocessOptions, rng: random.Random) -> TransformParams:
    width, height = size
    new_w, new_h = width, height
    if opts.preprocess == "resize_and_crop":
        new_h, new_w = opts.load_hw
    elif opts.preprocess == "scale_width_and_crop":
        new_w, new_h = opts.load_size, opts.load_size * height // width
    crop_h, crop_w = opts.crop_hw
    x = rng.randint(0, max(0, new_w - crop_w))
    y = rng.randint(0, max(0, new_h - crop_h))
    return TransformParams(x, y, opts.flip and rng.random() > 0.5)


def _scale_width(image: Image.Image, target_width: int, crop_size: int, method: int) -> Image.Image:
    width, height = image.size
    if width == target_width and height >= crop_size:
        return image
    new_h = int(max(target_width * height / width, crop_size))
    return image.resize((target_width, new_h), method)


def _multiple_of_4(image: Image.Image, method: int) -> Image.Image:
    width, height = image.size
    new_w, new_h = max(4, round(width / 4) * 4), max(4, round(height / 4) * 4)
    return image if (new_w, new_h) == (width, height) else image.resize((new_w, new_h), method)


def apply(image: Image.Image, params: TransformParams, opts: PreprocessOptions, *, nearest: bool = False,
          source: object = "image") -> Image.Image:
    """Resize/crop/flip ``image``; ``nearest`` keeps label maps' class ids intact."""
    method = Image.NEAREST if nearest else Image.BICUBIC
    crop_h, crop_w = opts.crop_hw
    if opts.preprocess in ("resize_and_crop", "resize"):
        load_h, load_w = opts.load_hw if opts.preprocess == "resize_and_crop" else (crop_h, crop_w)
        image = image.resize((load_w, load_h) if opts.crop_height else (opts.load_size, opts.load_size), method)
    elif opts.preprocess in ("scale_width", "scale_width_and_crop"):
        image = _scale_width(image, opts.load_size, opts.crop_size, method)
    if opts.preprocess in ("resize_and_crop", "crop", "scale_width_and_crop"):
        width, height = image.size
        if width < crop_w or height < crop_h:
            raise DatasetError(f"{source}: {width}x{height} is smaller than crop_size {crop_w}x{crop_h}; "
                               "lower crop_size or use preprocess 'resize'")
        image = image.crop((params.crop_x, params.crop_y, params.crop_x + crop_w, params.crop_y + crop_h))
    image = _multiple_of_4(image, method)
    if params.flip:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    return image
