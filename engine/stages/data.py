"""The datasets of a run: the training subset, the held-out search subset, the test set, and the real
statistics (cached per dataset and feature extractor) that distribution metrics compare against."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from engine.config import RunConfig
from engine.data.layouts import DatasetConfig, LayoutDataset, detect_layout, open_dataset
from engine.data.samples import SampleParams, ensure_sample
from engine.data.transforms import PreprocessOptions
from engine.distributed import SINGLE, World
from engine.errors import ConfigError, DatasetError
from engine.events import EventSink, Message
from engine.families.capabilities import conditioning_of, dataset_settings, export_feed
from engine.paper_presets import missing_dataset
from engine.metrics import FeatureExtractor, RealStatistics, gaussian_stats, load_real_statistics, save_stats
from engine.settings import Settings


@dataclass
class RunData:
    root: Path
    layout: str
    train: LayoutDataset
    search_inputs: torch.Tensor
    search_targets: torch.Tensor  # ground truth (paired) or real target-domain images (unpaired)
    test_inputs: torch.Tensor
    test_targets: torch.Tensor
    #: The images whose statistics distribution metrics compare with, per split.
    real_sets: dict[str, Dataset]
    #: Inputs beside each image of the split (``Family.conditioning``, e.g. style codes); empty for most.
    search_conditioning: tuple[torch.Tensor, ...] = ()
    test_conditioning: tuple[torch.Tensor, ...] = ()
    #: The input file of each image of the split (a label-map family's label maps: mIoU at their resolution).
    search_paths: tuple[str, ...] = ()
    test_paths: tuple[str, ...] = ()

    def feed(self, family, options, split: str = "test", count: int | None = None) -> tuple[torch.Tensor, ...]:
        """The first ``count`` (None: all) images of a split as the exported model is run on them
        (``capabilities.export_feed``: the images and their conditioning, or the reference images it takes)."""
        inputs, targets, conditioning = ((self.test_inputs, self.test_targets, self.test_conditioning) if split == "test"
                                         else (self.search_inputs, self.search_targets, self.search_conditioning))
        return export_feed(family, options, inputs[:count], tuple(c[:count] for c in conditioning), targets[:count])


def resolve_dataset(config: RunConfig, settings: Settings, events: EventSink) -> tuple[Path, str]:
    spec = config.dataset
    if spec.sample:
        params = SampleParams(size=spec.sample_size, n_train=spec.sample_train, n_test=spec.sample_test)
        sample = ensure_sample(spec.sample, settings.datasets_dir, params, events=events)
        root, layout = sample.path, sample.layout
    else:
        root = Path(spec.path).expanduser()  # type: ignore[arg-type]
        said = missing_dataset(config.protocol, root)
        if said is not None:
            raise DatasetError(said)
        layout = detect_layout(root) if spec.layout == "auto" else spec.layout
    family = config.family_impl
    if layout != family.dataset_layout:
        raise ConfigError(f"{family.name} needs a dataset in the {family.dataset_layout} layout, but {root} is "
                          f"{layout}; pick the matching family or dataset")
    return root, layout


def existing_dataset_root(config: RunConfig, settings: Settings) -> Path | None:
    """The run's dataset folder if it exists already (never builds a sample; cheap enough for a GUI)."""
    spec = config.dataset
    if spec.sample:
        from engine.data.samples import sample_path

        params = SampleParams(size=spec.sample_size, n_train=spec.sample_train, n_test=spec.sample_test)
        root = sample_path(spec.sample, settings.datasets_dir, params)
        return root if (root / "sample.json").is_file() else None
    root = Path(spec.path).expanduser()  # type: ignore[arg-type]
    return root if root.is_dir() else None


