"""A compression run's configuration: one validated model, from a preset, a YAML file or both.

``python main.py compress --preset cyclegan-sample`` or ``--config run.yaml``; a YAML file may name a
``preset`` and override any of its values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.errors import ConfigError

STAGES = ("teacher", "supernet", "search", "finetune", "export")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSpec(_Model):
    """A built-in sample (``sample``) or a folder of the user's (``path`` and ``layout``)."""

    sample: str | None = None
    sample_size: int = Field(64, ge=16)
    sample_train: int = Field(200, ge=1)
    sample_test: int = Field(50, ge=1)
    path: Path | None = None
    layout: Literal["aligned", "unaligned", "auto"] = "auto"
    direction: Literal["AtoB", "BtoA"] = "AtoB"
    #: Images of the training split held out from training and used to score search candidates.
    search_images: int = Field(32, ge=2)
    #: Test images used for the final metrics (at most this many).
    test_images: int = Field(50, ge=2)

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSpec:
        if (self.sample is None) == (self.path is None):
            raise ValueError("give either dataset.sample (a built-in sample) or dataset.path (your folder)")
        return self


class TeacherSpec(_Model):
    """``checkpoint``: a generator to import (pytorch-CycleGAN-and-pix2pix or gan-compression format);
    without one, the teacher is trained here for ``steps`` steps."""

    checkpoint: Path | None = None
    discriminator_checkpoint: Path | None = None
    ngf: int = Field(64, ge=1)
    n_blocks: int = Field(9, ge=3)
    norm: Literal["instance", "batch"] = "instance"
    steps: int = Field(2000, ge=0)
    lr: float = Field(2e-4, gt=0)


class DistillSpec(_Model):
    steps: int = Field(2000, ge=1)
    lr: float = Field(2e-4, gt=0)
    lambda_recon: float | None = Field(None, ge=0, description="default: the family's (10 unpaired, 100 paired)")
    lambda_distill: float = Field(1.0, ge=0)
    lambda_gan: float = Field(1.0, ge=0)
    #: Width choices per arch position; default: the family's search space.
    search_space: list[list[int]] | None = None

    @field_validator("search_space")
    @classmethod
    def _eight_positions(cls, value: list[list[int]] | None) -> list[list[int]] | None:
        if value is not None and (len(value) != 8 or any(not c or min(c) < 1 for c in value)):
            raise ValueError("search_space needs 8 non-empty lists of positive widths")
        return value


class SearchSpec(_Model):
    method: Literal["auto", "evolution", "exhaustive"] = "auto"
    macs_budget: float | None = Field(None, gt=0, description="MACs at the run's image size")
    target_ratio: float | None = Field(None, gt=1, description="teacher MACs / student MACs at least this")
    exhaustive_limit: int = Field(2000, ge=1)
    population: int = Field(100, ge=2)
    generations: int = Field(500, ge=1)
    parent_ratio: float = Field(0.25, gt=0, le=1)
    mutation_ratio: float = Field(0.5, ge=0, le=1)
    mutation_prob: float = Field(0.2, ge=0, le=1)

    @model_validator(mode="after")
    def _one_budget(self) -> SearchSpec:
        if self.macs_budget is not None and self.target_ratio is not None:
            raise ValueError("give search.macs_budget or search.target_ratio, not both")
        return self


class FinetuneSpec(_Model):
    steps: int = Field(500, ge=0, description="0 skips fine-tuning")
    lr: float = Field(2e-4, gt=0)


class RunConfig(_Model):
    name: str = "run"
    family: Literal["cyclegan", "pix2pix"]
    dataset: DatasetSpec
    image_size: int = Field(64, ge=16)
    batch_size: int = Field(1, ge=1)
    gan_mode: Literal["lsgan", "vanilla"] | None = Field(None, description="default: lsgan for CycleGAN, vanilla for pix2pix")
    teacher: TeacherSpec = TeacherSpec()
    supernet: DistillSpec = DistillSpec()
    search: SearchSpec = SearchSpec(target_ratio=10)
    finetune: FinetuneSpec = FinetuneSpec()
    metric: Literal["fid", "rfid", "psnr"] = "fid"
    seed: int = 0
    device: str = "cpu"
    checkpoint_interval_s: float = Field(120.0, gt=0)
    log_every: int = Field(10, ge=1)
    threads: int | None = Field(None, ge=1)

    @field_validator("image_size")
    @classmethod
    def _multiple_of_4(cls, value: int) -> int:
        if value % 4:
            raise ValueError(f"image_size must be a multiple of 4 (two stride-2 downsamplings), not {value}")
        return value

    @property
    def resolved_gan_mode(self) -> str:
        return self.gan_mode or ("vanilla" if self.family == "pix2pix" else "lsgan")


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override``'s values, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        merged[key] = merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


# Teachers with ngf 32 keep the sample presets within minutes on a 2-core CPU; the student search
# space goes down to a quarter of the teacher's widths.
_SAMPLE_PRESET: dict[str, Any] = {
    "dataset": {"search_images": 40, "test_images": 50},
    "image_size": 64, "batch_size": 4,
    "teacher": {"ngf": 32, "n_blocks": 9},
    "supernet": {"steps": 900, "lambda_distill": 1.0, "search_space": [[32, 24, 16, 8]] * 8},
    "search": {"method": "auto", "target_ratio": 10, "population": 24, "generations": 4},
    "finetune": {"steps": 200}, "checkpoint_interval_s": 60,
}

PRESETS: dict[str, dict[str, Any]] = {
    "cyclegan-sample": merge(_SAMPLE_PRESET, {
        "name": "cyclegan-sample", "family": "cyclegan", "dataset": {"sample": "grass2gravel"},
        "teacher": {"steps": 350}, "metric": "fid"}),
    "pix2pix-sample": merge(_SAMPLE_PRESET, {
        "name": "pix2pix-sample", "family": "pix2pix", "dataset": {"sample": "edges2photos"},
        "teacher": {"steps": 600}, "metric": "psnr"}),
}


def _without_replaced_budget(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A budget given as MACs replaces a base's target ratio, and the other way round."""
    given = override.get("search") if isinstance(override.get("search"), dict) else {}
    search = dict(base.get("search", {}))
    for key, other in (("macs_budget", "target_ratio"), ("target_ratio", "macs_budget")):
        if given.get(key) is not None and other not in given:
            search.pop(other, None)
    return {**base, "search": search} if "search" in base else base


def _validate(data: dict[str, Any], source: str) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid run configuration ({source}): {problems}") from None


def load_config(preset: str | None = None, path: Path | None = None,
                overrides: dict[str, Any] | None = None) -> RunConfig:
    data: dict[str, Any] = {}
    source = []
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping of settings, not {type(loaded).__name__}")
        preset = loaded.pop("preset", None) or preset
        data = loaded
        source.append(str(path))
        # Relative dataset and checkpoint paths are relative to the config file.
        for section, key in (("dataset", "path"), ("teacher", "checkpoint"), ("teacher", "discriminator_checkpoint")):
            value = data.get(section, {}).get(key) if isinstance(data.get(section), dict) else None
            if value and not Path(value).expanduser().is_absolute():
                data[section][key] = str((path.parent / value).resolve())
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(sorted(PRESETS))}")
        data = merge(_without_replaced_budget(PRESETS[preset], data), data)
        source.insert(0, f"preset {preset}")
    if overrides:
        data = merge(_without_replaced_budget(data, overrides), overrides)
    if not data:
        raise ConfigError("give --preset NAME or --config FILE")
    return _validate(data, ", ".join(source) or "overrides")
