"""Dataset layouts of pytorch-CycleGAN-and-pix2pix (``aligned``, ``unaligned``, ``single``) and a
label-map layout for GauGAN, as torch datasets yielding ``{"A", "B", "A_path", "B_path"}``.

Headers of every file are read when a dataset opens: unreadable files are skipped with a warning, and
a folder with nothing usable is an error naming it. A file that fails to decode later (truncated data)
is skipped the same way, so one bad image in a large folder never stops a run.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from torch.utils.data import Dataset

from engine.data import transforms
from engine.data.images import ImageInfo, is_image_file, list_images, load_image, scan_images, to_tensor
from engine.data.transforms import PreprocessOptions
from engine.errors import DatasetError
from engine.files import missing
from engine.registry import Registry

log = logging.getLogger(__name__)

Layout = Literal["aligned", "unaligned", "single", "labelmap"]
LAYOUTS: Registry = Registry("dataset layout")
LABEL_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")


class DatasetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    root: Path
    layout: Layout
    phase: str = "train"
    direction: Literal["AtoB", "BtoA"] = "AtoB"
    preprocess: PreprocessOptions = PreprocessOptions()
    max_size: int | None = Field(None, ge=1)
    serial_batches: bool = False
    seed: int = 0
    #: The last ``holdout`` images of each folder form the ``holdout`` subset (for scoring during search);
    #: subset ``fit`` is the rest (for training), ``all`` is everything.
    holdout: int = Field(0, ge=0)
    subset: Literal["all", "fit", "holdout"] = "all"
    #: ``last``: the held-out images are the last ``holdout`` of the sorted list; ``random``: a draw across the
    #: whole list seeded by ``seed`` (the same for every folder of a layout with as many files, so label maps and
    #: their photographs stay paired). ``holdout_names`` (file names or stems) replaces both.
    holdout_draw: Literal["last", "random"] = "last"
    holdout_names: tuple[str, ...] | None = None
    #: Label maps only: ids must lie in 0..label_classes-1 (None: unchecked); ``instance_maps`` reads
    #: ``<phase>_inst/NAME.png`` beside each label map as a second channel of instance ids.
    label_classes: int | None = Field(None, ge=1)
    instance_maps: bool = False
    #: Decode every image when the dataset opens (``datasets check``), not only the headers (a run's start):
    #: reports up front each file a run would skip while training.
    decode_check: bool = False

    def select(self, paths: list[Path], folder: Path) -> list[Path]:
        """Apply ``subset`` and ``max_size`` to a folder's sorted list of usable images."""
        if self.subset != "all" and (self.holdout or self.holdout_names):
            held = self._held_out(paths, folder)
            paths = [path for index, path in enumerate(paths) if (index in held) == (self.subset == "holdout")]
        return paths[: self.max_size]

    def _held_out(self, paths: list[Path], folder: Path) -> set[int]:
        """Indices (in the sorted list) of the images held out for the search."""
        if self.holdout_names is not None:
            names = set(self.holdout_names)
            held = {i for i, path in enumerate(paths) if path.name in names or path.stem in names}
            if not held or len(held) == len(paths):
                raise DatasetError(f"the held-out list names {len(held)} of the {len(paths)} images of {folder}: "
                                   "it must name some, not all (one file name or stem a line)")
            return held
        if len(paths) <= self.holdout:
            raise DatasetError(f"{folder} has {len(paths)} usable images; holding out {self.holdout} "
                               "for search leaves none to train on: add images or lower dataset.search_images")
        if self.holdout_draw == "last":
            return set(range(len(paths) - self.holdout, len(paths)))
        return set(random.Random(f"holdout {self.seed} {len(paths)}").sample(range(len(paths)), self.holdout))


