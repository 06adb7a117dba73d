"""Built-in sample datasets, made on first use from the photographs and textures inside scikit-image's
wheel (no download) and cached in the workspace in the standard layouts.

Train and test crops come from separate parts of each source image (the left 70% and the right 30% of
its width), so test images are never crops of the training pixels.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engine.errors import ConfigError
from engine.events import EventSink, StepProgress, null_sink
from engine.locks import file_lock
from engine.registry import Registry

log = logging.getLogger(__name__)

SAMPLE_FORMAT_VERSION = 2
TRAIN_FRACTION = 0.7
CROP_SCALE = (0.18, 0.28)  # crop side as a fraction of the source's shorter side

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle")


@dataclass(frozen=True)
class SampleParams:
    size: int = 64
    n_train: int = 200
    n_test: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        if self.size < 16 or self.size % 4:
            raise ConfigError(f"sample size must be a multiple of 4 and at least 16, not {self.size}")
        if self.n_train < 1 or self.n_test < 1:
            raise ConfigError("a sample needs at least one train and one test image")

    def folder_name(self, name: str) -> str:
        return f"{name}-{self.size}px-{self.n_train}-{self.n_test}-seed{self.seed}-v{SAMPLE_FORMAT_VERSION}"


@dataclass(frozen=True)
class SampleSpec:
    name: str
    layout: str
    description: str
    family: str
    build: Callable[[Path, SampleParams, random.Random, Callable[[int], None]], None]


SAMPLES: Registry = Registry("sample dataset")


@dataclass(frozen=True)
class SampleDataset:
    name: str
    layout: str
    path: Path
    params: SampleParams


# --- sources ------------------------------------------------------------------------------------------

def _photo(name: str) -> np.ndarray:
    import skimage.data

    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]
    return getattr(skimage.data, name)()


def _texture(name: str) -> np.ndarray:
    import skimage.data

    gray = getattr(skimage.data, name)()
    return np.repeat(gray[:, :, None], 3, axis=2)


def _random_crop(source: np.ndarray, size: int, train: bool, rng: random.Random,
                 augment: bool = False, scale: tuple[float, float] = CROP_SCALE) -> np.ndarray:
    height, width = source.shape[:2]
    side = int(rng.uniform(*scale) * min(height, width))
    split = int(width * TRAIN_FRACTION)
    x_lo, x_hi = (0, split - side) if train else (split, width - side)
    x, y = rng.randint(x_lo, max(x_lo, x_hi)), rng.randint(0, height - side)
    crop = Image.fromarray(source[y:y + side, x:x + side]).resize((size, size), Image.LANCZOS)
    array = np.asarray(crop)
    if augment:
        array = np.rot90(array, rng.randrange(4))
        if rng.random() < 0.5:
            array = array[:, ::-1]
    elif rng.random() < 0.5:
        array = array[:, ::-1]
    return np.ascontiguousarray(array)


def _save(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _splits(params: SampleParams) -> list[tuple[str, bool, int]]:
    return [("train", True, params.n_train), ("test", False, params.n_test)]


# --- edges2photos (aligned) ---------------------------------------------------------------------------

def edge_map(photo: np.ndarray) -> np.ndarray:
    """Black edges on white, as edges2shoes draws them, from an RGB uint8 crop."""
    from skimage.color import rgb2gray
    from skimage.feature import canny

    sigma = 1.2 * photo.shape[0] / 64
    edges = canny(rgb2gray(photo), sigma=sigma, low_threshold=0.05, high_threshold=0.15)
    drawing = np.where(edges, 0, 255).astype(np.uint8)
    return np.repeat(drawing[:, :, None], 3, axis=2)


def _build_edges2photos(out: Path, params: SampleParams, rng: random.Random, tick: Callable[[int], None]) -> None:
    photos = [_photo(name) for name in PHOTOS]
    done = 0
    for phase, train, count in _splits(params):
        for i in range(count):
            crop = _random_crop(photos[i % len(photos)], params.size, train, rng)
            _save(np.concatenate([edge_map(crop), crop], axis=1), out / phase / f"{i:05d}.png")
            done += 1
            tick(done)


# --- grass2gravel (unaligned) -------------------------------------------------------------------------

def _build_grass2gravel(out: Path, params: SampleParams, rng: random.Random, tick: Callable[[int], None]) -> None:
    domain_a, domain_b = [_texture("grass")], [_texture("gravel"), _texture("brick")]
    done = 0
    for phase, train, count in _splits(params):
        for side, sources in (("A", domain_a), ("B", domain_b)):
            for i in range(count):
                crop = _random_crop(sources[i % len(sources)], params.size, train, rng, augment=True)
                _save(crop, out / f"{phase}{side}" / f"{i:05d}.png")
                done += 1
                tick(done)


# --- noisy2clean (aligned): photo restoration ------------------------------------------------------------

#: Standard deviation of the added noise, in units of the [0, 255] range.
NOISE_SIGMA = 40.0
#: Larger crops than the other samples: these are meant to be shown at 128 px and above.
LARGE_CROPS = (0.3, 0.42)
PHOTOS_LARGE = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "immunohistochemistry")


def add_noise(photo: np.ndarray, rng: random.Random) -> np.ndarray:
    """Gaussian noise of ``NOISE_SIGMA`` (seeded), clipped to 8 bits."""
    noise = np.random.default_rng(rng.randrange(2**31)).normal(0.0, NOISE_SIGMA, photo.shape)
    return np.clip(photo.astype(np.float64) + noise, 0, 255).round().astype(np.uint8)


def _build_noisy2clean(out: Path, params: SampleParams, rng: random.Random, tick: Callable[[int], None]) -> None:
    photos = [_photo(name) for name in PHOTOS_LARGE]
    done = 0
    for phase, train, count in _splits(params):
        for i in range(count):
            crop = _random_crop(photos[i % len(photos)], params.size, train, rng, scale=LARGE_CROPS)
            _save(np.concatenate([add_noise(crop, rng), crop], axis=1), out / phase / f"{i:05d}.png")
            done += 1
            tick(done)


# --- day2dusk (unaligned): a colour grade, learnt from unpaired photos ------------------------------------

def dusk_grade(photo: np.ndarray) -> np.ndarray:
    """A warm evening grade: darker, more contrast, red and orange up, blue down."""
    x = photo.astype(np.float64) / 255.0
    x = x ** 1.25
    graded = np.stack([x[..., 0] * 1.15 + 0.08, x[..., 1] * 0.85 + 0.02, x[..., 2] * 0.5], axis=-1)
    return np.clip(graded * 255.0, 0, 255).round().astype(np.uint8)


def _build_unpaired_photos(out: Path, params: SampleParams, rng: random.Random, tick: Callable[[int], None],
                           domain_image: Callable[[str, np.ndarray, random.Random], np.ndarray]) -> None:
    """Crops of the large photographs in both domains, independent per side (the pairs are never seen
    together); ``domain_image(side, crop, rng)`` is what a crop becomes in side A or B."""
    photos = [_photo(name) for name in PHOTOS_LARGE]
    done = 0
    for phase, train, count in _splits(params):
        for side in ("A", "B"):
            for i in range(count):
                crop = _random_crop(photos[(i * 7 + (3 if side == "B" else 0)) % len(photos)], params.size, train,
                                    rng, scale=LARGE_CROPS)
                _save(domain_image(side, crop, rng), out / f"{phase}{side}" / f"{i:05d}.png")
                done += 1
                tick(done)


def _build_day2dusk(out: Path, params: SampleParams, rng: random.Random, tick: Callable[[int], None]) -> None:
    _build_unpaired_photos(out, params, rng, tick, lambda side, crop, _: crop if side == "A" else dusk_grade(crop))


# --- gray2tints (unaligned, multimodal: MUNIT) --------------------------------------------------------

#: Colour grades of the B domain (RGB gains on the luminance, and a lift): a photograph in B has one of them,
#: so one grayscale image has several right translations and the style code picks one. Three grades a third of
#: the hue circle apart (warm orange, green, cool blue): with five, two warm ones were hard to tell apart, by
#: eye and by a teacher trained for minutes (format version 2).
TINTS = ((1.25, 0.85, 0.45, 0.04), (0.6, 1.2, 0.65, 0.02), (0.55, 0.85, 1.3, 0.02))


def tinted(photo: np.ndarray, tint: int) -> np.ndarray:
    """The photograph's luminance in colour grade ``tint`` of ``TINTS``."""
    gray = photo.astype(np.float64).mean(-1, keepdims=True) / 255.0
    red, green, blue, lift = TINTS[tint]
    graded = gray * np.array([red, green, blue]) + lift
    return np.clip(graded * 255.0, 0, 255).round().astype(np.uint8)


