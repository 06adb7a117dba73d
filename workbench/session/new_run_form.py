"""What the new-run dialog's fields hold, as plain data: filled from a preset, turned into the run's configuration
overrides, and checked for what only the form knows (a name already taken, a dataset folder, a teacher file).
Every other rule is the engine's pre-flight. Qt-free, so the dialog only draws it and reads it back."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from engine.api import DEFAULT_TARGET_RATIO, FAMILIES, SAMPLES, Problem, RunConfig, detect_layout, load_config
from engine.errors import ConfigError, UserError

Budget = Literal["ratio", "macs", "latency"]


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name-2``, ``name-3``… the first that no run has yet."""
    if name not in taken:
        return name
    number = 2
    while f"{name}-{number}" in taken:
        number += 1
    return f"{name}-{number}"


@dataclass(frozen=True)
class NewRunForm:
    preset: str
    name: str
    family: str
    sample: str | None  # a built-in sample, or None: the dataset ``folder``
    folder: str = ""
    teacher_steps: int = 0
    teacher_checkpoint: str | None = None  # None: the teacher is trained here
    budget: Budget = "ratio"
    ratio: float = DEFAULT_TARGET_RATIO
    macs_millions: float = 100.0
    latency_ms: float = 50.0
    latency_device: str = "cpu"
    latency_backend: str = "pytorch"
    supernet_steps: int = 1
    finetune_steps: int = 0
    search_method: str = "auto"
    population: int = 100
    generations: int = 500
    exhaustive_limit: int = 2000
    search_seed: int = -1  # -1: the run's own seed (search.seed unset)
    image_size: str = "256"
    train_crop: int = 0  # 0: whole images
    batch_size: int = 1
    metric: str = "fid"
    segmentation: str = ""
    segmentation_classes: str = ""
    device: str = "auto"
    model: dict[str, Any] = field(default_factory=dict)
    #: How many processes (torchrun) on how many machines run it: not the configuration's, the launch's.
    processes: int = 1
    machines: int = 1

    @classmethod
    def from_preset(cls, preset: str, taken_names: set[str] = frozenset()) -> NewRunForm:  # type: ignore[assignment]
        """The preset's values, its name made unique among ``taken_names``."""
        config = load_config(preset)
        search = config.search
        budget: Budget = ("macs" if search.macs_budget is not None else
                          "latency" if search.latency_budget_ms is not None and search.target_ratio is None else "ratio")
        return cls(
            preset=preset, name=unique_name(config.name, set(taken_names)), family=config.family,
            sample=config.dataset.sample, folder=str(config.dataset.path or ""), teacher_steps=config.teacher.steps,
            budget=budget, macs_millions=(search.macs_budget or 100e6) / 1e6,
            latency_ms=search.latency_budget_ms or 50.0, latency_device=search.latency_device,
            latency_backend=search.latency_backend, device=config.device,
            teacher_checkpoint=str(config.teacher.checkpoint) if config.teacher.checkpoint else None,
            ratio=config.search.ratio, supernet_steps=config.supernet.steps,
            finetune_steps=config.finetune.steps, search_method=config.search.method,
            population=config.search.population, generations=config.search.generations,
            exhaustive_limit=config.search.exhaustive_limit,
            search_seed=-1 if config.search.seed is None else config.search.seed, image_size=str(config.image_size),
            train_crop=config.train_crop or 0, batch_size=config.batch_size, metric=config.metric,
            segmentation=config.segmentation.onnx if config.segmentation else "", model=dict(config.model))

    def with_(self, **changes: Any) -> NewRunForm:
        return replace(self, **changes)

    def overrides(self) -> dict[str, Any]:
        """The form as overrides of its preset (every field the form shows, so none is left to the preset)."""
        dataset: dict[str, Any] = ({"sample": self.sample, "path": None} if self.sample is not None else
                                   {"sample": None, "path": self.folder.strip() or None, "layout": "auto"})
        search: dict[str, Any] = {"target_ratio": None, "macs_budget": None, "latency_budget_ms": None,
                                  "method": self.search_method, "population": self.population,
                                  "generations": self.generations, "exhaustive_limit": self.exhaustive_limit,
                                  "seed": None if self.search_seed < 0 else self.search_seed}
        if self.budget == "ratio":
            search["target_ratio"] = self.ratio
        elif self.budget == "macs":
            search["macs_budget"] = self.macs_millions * 1e6
        else:
            search.update(latency_budget_ms=self.latency_ms, latency_device=self.latency_device,
                          latency_backend=self.latency_backend)
        size = self.image_size.strip()
        return {"name": self.name.strip(), "family": self.family, "dataset": dataset, "model": dict(self.model),
                "teacher": {"steps": self.teacher_steps,
                            "checkpoint": (self.teacher_checkpoint or "").strip() if self.teacher_checkpoint is not None
                            else None},
                "search": search, "supernet": {"steps": self.supernet_steps},
                "finetune": {"steps": self.finetune_steps}, "image_size": int(size) if size.isdigit() else size,
                "train_crop": self.train_crop or None, "batch_size": self.batch_size, "metric": self.metric,
                "segmentation": self.segmentation_spec(), "device": self.device}

    def segmentation_spec(self) -> dict[str, Any] | None:
        onnx = self.segmentation.strip()
        if not onnx or "miou" not in FAMILIES.get(self.family).metrics:
            return None
        return {"onnx": onnx, "classes": self.segmentation_classes.strip() or None}

    def dataset_layout(self) -> str | None:
        """The layout of the chosen dataset (a sample's, or the folder's as detected), or None if unknown."""
        if self.sample is not None:
            return SAMPLES.get(self.sample).layout
        folder = self.folder.strip()
        if not folder:
            return None
        try:
            return detect_layout(Path(folder).expanduser())
        except UserError:
            return None

    def own_problems(self, taken_names: set[str]) -> list[Problem]:
        """What only the form can tell: the name, the dataset folder, the teacher checkpoint."""
        return [*self.name_problems(taken_names), *self.file_problems()]

    def name_problems(self, taken_names: set[str]) -> list[Problem]:
        """The run's name: given, and not taken (nothing read from the disk)."""
        name = self.name.strip()
        if not name:
            return [Problem("name", "give the run a name")]
        if name in taken_names:
            return [Problem("name", f"a run is named {name!r} already; choose another name "
                                    f"(e.g. {unique_name(name, taken_names)})")]
        return []

    def file_problems(self) -> list[Problem]:
        """The dataset folder and the teacher checkpoint, as the disk has them (a listing and a stat: the window
        asks this off its GUI thread: ``new_run_state.run_check``)."""
        problems = []
        if self.sample is None:
            folder = self.folder.strip()
            if not folder:
                problems.append(Problem("dataset.path", "choose a dataset folder"))
            else:
                try:
                    layout = detect_layout(Path(folder).expanduser())
                except UserError as exc:
                    problems.append(Problem("dataset.path", str(exc)))
                else:
                    family = FAMILIES.get(self.family)
                    if layout != family.dataset_layout:
                        problems.append(Problem("dataset.path", f"{family.name} needs an {family.dataset_layout} "
                                                                f"dataset; this folder is {layout}"))
        if self.teacher_checkpoint is not None:
            path = self.teacher_checkpoint.strip()
            if not path:
                problems.append(Problem("teacher.checkpoint", "choose the teacher checkpoint, or train one here"))
            elif not Path(path).expanduser().is_file():
                problems.append(Problem("teacher.checkpoint", f"teacher checkpoint not found: {path}"))
        return problems

    def config(self) -> tuple[RunConfig | None, list[Problem]]:
        """The run's configuration (its preset with the form's values), or the configuration's error."""
        overrides = self.overrides()
        try:
            return load_config(self.preset, overrides={**overrides, "name": overrides["name"] or "run"}), []
        except ConfigError as exc:
            if exc.fields:  # each beside its field (where the form has one; the rest at the bottom)
                return None, [Problem(field, f"{field}: {message}") for field, message in exc.fields]
            return None, [Problem("", str(exc))]
        except UserError as exc:
            return None, [Problem("", str(exc))]