class LayoutDataset(Dataset):
    """Shared skipping of files that fail to decode during loading."""

    def __init__(self, config: DatasetConfig):
        self.config = config
        self.rng = random.Random(config.seed)
        self.skipped: set[Path] = set()
        #: (path, reason) of each file left out when the dataset opened (what ``datasets check`` reports).
        self.unreadable: list[tuple[Path, str]] = []

    def _usable(self, paths: list[Path], folder: Path, what: str) -> list[ImageInfo]:
        """The readable images of ``paths`` (headers; every pixel too with ``config.decode_check``), the others
        left out with a warning; none readable is an error."""
        good, bad = scan_images(paths, decode=self.config.decode_check)
        for path, reason in bad:
            log.warning("skipping %s", reason)
        self.unreadable += bad
        if not good:
            raise DatasetError(f"none of the {len(paths)} files in {folder} could be read as images "
                               f"(expected {what}); first problem: {bad[0][1]}")
        return good

    def seed_augmentation(self, key: int) -> None:
        """Random crops, flips and unpaired partners drawn from here on depend only on ``key``, so that a
        training stage resumed from a checkpoint sees exactly the batches of an uninterrupted one."""
        self.rng = random.Random(key)

    def _load(self, path: Path, mode: str = "RGB") -> Image.Image | None:
        if path in self.skipped:
            return None
        try:
            return load_image(path, mode)
        except DatasetError as exc:
            log.warning("skipping %s", exc)
            self.skipped.add(path)
            return None

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self)
        for offset in range(n):
            item = self._item((index + offset) % n)
            if item is not None:
                return item
        raise DatasetError(f"no image of {self.config.root} could be decoded; "
                           f"{len(self.skipped)} files failed (see the warnings above)")

    def _item(self, index: int) -> dict[str, Any] | None:
        raise NotImplementedError