def _build_gray2tints(out: Path, params: SampleParams, rng: random.Random, tick: Callable[[int], None]) -> None:
    def domain_image(side: str, crop: np.ndarray, rng: random.Random) -> np.ndarray:
        if side == "B":
            return tinted(crop, rng.randrange(len(TINTS)))
        return np.repeat(crop.mean(-1, keepdims=True).round().astype(np.uint8), 3, axis=2)

    _build_unpaired_photos(out, params, rng, tick, domain_image)


# --- labels2photos (label maps, GauGAN) ---------------------------------------------------------------

N_LABEL_CLASSES = 8


def _colour_classes(photos: list[np.ndarray], rng: random.Random) -> np.ndarray:
    """Cluster centres (in Lab) of the photos' colours: the classes shared by all label maps."""
    from scipy.cluster.vq import kmeans2
    from skimage.color import rgb2lab

    samples = []
    np_rng = np.random.default_rng(rng.randrange(2**31))
    for photo in photos:
        lab = rgb2lab(photo).reshape(-1, 3)
        samples.append(lab[np_rng.choice(len(lab), 4000, replace=False)])
    centres, _ = kmeans2(np.concatenate(samples).astype(np.float64), N_LABEL_CLASSES, minit="++",
                         seed=np_rng.integers(2**31))
    # Order classes by lightness so that ids mean the same thing from one build to the next.
    return centres[np.argsort(centres[:, 0])]