def _split(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """A split's inputs and targets stacked, and its input files (each image read once)."""
    items = [dataset[i] for i in range(len(dataset))]
    return (torch.stack([item["A"] for item in items]), torch.stack([item["B"] for item in items]),
            tuple(str(item.get("A_path", "")) for item in items))


def _training_preprocess(config: RunConfig) -> PreprocessOptions:
    height, width = config.size_hw
    jitter = config.resolved_recipe.crop_jitter
    # With crop jitter (the reference's CycleGAN and pix2pix): load at 286/256 of the image size, random crop,
    # flip; without (its GauGAN and MUNIT): the image size, flip.
    load_size = max(width, round(width * 286 / 256 / 4) * 4) if jitter else width
    if config.train_crop is not None:  # square crops of the image at its full scale
        return PreprocessOptions(preprocess="scale_width_and_crop", load_size=load_size, crop_size=config.train_crop,
                                 flip=True)
    if not jitter:
        return PreprocessOptions.for_testing((height, width)).model_copy(update={"flip": True})
    return PreprocessOptions(preprocess="resize_and_crop", load_size=load_size, crop_size=width,
                             crop_height=None if height == width else height, flip=True)


def _common(config: RunConfig, root: Path, layout: str) -> dict:
    spec = config.dataset
    return dict(root=root, layout=layout, direction=spec.direction, seed=config.seed, holdout=spec.search_images,
                holdout_draw=spec.search_split, holdout_names=held_out_names(spec.search_list),
                **dataset_settings(config.family_impl, config.options))


def held_out_names(path: Path | None) -> tuple[str, ...] | None:
    """The names of a held-out list (the reference's ``.meta`` format: one name a line; blank lines skipped)."""
    if path is None:
        return None
    if not Path(path).is_file():
        raise ConfigError(f"dataset.search_list {path} is not a file: give a file of the held-out images' names, "
                          "one a line (the reference's datasets/metas/*.meta)")
    names = tuple(line.strip() for line in Path(path).read_text().splitlines() if line.strip())
    if not names:
        raise ConfigError(f"dataset.search_list {path} names no image")
    return names


def open_training_set(config: RunConfig, settings: Settings) -> LayoutDataset:
    """The run's training subset alone (e.g. to re-calibrate a sub-network's statistics outside a stage)."""
    root = existing_dataset_root(config, settings)
    if root is None:
        raise ConfigError(f"the dataset of run {config.name!r} is no longer on disk")
    layout = config.family_impl.dataset_layout
    return open_dataset(DatasetConfig(**_common(config, root, layout), subset="fit",
                                      preprocess=_training_preprocess(config)))


def prepare_data(config: RunConfig, settings: Settings, events: EventSink) -> RunData:
    root, layout = resolve_dataset(config, settings, events)
    spec, (height, width) = config.dataset, config.size_hw
    family = config.family_impl
    train_opts = _training_preprocess(config)
    eval_opts = PreprocessOptions.for_testing((height, width))
    common = _common(config, root, layout)
    train = open_dataset(DatasetConfig(**common, subset="fit", preprocess=train_opts))
    if getattr(train, "looks_single", None):
        events(Message(level="warning", text=train.looks_single))  # type: ignore[attr-defined]
    search = open_dataset(DatasetConfig(**common, subset="holdout", preprocess=eval_opts, serial_batches=True))
    test = open_dataset(DatasetConfig(**{**common, "holdout": 0}, phase="test", preprocess=eval_opts,
                                      serial_batches=True, max_size=spec.test_images))
    # Each set of real images opened once, even where both splits compare with it (CycleGAN's train+test).
    sources = dict(family.real_statistics_from)
    if spec.search_statistics == "train":
        sources["search"] = "train"
    domain = {source: _real_images(common, source, eval_opts) for source in set(sources.values()) - {"split"}}
    own = {"search": search, "test": test}
    real_sets = {split: own[split] if source == "split" else domain[source] for split, source in sources.items()}
    (search_inputs, search_targets, search_paths), (test_inputs, test_targets, test_paths) = _split(search), _split(test)
    # Fixed per split, so that every candidate and both ends of a comparison see the same conditioning.
    return RunData(root=root, layout=layout, train=train,
                   search_inputs=search_inputs, search_targets=search_targets,
                   test_inputs=test_inputs, test_targets=test_targets, real_sets=real_sets,
                   search_conditioning=conditioning_of(family, config.options, len(search_inputs), config.seed * 2 + 1),
                   test_conditioning=conditioning_of(family, config.options, len(test_inputs), config.seed * 2 + 2),
                   search_paths=search_paths, test_paths=test_paths)


class RealImages(Dataset):
    """Every target-domain image of one or more folders, each once (``{"B": image}``), for the real statistics
    of an unpaired family (the unpaired dataset repeats the smaller domain to the larger one's length)."""

    def __init__(self, folders: list[LayoutDataset]):
        self.folders = folders
        self.paths = [path for folder in folders for path in folder.paths]  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        for folder in self.folders:
            if index < len(folder):
                return {"B": folder[index]["A"]}
            index -= len(folder)
        raise IndexError(index)


def _real_images(common: dict, source: str, preprocess: PreprocessOptions) -> Dataset:
    """The real images of ``source`` (``train``, ``test`` or ``train+test``): an unpaired layout's target-domain
    folders; a paired one's training targets, less the held-out images (the reference's ``*_subtrain_*.npz``)."""
    if common["layout"] == "unaligned":
        return RealImages([_domain_images(common, phase, preprocess) for phase in source.split("+")])
    if source != "train":
        raise ConfigError(f"real statistics from {source} are for unpaired datasets; a {common['layout']} one "
                          "compares with its training targets (train) or a split's own")
    return open_dataset(DatasetConfig(**common, subset="fit", preprocess=preprocess, serial_batches=True))


def _domain_images(common: dict, phase: str, preprocess: PreprocessOptions) -> LayoutDataset:
    """The target domain's images of ``phase`` (``train`` or ``test``): ``<phase>B``, or ``<phase>A`` for BtoA."""
    side = "B" if common["direction"] == "AtoB" else "A"
    if not (common["root"] / f"{phase}{side}").is_dir():
        raise DatasetError(f"{common['root'] / f'{phase}{side}'} does not exist: the real statistics of this family "
                           f"read every {phase} image of the target domain; add the folder")
    return open_dataset(DatasetConfig(root=common["root"], layout="single", phase=f"{phase}{side}", seed=common["seed"],
                                      preprocess=preprocess, serial_batches=True))


def training_batches(dataset: Dataset, batch_size: int, seed: int, start_step: int,
                     world: World = SINGLE) -> Iterator[dict[str, torch.Tensor]]:
    """Endless shuffled batches; the order and the augmentation depend only on (seed, step), so a resumed
    stage continues the same sequence. In a multi-process run ``batch_size`` is the global batch and each
    rank gets its slice of it (the same sequence whatever the number of ranks)."""
    n = len(dataset)
    per_epoch = max(1, n // batch_size)
    step = start_step
    while True:
        epoch, offset = divmod(step, per_epoch)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()
        indices = order[offset * batch_size:(offset + 1) * batch_size]
        if len(indices) < batch_size:  # fewer images than a batch: repeat them
            indices = (indices * batch_size)[:batch_size]
        items = []
        for position, index in world.shard(list(enumerate(indices))):
            if isinstance(dataset, LayoutDataset):
                # Per image of the global batch: the same crops and flips on whichever rank draws it.
                dataset.seed_augmentation(((seed * 100_003 + step) * 7 + 1) * 1_009 + position)
            items.append(dataset[index])
        yield {key: torch.stack([item[key] for item in items]) for key in ("A", "B")}
        step += 1


def size_label(size: tuple[int, int]) -> str:
    """``64`` for a square size, ``512x256`` (width x height) otherwise."""
    height, width = size
    return str(width) if height == width else f"{width}x{height}"


def _fingerprint(dataset: LayoutDataset, size: tuple[int, int], extractor: FeatureExtractor) -> tuple[str, list[str]]:
    paths = getattr(dataset, "paths_b", None) or getattr(dataset, "paths", None) or [p for _, p in dataset.pairs]
    digest = hashlib.sha256(f"{extractor.name}|{size_label(size)}".encode())
    for path in paths:
        stat = Path(path).stat()
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20], [str(p) for p in paths]


def real_statistics(dataset: LayoutDataset, size: tuple[int, int], extractor: FeatureExtractor,
                    cache_dir: Path) -> tuple[RealStatistics, Path]:
    """Mean, covariance and its square root of the features of the dataset's real target images ("B"),
    cached as an ``.npz`` (pytorch-fid format plus the root and provenance) keyed by the files, their sizes
    and times."""
    key, paths = _fingerprint(dataset, size, extractor)
    path = cache_dir / f"{extractor.name}-{size_label(size)}px-{key}.npz"
    if path.is_file():
        return load_real_statistics(path), path
    features = np.concatenate([extractor(torch.stack([dataset[i]["B"] for i in range(start, min(start + 50, len(dataset)))]))
                               for start in range(0, len(dataset), 50)])
    stats = RealStatistics(*gaussian_stats(features))
    save_stats(path, stats.mu, stats.sigma, {"extractor": extractor.description, "image_size": size_label(size),
                                             "count": len(features), "files": len(paths),
                                             "first_file": paths[0] if paths else None,
                                             "created": datetime.now(timezone.utc).isoformat()}, stats.root)
    return stats, path


def describe(data: RunData) -> str:
    return json.dumps({"root": str(data.root), "layout": data.layout, "train": len(data.train),
                       "search": len(data.search_inputs), "test": len(data.test_inputs)})