@LAYOUTS.register("aligned")
class AlignedDataset(LayoutDataset):
    """``root/<phase>/*.jpg``, each image the pair A|B side by side (pix2pix)."""

    WHAT = "A|B pairs: each image A and B side by side, twice as wide as tall"

    def __init__(self, config: DatasetConfig):
        super().__init__(config)
        folder = config.root / config.phase
        infos = self._usable(list_images(folder, what=self.WHAT), folder, self.WHAT)
        sizes = Counter((info.width, info.height) for info in infos)
        common, _ = sizes.most_common(1)[0]
        for info in infos:
            if (info.width, info.height) != common:
                raise DatasetError(
                    f"images of mixed size in aligned dataset {folder}: {info.path} is {info.width}x{info.height} "
                    f"but most images are {common[0]}x{common[1]}; resize them all to one size")
        if common[0] % 2:
            raise DatasetError(f"{infos[0].path} is {common[0]} pixels wide, which cannot split into A|B halves; "
                               f"expected {self.WHAT}")
        #: Why these pairs look like single images (square or tall, so A and B would be halves of one photograph,
        #: a training that runs and learns nothing), for the run's log; None for the usual wide pairs. Not a
        #: refusal: two portrait images side by side make a square pair too.
        self.looks_single = None if common[0] > common[1] else (
            f"{infos[0].path} is {common[0]}x{common[1]}, not twice as wide as tall: an aligned dataset holds "
            f"{self.WHAT}, so each of A and B is half of it. If these are single images, put each A beside its B "
            "(the reference's datasets/combine_A_and_B.py does), or use trainA/trainB folders for an unpaired family")
        self.paths = config.select([info.path for info in infos], folder)

    def __len__(self) -> int:
        return len(self.paths)

    def _item(self, index: int) -> dict[str, Any] | None:
        path = self.paths[index]
        pair = self._load(path)
        if pair is None:
            return None
        w, h = pair.size
        a, b = pair.crop((0, 0, w // 2, h)), pair.crop((w // 2, 0, w, h))
        params = transforms.sample_params(a.size, self.config.preprocess, self.rng)
        a = to_tensor(transforms.apply(a, params, self.config.preprocess, source=path))
        b = to_tensor(transforms.apply(b, params, self.config.preprocess, source=path))
        if self.config.direction == "BtoA":
            a, b = b, a
        return {"A": a, "B": b, "A_path": str(path), "B_path": str(path)}


@LAYOUTS.register("unaligned")
class UnalignedDataset(LayoutDataset):
    """``root/<phase>A`` and ``root/<phase>B``: two unpaired domains (CycleGAN)."""

    def __init__(self, config: DatasetConfig):
        super().__init__(config)
        sides = ("A", "B") if config.direction == "AtoB" else ("B", "A")
        folders = [config.root / f"{config.phase}{side}" for side in sides]
        self.paths_a, self.paths_b = (
            config.select([info.path for info in
                           self._usable(list_images(f, what=f"images of domain {s}"), f, f"domain {s} images")], f)
            for f, s in zip(folders, sides))

    def __len__(self) -> int:
        # Read in order (scoring a split), each input once: horse2zebra's test split is testA's 120 horses, as the
        # reference scores it, not 140 with 20 repeated. A training epoch is the larger domain's, as the reference's.
        if self.config.serial_batches:
            return len(self.paths_a)
        return max(len(self.paths_a), len(self.paths_b))

    def _item(self, index: int) -> dict[str, Any] | None:
        path_a = self.paths_a[index % len(self.paths_a)]
        if self.config.serial_batches:
            path_b = self.paths_b[index % len(self.paths_b)]
        else:
            path_b = self.paths_b[self.rng.randrange(len(self.paths_b))]
        image_a, image_b = self._load(path_a), self._load(path_b)
        if image_a is None or image_b is None:
            return None
        opts = self.config.preprocess
        a = to_tensor(transforms.apply(image_a, transforms.sample_params(image_a.size, opts, self.rng), opts, source=path_a))
        b = to_tensor(transforms.apply(image_b, transforms.sample_params(image_b.size, opts, self.rng), opts, source=path_b))
        return {"A": a, "B": b, "A_path": str(path_a), "B_path": str(path_b)}


@LAYOUTS.register("single")
class SingleDataset(LayoutDataset):
    """A folder of images of one side, for inference."""

    def __init__(self, config: DatasetConfig):
        super().__init__(config)
        folder = config.root / config.phase if (config.root / config.phase).is_dir() else config.root
        self.paths = config.select([info.path for info in self._usable(list_images(folder), folder, "images")], folder)

    def __len__(self) -> int:
        return len(self.paths)

    def _item(self, index: int) -> dict[str, Any] | None:
        path = self.paths[index]
        image = self._load(path)
        if image is None:
            return None
        opts = self.config.preprocess
        a = to_tensor(transforms.apply(image, transforms.sample_params(image.size, opts, self.rng), opts, source=path))
        return {"A": a, "A_path": str(path)}


@LAYOUTS.register("labelmap")
class LabelMapDataset(LayoutDataset):
    """``root/<phase>_label/NAME.png`` (one class id per pixel) beside ``root/<phase>_img/NAME.*`` (GauGAN),
    and with ``instance_maps`` ``root/<phase>_inst/NAME.png`` (one instance id per pixel, Cityscapes'
    ``*_instanceIds``).

    ``A`` is the label map as float32 (1, H, W) class ids, or (2, H, W) with the instance ids as the second
    channel (the generator one-hot encodes them itself); ``B`` the photograph in [-1, 1]. A class id outside
    ``label_classes`` is an error naming the file and the fix.
    """

    def __init__(self, config: DatasetConfig):
        super().__init__(config)
        label_dir, image_dir = config.root / f"{config.phase}_label", config.root / f"{config.phase}_img"
        instance_dir = config.root / f"{config.phase}_inst"
        labels = [p for p in list_images(label_dir, what="label maps (one class id per pixel, PNG)")
                  if p.suffix.lower() in LABEL_EXTENSIONS]
        if not labels:
            raise DatasetError(f"no lossless label maps in {label_dir}: label maps must be PNG, BMP or TIFF "
                               "(JPEG would change the class ids)")
        images = {p.stem: p for p in list_images(image_dir, what="photographs matching the label maps")}
        instances: dict[str, Path] = {}
        if config.instance_maps:
            if not instance_dir.is_dir():
                raise DatasetError(f"instance edges are on but {instance_dir} does not exist: add the instance maps "
                                   "(one instance id per pixel, PNG) or turn model.instance_edges off")
            instances = {p.stem: p for p in list_images(instance_dir, what="instance maps")
                         if p.suffix.lower() in LABEL_EXTENSIONS}
        pairs = []
        for info in self._usable(labels, label_dir, "label maps"):
            if info.mode not in ("L", "P", "I", "I;16"):
                raise DatasetError(f"label map {info.path} has mode {info.mode}; expected one channel of class ids "
                                   "(mode L or P)")
            if info.path.stem not in images:
                raise DatasetError(f"label map {info.path} has no photograph named {info.path.stem}.* in {image_dir}")
            if config.instance_maps and info.path.stem not in instances:
                raise DatasetError(f"label map {info.path} has no instance map named {info.path.stem}.png in "
                                   f"{instance_dir}")
            pairs.append((info.path, images[info.path.stem]))
        kept = set(config.select([label for label, _ in pairs], label_dir))
        self.pairs = [pair for pair in pairs if pair[0] in kept]
        self.instances = instances

    def __len__(self) -> int:
        return len(self.pairs)

    def _ids(self, image: Image.Image, params: Any, path: Path, size: tuple[int, int]) -> torch.Tensor:
        resized = transforms.apply(image.resize(size, Image.NEAREST), params, self.config.preprocess, nearest=True,
                                   source=path)
        return torch.from_numpy(np.array(resized, dtype=np.int64))

    def _item(self, index: int) -> dict[str, Any] | None:
        label_path, image_path = self.pairs[index]
        label, image = self._load(label_path, mode=""), self._load(image_path)
        instance_path = self.instances.get(label_path.stem)
        instance = self._load(instance_path, mode="") if instance_path is not None else None
        if label is None or image is None or (self.config.instance_maps and instance is None):
            return None
        opts = self.config.preprocess
        params = transforms.sample_params(image.size, opts, self.rng)
        ids = self._ids(label, params, label_path, image.size)
        check_class_ids(ids, self.config.label_classes, label_path)
        channels = [ids]
        if instance is not None:
            channels.append(self._ids(instance, params, instance_path, image.size))  # type: ignore[arg-type]
        a = torch.stack(channels).to(torch.float32)
        b = to_tensor(transforms.apply(image, params, opts, source=image_path))
        return {"A": a, "B": b, "A_path": str(label_path), "B_path": str(image_path)}


def check_class_ids(ids: torch.Tensor, classes: int | None, path: Path) -> None:
    """A DatasetError naming ``path`` when a class id lies outside 0..classes-1."""
    if classes is None or not ids.numel():
        return
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= classes:
        bad = sorted(int(v) for v in ids.unique() if v < 0 or v >= classes)
        raise DatasetError(f"label map {path} holds class ids {bad[:8]} outside 0..{classes - 1}: set the number of "
                           f"classes (model.classes) to at least {high + 1}, or fix the label map")


def open_dataset(config: DatasetConfig) -> LayoutDataset:
    if not config.root.is_dir():
        raise DatasetError(missing(config.root, "dataset folder"))
    return LAYOUTS.get(config.layout)(config)


def _has_images(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() and is_image_file(p) for p in folder.rglob("*"))


def detect_layout(root: Path) -> Layout:
    """Which layout a folder is in, or a DatasetError describing the layouts it could be in."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(missing(root, "dataset folder"))
    if any(_has_images(root / f"{p}A") and _has_images(root / f"{p}B") for p in ("train", "test")):
        return "unaligned"
    if any((root / f"{p}_label").is_dir() and (root / f"{p}_img").is_dir() for p in ("train", "test")):
        return "labelmap"
    if any(_has_images(root / p) for p in ("train", "test", "val")):
        return "aligned"
    if any(p.is_file() and is_image_file(p) for p in root.iterdir()):
        return "single"
    raise DatasetError(
        f"{root} is in none of the known layouts; expected one of: aligned (train/*.jpg, A|B side by side), "
        "unaligned (trainA/ and trainB/ folders of images), labelmap (train_label/ beside train_img/), "
        "single (a folder of images)")