def label_map(photo: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """One class id per pixel: the nearest colour class of the slightly smoothed photograph."""
    from scipy.ndimage import gaussian_filter
    from skimage.color import rgb2lab

    smooth = gaussian_filter(photo.astype(np.float64), sigma=(1.0, 1.0, 0))
    lab = rgb2lab(smooth.clip(0, 255).astype(np.uint8))
    distances = ((lab[:, :, None, :] - centres[None, None]) ** 2).sum(-1)
    return distances.argmin(-1).astype(np.uint8)


def _build_labels2photos(out: Path, params: SampleParams, rng: random.Random, tick: Callable[[int], None]) -> None:
    from skimage.color import lab2rgb

    photos = [_photo(name) for name in PHOTOS]
    centres = _colour_classes(photos, rng)
    palette = (lab2rgb(centres[None])[0] * 255).round().astype(int).tolist()
    (out / "classes.json").write_text(json.dumps({"n_classes": N_LABEL_CLASSES, "palette_rgb": palette}, indent=1))
    done = 0
    for phase, train, count in _splits(params):
        for i in range(count):
            crop = _random_crop(photos[i % len(photos)], params.size, train, rng)
            _save(label_map(crop, centres), out / f"{phase}_label" / f"{i:05d}.png")
            _save(crop, out / f"{phase}_img" / f"{i:05d}.png")
            done += 1
            tick(done)


SAMPLES.register("edges2photos")(SampleSpec(
    "edges2photos", "aligned",
    "paired: edge drawings (A) -> photographs (B), crops of scikit-image's photographs", "pix2pix",
    _build_edges2photos))
SAMPLES.register("grass2gravel")(SampleSpec(
    "grass2gravel", "unaligned",
    "unpaired: grass texture (A) <-> gravel and brick textures (B), grayscale", "cyclegan",
    _build_grass2gravel))
SAMPLES.register("noisy2clean")(SampleSpec(
    "noisy2clean", "aligned",
    f"paired restoration: noisy photographs (A, Gaussian noise sigma {NOISE_SIGMA:g}/255) -> clean (B), crops of "
    "scikit-image's photographs", "pix2pix", _build_noisy2clean))
SAMPLES.register("day2dusk")(SampleSpec(
    "day2dusk", "unaligned",
    "unpaired: photographs (A) <-> other photographs in a warm evening colour grade (B), crops of "
    "scikit-image's photographs", "cyclegan", _build_day2dusk))
SAMPLES.register("gray2tints")(SampleSpec(
    "gray2tints", "unaligned",
    f"unpaired, multimodal: grayscale photographs (A) <-> other photographs in one of {len(TINTS)} colour grades "
    "(B), crops of scikit-image's photographs; the style code picks the grade", "munit", _build_gray2tints))
SAMPLES.register("labels2photos")(SampleSpec(
    "labels2photos", "labelmap",
    f"label maps ({N_LABEL_CLASSES} colour classes, A) -> photographs (B), for GauGAN", "gaugan",
    _build_labels2photos))


def _total_images(spec: SampleSpec, params: SampleParams) -> int:
    per_split = 2 if spec.layout == "unaligned" else 1
    return per_split * (params.n_train + params.n_test)


def sample_path(name: str, datasets_dir: Path, params: SampleParams = SampleParams()) -> Path:
    SAMPLES.get(name)
    return Path(datasets_dir) / params.folder_name(name)


def is_built(name: str, datasets_dir: Path, params: SampleParams = SampleParams()) -> bool:
    return (sample_path(name, datasets_dir, params) / "sample.json").is_file()


def _build(spec: SampleSpec, name: str, target: Path, params: SampleParams, events: EventSink) -> None:
    total = _total_images(spec, params)
    stage = f"sample:{name}"
    log.info("building sample dataset %s in %s", name, target)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
        work = Path(tmp) / "data"
        work.mkdir()
        rng = random.Random(f"{name}:{params.seed}")
        spec.build(work, params, rng, lambda done: events(StepProgress(stage=stage, step=done, total_steps=total)))
        (work / "sample.json").write_text(json.dumps(
            {"name": name, "layout": spec.layout, "description": spec.description, **asdict(params),
             "format_version": SAMPLE_FORMAT_VERSION, "source": "scikit-image data"}, indent=1))
        work.rename(target)


def ensure_sample(name: str, datasets_dir: Path, params: SampleParams = SampleParams(),
                  events: EventSink = null_sink) -> SampleDataset:
    """The sample's folder, built now if it is not cached yet. Building writes to a temporary folder
    and renames it into place, so an interrupted build never leaves a half-made dataset behind."""
    spec: SampleSpec = SAMPLES.get(name)
    target = sample_path(name, datasets_dir, params)
    if is_built(name, datasets_dir, params):
        return SampleDataset(name=name, layout=spec.layout, path=target, params=params)
    # One build per sample at a time; the lock holder also clears what a killed build left behind.
    with file_lock(target.parent / f".{target.name}.lock"):
        if not is_built(name, datasets_dir, params):
            for stale in target.parent.glob(f".{target.name}-*"):
                shutil.rmtree(stale, ignore_errors=True)
            if target.exists():  # a build of an older format, or one cut short before its sample.json
                shutil.rmtree(target)
            _build(spec, name, target, params, events)
    return SampleDataset(name=name, layout=spec.layout, path=target, params=params)
