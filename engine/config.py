"""A compression run's configuration: one validated model, from a preset, a YAML file or both.

``python main.py compress --preset NAME`` or ``--config run.yaml``; a YAML file may name a
``preset`` and override any of its values.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.errors import ConfigError
from engine.files import missing

STAGES = ("teacher", "supernet", "search", "finetune", "export")


def device_name(value: str, allow_auto: bool = False) -> str:
    """A device a run can name: cpu, cuda or cuda:N, and where allowed ``auto`` (CUDA where available, else
    the CPU); whether this machine has it is checked before a run."""
    if allow_auto and value == "auto":
        return value
    if not re.fullmatch(r"cpu|cuda(:\d+)?", value):
        raise ValueError(f"must be {'auto, ' if allow_auto else ''}cpu, cuda or cuda:N (N: the GPU's index), "
                         f"not {value!r}")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_empty_paths(cls, data: Any) -> Any:
        # Path("") is the current folder: an empty setting would silently read (or write) wherever the command ran.
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                value = data.get(name)
                if "Path" in str(field.annotation) and isinstance(value, str) and not value.strip():
                    raise ValueError(f"{name} is an empty path: give the file or folder, or leave {name} out")
        return data


class DatasetSpec(_Model):
    """A built-in sample (``sample``) or a folder of the user's (``path`` and ``layout``)."""

    sample: str | None = None
    sample_size: int = Field(64, ge=16)
    sample_train: int = Field(200, ge=1)
    sample_test: int = Field(50, ge=1)
    path: Path | None = None
    layout: Literal["aligned", "unaligned", "auto"] = "auto"
    direction: Literal["AtoB", "BtoA"] = "AtoB"
    #: Images of the training split held out from training and used to score search candidates (the family's
    #: default is the reference's: 200 for GauGAN, 2048 for MUNIT).
    search_images: int = Field(32, ge=2)
    #: Which training images are held out: ``last`` (the last ``search_images`` of the sorted list: this program's
    #: default, so earlier runs keep their split) or ``random`` (a draw across the whole training folder seeded by
    #: the run's seed, as the reference draws its held-out images: on Cityscapes ``last`` holds out whole cities).
    search_split: Literal["last", "random"] = "last"
    #: A file of the held-out images' names, one a line (the reference's ``datasets/metas/*.meta``); it replaces
    #: ``search_split`` and ``search_images``.
    search_list: Path | None = None
    #: The real images a search FID compares with: ``family`` (its default: CycleGAN every real domain-B image,
    #: MUNIT the training set's, pix2pix and GauGAN the held-out images' own targets) or ``train`` (the training
    #: set's targets, at least as many as the held-out images: the reference's ``*_subtrain_*.npz``).
    search_statistics: Literal["family", "train"] = "family"
    #: Test images used for the final metrics (at most this many); None: the whole test split, as the
    #: reference scores (FID is biased upward on few images, so a smaller number is off the paper's scale).
    test_images: int | None = Field(None, ge=2)

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSpec:
        if (self.sample is None) == (self.path is None):
            raise ValueError("give either dataset.sample (a built-in sample) or dataset.path (your folder)")
        return self


#: The most training steps a stage may be given: 50x the paper's longest (MUNIT's 1.9M supernet iterations); a
#: larger number is a typo (1.0e+12) that would otherwise run for centuries without a word.
MAX_STEPS = 100_000_000


class TeacherSpec(_Model):
    """``checkpoint``: a generator to import (pytorch-CycleGAN-and-pix2pix or gan-compression format);
    without one, the teacher is trained here for ``steps`` steps. Its architecture is the ``model``
    section (the family's options)."""

    checkpoint: Path | None = None
    discriminator_checkpoint: Path | None = None
    steps: int = Field(2000, ge=0, le=MAX_STEPS)
    lr: float = Field(2e-4, gt=0)


class DistillSpec(_Model):
    steps: int = Field(2000, ge=1, le=MAX_STEPS)
    lr: float = Field(2e-4, gt=0)
    #: Width choices per arch position; default: the family's search space.
    search_space: list[list[int]] | None = None


class RecipeSpec(_Model):
    """``recipe:`` of a run: ``base`` (``workbench`` starts from this project's earlier choices, sandwich sampling,
    the teacher's discriminator, constant learning rates..., instead of the reference's) and the knobs of the run's
    family's recipe to change. Each family's recipe model (``engine.families``) is the schema of its knobs: they are
    checked against it, by name, type and bounds, when the configuration is validated (``resolved_recipe``), so a
    knob of another family is refused by name and this module defines its schema without importing any family."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    base: Literal["reference", "workbench"] = "reference"


#: The MACs budget a run gets when it names none: the teacher's MACs over this (this program's default; the
#: paper's experiments each have their own, in engine/paper_presets.py). Its one home.
DEFAULT_TARGET_RATIO = 10.0


class SearchSpec(_Model):
    method: Literal["auto", "evolution", "exhaustive"] = "auto"
    macs_budget: float | None = Field(None, gt=0, description="MACs at the run's image size")
    target_ratio: float | None = Field(None, gt=1, description="teacher MACs / student MACs at least this")
    #: Predicted milliseconds of one image at the run's size (batch 1) on ``latency_device`` with
    #: ``latency_backend``, from a per-layer latency table measured once on this machine and cached in the
    #: workspace (``engine.latency_table``). Alone it replaces the MACs budget; with ``macs_budget`` or
    #: ``target_ratio`` a candidate must meet both.
    latency_budget_ms: float | None = Field(None, gt=0, description="predicted ms per image at the run's size")
    #: At least this many times faster than the teacher, both measured end to end with ``latency_backend`` on
    #: this machine (what holds across machines, where milliseconds do not). With ``latency_budget_ms`` a
    #: candidate must meet both.
    speedup_budget: float | None = Field(None, gt=1, description="times faster than the teacher, measured")
    #: How a latency budget is decided: ``measured``: candidates the table puts within ``latency_margin`` of it
    #: are measured end to end (interleaved with a fixed reference network, kept per sub-network) and judged on
    #: that; ``predicted``: on the table's prediction alone (faster, off by about 30% in OpenVINO).
    latency_decision: Literal["measured", "predicted"] = "measured"
    latency_margin: float = Field(0.5, ge=0, description="measure candidates predicted up to this much over the budget")
    #: Which candidates a measured budget measures: ``kept``: those the search would keep (the best so far, a
    #: parent), in order of score once scored, the others judged by the pre-filter alone (a few measurements per
    #: generation); ``drawn``: every candidate the pre-filter passes, before it is scored. Both keep the best
    #: candidate measured within the budget.
    measure: Literal["kept", "drawn"] = "kept"
    #: Predict every candidate's latency even without a latency budget (the Pareto view then plots the
    #: metric against it too); implied by ``latency_budget_ms``.
    predict_latency: bool = False
    latency_device: str = Field("cpu", description="cpu, cuda or cuda:N: where the latency table is measured")
    #: The runtime whose end-to-end timings calibrate the table: PyTorch, or a deployment runtime on the CPU.
    latency_backend: Literal["pytorch", "onnxruntime", "openvino"] = "pytorch"
    #: Sub-networks measured end to end to map the table's layer sums to whole-network latency.
    latency_calibration_nets: int = Field(24, ge=2)
    exhaustive_limit: int = Field(2000, ge=1)
    #: Where the metric's feature network runs (FID's InceptionV3, rFID's CNN): ``auto`` is OpenVINO f32 on the
    #: CPU where it is installed and matches PyTorch on the run's real images (checked as the run starts),
    #: PyTorch otherwise; ``pytorch`` forces PyTorch. Used for every score of the run (search and test).
    #: The same setting decides where the search generates each candidate's images
    #: (``engine.stages.generation``): with ``auto`` in OpenVINO where it gives PyTorch's images and is faster
    #: for the split as timed on a probe when the search starts, with ``openvino`` wherever it is exact.
    scoring_backend: Literal["auto", "openvino", "pytorch"] = "auto"
    population: int = Field(100, ge=2)
    generations: int = Field(500, ge=1)
    #: The evolution's random draws (None: the run's ``seed``): another seed searches the same supernet again
    #: from another first population, to see how much the chosen student owes to the draw.
    seed: int | None = Field(None, ge=0, le=2**32 - 1)

    def evolution_seed(self, run_seed: int) -> int:
        return run_seed if self.seed is None else self.seed

    @model_validator(mode="after")
    def _one_budget(self) -> SearchSpec:
        if self.macs_budget is not None and self.target_ratio is not None:
            raise ValueError("give search.macs_budget or search.target_ratio, not both")
        if self.speedup_budget is not None and self.latency_decision == "predicted":
            raise ValueError("search.speedup_budget is measured (the teacher and each candidate end to end); it "
                             "needs search.latency_decision: measured")
        if self.latency_backend != "pytorch" and self.latency_device != "cpu":
            raise ValueError(f"search.latency_backend {self.latency_backend} is measured on the CPU "
                             "(latency_device: cpu)")
        return self

    _device_name = field_validator("latency_device")(classmethod(lambda cls, value: device_name(value)))

    @property
    def limits_latency(self) -> bool:
        """A latency budget of any kind: milliseconds or a speed-up over the teacher."""
        return self.latency_budget_ms is not None or self.speedup_budget is not None

    @property
    def measures_latency(self) -> bool:
        """The latency budget is decided on measurements (``engine.measured_budget``)."""
        return self.limits_latency and self.latency_decision == "measured"

    @property
    def predicts_latency(self) -> bool:
        return self.predict_latency or self.limits_latency

    @property
    def ratio(self) -> float:
        """The target ratio a MACs budget is resolved from (this program's default where none is given)."""
        return self.target_ratio if self.target_ratio is not None else DEFAULT_TARGET_RATIO

    @property
    def limits_macs(self) -> bool:
        """Whether candidates are held to a MACs budget (with a latency budget alone, they are not)."""
        return not self.limits_latency or self.macs_budget is not None or self.target_ratio is not None


class SegmentationSpec(_Model):
    """A segmentation network for the mIoU metric (label-map families): an ONNX file taking (N, 3, H, W)
    images in [-1, 1] and giving per-pixel class scores, and its class list (the dataset's label id of each
    output class; a list or a JSON file; default: output k is label id k)."""

    onnx: str
    classes: list[int] | str | None = None
    #: Where mIoU is counted: ``full``, the label maps' own resolution (the network's class scores resized
    #: bilinearly to it, as the reference scores Cityscapes at 2048x1024); ``run``, the run's image size against
    #: the label maps as the run reads them (nearest-resized), cheaper for large test splits.
    resolution: Literal["full", "run"] = "full"


class FinetuneSpec(_Model):
    steps: int = Field(500, ge=0, le=MAX_STEPS, description="0 skips fine-tuning")
    lr: float = Field(2e-4, gt=0)
    #: Score the student on the search split every this many steps (0: only before and after), recorded as
    #: the series ``search_<metric>``: it shows whether fine-tuning helps and when.
    eval_every: int = Field(0, ge=0)


class ExportSpec(_Model):
    #: Faster forms of the ONNX student written beside it (``engine.onnx_variants``): ``optimized`` (ONNX
    #: Runtime's graph optimisations saved, exact), ``int8`` (static quantisation, quality measured),
    #: ``openvino`` (the model in OpenVINO's format, exact), ``openvino_bf16`` and ``openvino_int8`` (quality
    #: measured). A variant this machine cannot build (no OpenVINO, no bf16 instructions) is skipped with the reason.
    variants: list[Literal["optimized", "int8", "openvino", "openvino_bf16", "openvino_int8"]] = [
        "optimized", "int8", "openvino", "openvino_bf16", "openvino_int8"]
    calibration_images: int = Field(32, ge=1, description="search-split images that calibrate INT8 ranges")
    #: OpenVINO's INT8 variant by NNCF's accuracy-controlled quantisation: the layers whose quantisation costs the
    #: run's metric most on the search split are kept in f32 until the metric worsens by at most
    #: ``int8_max_drop`` (relative: 0.01 is 1%). Off: plain post-training quantisation, its metric reported.
    int8_accuracy_control: bool = True
    int8_max_drop: float = Field(0.01, ge=0, lt=1, description="largest relative worsening of the metric for INT8")
    #: How many groups of layers accuracy control may try in f32 before it stops with what it has (each costs
    #: one evaluation of the metric on the search split); the variant says whether the drop was met.
    int8_max_iterations: int = Field(8, ge=1, description="groups of layers INT8 accuracy control tries at most")
    #: How long accuracy control may run before it stops and plain post-training quantisation is kept (said so in
    #: the variant): ranking a network's layers compiles the model once per group of them.
    int8_time_cap_s: float = Field(300.0, gt=0, description="seconds INT8 accuracy control may run")
    #: NNCF's preset for it: ``mixed`` quantises activations asymmetrically (closer to the float student: 35.9 and
    #: 36.4 dB on the shipped generators against 34.4 and 32.4), ``performance`` symmetrically (a little faster).
    int8_preset: Literal["mixed", "performance"] = "mixed"
    #: The latency protocol's rounds stop once every median has settled, or after this long per measurement.
    latency_time_cap_s: float = Field(20.0, gt=0, description="seconds of interleaved timing rounds at most")
    #: Also time teacher and student compiled with ``torch.compile`` (1.4x faster than eager for the released
    #: CycleGAN student in benchmarks/export_speed.py; compiling takes minutes on a CPU, so it is asked for).
    torch_compile: bool = False


#: Settings that moved: earlier configurations (and runs in a store) are read with them in their new place.
_MOVED = {("teacher", "ngf"): ("model", "ngf"), ("teacher", "n_blocks"): ("model", "n_blocks"),
          ("teacher", "norm"): ("model", "norm"), ("supernet", "lambda_recon"): ("recipe", "lambda_recon"),
          ("supernet", "lambda_distill"): ("recipe", "lambda_distill"),
          ("supernet", "lambda_gan"): ("recipe", "lambda_gan"), ("search", "parent_ratio"): ("recipe", "parent_ratio"),
          ("search", "mutation_ratio"): ("recipe", "mutation_ratio"),
          ("search", "mutation_prob"): ("recipe", "mutation_prob"), (None, "gan_mode"): ("recipe", "gan_mode")}


def _move_settings(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    for (section, key), (new_section, new_key) in _MOVED.items():
        source = data if section is None else data.get(section)
        if not isinstance(source, dict) or key not in source:
            continue
        source = dict(source)
        value = source.pop(key)
        if section is None:
            data = source
        else:
            data[section] = source
        target = data.get(new_section)
        target = dict(target) if isinstance(target, dict) else {}
        if value is not None:
            target.setdefault(new_key, value)
        data[new_section] = target
    return data


def check_image_size(size: tuple[int, int], given: Any) -> None:
    """The sizes every generator here accepts (``profile`` refuses what ``compress`` would)."""
    for side in size:
        if side < 16 or side % 4:
            raise ValueError(f"image sides must be multiples of 4 and at least 16 (two stride-2 downsamplings), "
                             f"not {given}")


def parse_image_size(value: Any) -> tuple[int, int]:
    """``256`` or ``"256"`` (square) or ``"512x256"`` (width x height) as (height, width)."""
    if isinstance(value, bool):
        raise ValueError(f"an image size is N or WxH, not {value!r}")
    if isinstance(value, int):
        return value, value
    text = str(value).strip().lower()
    try:
        if "x" in text:
            width, height = (int(part) for part in text.split("x"))
            return height, width
        return int(text), int(text)
    except ValueError:
        raise ValueError(f"an image size is N or WxH (e.g. 512x256), not {value!r}") from None


class RunConfig(_Model):
    name: str = "run"
    #: A registered family (``engine.families``); ``python main.py profile --help`` lists them.
    family: str
    #: The family's model options (for the ResNet families: ngf, n_blocks, norm, input_nc, output_nc).
    model: dict[str, Any] = Field(default_factory=dict)
    dataset: DatasetSpec
    #: Square side (``256``) or ``WxH`` (``512x256``); both multiples of 4.
    image_size: int | str = 64
    batch_size: int = Field(1, ge=1)
    #: Side of the square random crops that training sees (default: the image size). Generators are
    #: fully convolutional, so a run can train on small crops and be scored and shown at full size.
    train_crop: int | None = Field(None, ge=16)
    teacher: TeacherSpec = TeacherSpec()
    supernet: DistillSpec = DistillSpec()
    search: SearchSpec = SearchSpec(target_ratio=DEFAULT_TARGET_RATIO)
    finetune: FinetuneSpec = FinetuneSpec()
    export: ExportSpec = ExportSpec()
    recipe: RecipeSpec = RecipeSpec()
    metric: Literal["fid", "rfid", "psnr", "miou"] = "fid"
    #: The segmentation network behind ``miou`` (also reported beside FID when given).
    segmentation: SegmentationSpec | None = None
    #: Seeds torch, NumPy and Python's random: torch takes 64-bit seeds, NumPy 32-bit ones (checked here, not
    #: as an overflow inside a run).
    seed: int = Field(0, ge=0, le=2**32 - 1)
    #: ``auto``: CUDA where this machine has a usable GPU, else the CPU (said in the run's log and summary).
    device: str = "auto"
    checkpoint_interval_s: float = Field(120.0, gt=0)
    log_every: int = Field(10, ge=1)
    threads: int | None = Field(None, ge=1)
    #: The paper preset this run follows (``engine.paper_presets``; set by ``--preset paper-...``): its summary
    #: and card say "paper protocol" when it departs from it in nothing, and list every departure otherwise.
    protocol: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _moved_settings(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return with_family_defaults(_move_settings(data))

    _device_name = field_validator("device")(classmethod(lambda cls, value: device_name(value, allow_auto=True)))

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        # A run's name becomes file names (launch files, exports): it must stay inside the folder it is written to.
        if not value.strip() or value.strip() in (".", "..") or any(c in value for c in '/\\\0') \
                or Path(value).is_absolute() or re.match(r"^[A-Za-z]:", value):
            raise ValueError(f"a run's name is a plain name (no '/', '\\', '..' or drive), not {value!r}")
        return value

    @field_validator("image_size")
    @classmethod
    def _multiple_of_4(cls, value: int | str) -> int | str:
        check_image_size(parse_image_size(value), value)
        return value

    @field_validator("train_crop")
    @classmethod
    def _crop_multiple_of_4(cls, value: int | None) -> int | None:
        if value is not None and value % 4:
            raise ValueError(f"train_crop must be a multiple of 4, not {value}")
        return value

    @field_validator("family")
    @classmethod
    def _registered_family(cls, value: str) -> str:
        from engine.families import FAMILIES

        if value not in FAMILIES:
            raise ValueError(f"unknown family {value!r}; registered: {', '.join(FAMILIES.names())}")
        return value

    @model_validator(mode="after")
    def _fits_the_family(self) -> RunConfig:
        from engine.families.base import check_image_size as check_family_image_size

        family = self.family_impl
        options = family.options(self.model)  # raises with the field to fix
        if self.supernet.search_space is not None:
            family.search_space(options, self.supernet.search_space)
        self.resolved_recipe  # noqa: B018  (validates the overrides)
        check_family_image_size(family, options, self.size_hw)
        if self.train_crop is not None and self.train_crop > min(self.size_hw):
            raise ValueError(f"train_crop ({self.train_crop}) must not exceed the image size ({self.image_size})")
        if self.metric not in family.metrics:
            reason = "it has no label maps to segment" if self.metric == "miou" else "it has no ground truth"
            raise ValueError(f"metric {self.metric} is not available for {family.name} ({reason}); "
                             f"choose one of {', '.join(family.metrics)}")
        if self.metric == "miou" and self.segmentation is None:
            raise ValueError("metric miou needs a segmentation network: set segmentation.onnx to an ONNX file taking "
                             "(N, 3, H, W) images in [-1, 1] and giving per-pixel class scores, and "
                             "segmentation.classes to its class list (the label id of each output class)")
        if self.segmentation is not None and "miou" not in family.metrics:
            raise ValueError(f"segmentation is set, but {family.name} has no label maps to score it against")
        return self

    @property
    def family_impl(self):
        from engine.families import get_family

        return get_family(self.family)

    @property
    def options(self):
        return self.family_impl.options(self.model)

    @property
    def size_hw(self) -> tuple[int, int]:
        return parse_image_size(self.image_size)

    @property
    def resolved_recipe(self):
        family = self.family_impl
        overrides = self.recipe.model_dump(exclude={"base"}, exclude_none=True)
        foreign = sorted(set(overrides) - set(family.recipe_model.model_fields))
        if foreign:
            from engine.families import FAMILIES

            def owners(knob: str) -> str:
                names = [n for n in FAMILIES.names() if knob in FAMILIES.get(n).recipe_model.model_fields]
                return f"it is {' and '.join(names)}'s" if names else "no family has it"

            raise ConfigError("; ".join(f"recipe.{knob} is not a setting of {family.name}'s recipe ({owners(knob)}): "
                                        "remove it" for knob in foreign)
                              + f" (its settings: {', '.join(family.recipe_model.model_fields)})")
        base = family.default_recipe if self.recipe.base == "reference" else family.workbench_recipe
        return base.with_overrides(overrides)

    @property
    def recipe_card(self) -> dict[str, Any]:
        """The resolved recipe as the summary and model cards record it (with the base it started from)."""
        return {"base": self.recipe.base, **self.resolved_recipe.as_dict()}

    def search_space(self) -> list[tuple[int, ...]]:
        return self.family_impl.search_space(self.options, self.supernet.search_space)

    def shape_settings(self) -> dict[str, Any]:
        """The settings the shapes of the run's networks follow (model options, search space), flat: saved beside
        its weights, so that a file that no longer fits says which of them changed."""
        return {**{f"model.{k}": v for k, v in self.options.model_dump(mode="json").items()},
                "supernet.search_space": [list(choices) for choices in self.search_space()]}

    @property
    def protocol_name(self) -> str | None:
        """The paper preset this run is compared with: its own ``protocol``, else its family's first (None for a
        family the paper has no experiment of)."""
        from engine.paper_presets import PAPER_PRESETS

        if self.protocol is not None:
            return self.protocol
        return next((name for name, preset in PAPER_PRESETS.items() if preset.family == self.family), None)

    def protocol_settings(self) -> dict[str, Any]:
        """Every setting the paper protocol is judged on, flat (``supernet.steps``), with the family's model
        options and recipe resolved: where the data sits, the teacher's file, the run's name and the machine's
        settings (device, threads, checkpointing, export forms, the scoring backend) are not part of it."""
        values = {**leaves(self.model_dump(mode="json", exclude={"recipe", "model"})),
                  **{f"model.{k}": v for k, v in self.options.model_dump(mode="json").items()},
                  **{f"recipe.{k}": v for k, v in self.resolved_recipe.as_dict().items()}}
        return {name: value for name, value in values.items() if not name.startswith(PROTOCOL_EXEMPT)}

    @property
    def departures(self) -> dict[str, dict[str, Any]]:
        """Where this run leaves the paper's protocol for its experiment (``protocol_name``): each setting of any
        kind with this run's value and the protocol's, for the summary and the model card (``{}``: the paper
        protocol)."""
        name = self.protocol_name
        if name is None:
            return {}
        reference = load_config(name).protocol_settings()
        ours = self.protocol_settings()
        return {key: {"run": ours.get(key), "reference": reference.get(key)}
                for key in sorted(set(reference) | set(ours)) if ours.get(key) != reference.get(key)}


#: Settings that are not the paper's protocol: where things are on this machine and how it runs them.
PROTOCOL_EXEMPT = ("name", "protocol", "dataset.path", "dataset.search_list", "dataset.layout",
                   "dataset.sample_", "teacher.checkpoint", "teacher.discriminator_checkpoint", "segmentation.onnx",
                   "export.", "device", "threads", "checkpoint_interval_s", "log_every", "search.scoring_backend",
                   "search.latency_", "search.measure", "search.predict_latency", "search.exhaustive_limit",
                   # The reference fixes no seed of its own: a draw is not a departure.
                   "search.seed")


def family_defaults(family: Any) -> dict[str, Any]:
    """The run settings whose default differs for a registered family (``Family.run_defaults``); {} for another."""
    from engine.families import FAMILIES

    return FAMILIES.get(family).run_defaults if isinstance(family, str) and family in FAMILIES else {}


def with_family_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` over its family's defaults: what a run, a preset or a file leaves unset takes the family's."""
    return merge(family_defaults(data.get("family")), data)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override``'s values, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        merged[key] = merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


# Teachers with ngf 32 keep the sample presets within minutes on a 2-core CPU; the student search space
# goes down to a quarter of the teacher's widths.
_SAMPLE_PRESET: dict[str, Any] = {
    "dataset": {"search_images": 40, "test_images": 50},
    "image_size": 64, "batch_size": 4,
    "model": {"ngf": 32, "n_blocks": 9},
    "supernet": {"steps": 900, "search_space": [[32, 24, 16, 8]] * 8},
    "search": {"method": "auto", "target_ratio": DEFAULT_TARGET_RATIO, "population": 24, "generations": 4},
    "finetune": {"steps": 200}, "checkpoint_interval_s": 60,
}


def _presets() -> dict[str, dict[str, Any]]:
    from engine.families import FAMILIES

    presets = {}
    for family_name in FAMILIES.names():
        for name, settings in FAMILIES.get(family_name).sample_presets.items():
            # A family with other model options than the common base's replaces them whole.
            base = {k: v for k, v in _SAMPLE_PRESET.items() if k != "model" or "model" not in settings}
            presets[name] = merge(base, {"name": name, "family": family_name, **settings})
    from engine.paper_presets import PAPER_PRESETS, preset_settings

    presets.update({name: preset_settings(preset) for name, preset in PAPER_PRESETS.items()})
    return presets


class _Presets(Mapping[str, dict[str, Any]]):
    """The built-in presets, gathered from the families and the paper's experiments the first time they are read:
    importing the configuration imports no family (each family's schema is its own: ``RecipeSpec``)."""

    def __init__(self) -> None:
        self._built: dict[str, dict[str, Any]] | None = None

    def _all(self) -> dict[str, dict[str, Any]]:
        if self._built is None:
            self._built = _presets()
        return self._built

    def __getitem__(self, name: str) -> dict[str, Any]:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


class _SamplePresets(Sequence[str]):
    """The names of the presets that bring their own data, sorted, read from ``PRESETS`` when first used."""

    def __init__(self) -> None:
        self._found: list[str] | None = None

    def _names(self) -> list[str]:
        if self._found is None:  # once: iterating asks for every index
            self._found = sorted(name for name, preset in PRESETS.items() if "sample" in preset["dataset"])
        return self._found

    def __getitem__(self, index):  # type: ignore[override]
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return repr(tuple(self._names()))


#: The built-in presets: the samples, each declared by its family (``Family.sample_presets``), and the paper's
#: experiments (``engine.paper_presets``).
PRESETS: Mapping[str, dict[str, Any]] = _Presets()
#: The presets that bring their own data (a built-in sample), for minutes on a CPU.
SAMPLE_PRESETS: Sequence[str] = _SamplePresets()


def default_preset() -> str:
    """The first of the presets by name: the new-run dialog's first choice (read when asked, as the presets are)."""
    return sorted(PRESETS)[0]


def _without_replaced_budget(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A budget given as MACs replaces a base's target ratio, and the other way round; a latency budget replaces
    both (unless given with it)."""
    given = override.get("search") if isinstance(override.get("search"), dict) else {}
    search = dict(base.get("search", {}))
    for key, others in (("macs_budget", ("target_ratio",)), ("target_ratio", ("macs_budget",)),
                        ("latency_budget_ms", ("target_ratio", "macs_budget"))):
        for other in others:
            if given.get(key) is not None and other not in given:
                search.pop(other, None)
    return {**base, "search": search} if "search" in base else base


def _validate(data: dict[str, Any], source: str) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        fields = [(".".join(str(p) for p in e["loc"]) or "config", e["msg"].removeprefix("Value error, "))
                  for e in exc.errors()]
        problems = "; ".join(f"{field}: {message}" for field, message in fields)
        raise ConfigError(f"invalid run configuration ({source}): {problems}", fields) from None


def leaves(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested mapping's values (an empty mapping and a list are values)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        flat.update(leaves(value, name) if isinstance(value, dict) and value else {name: value})
    return flat


def resolved_settings(config: RunConfig) -> dict[str, Any]:
    """Every setting of a run as it will run: the configuration with the family's model options and recipe
    filled in (each field, the family's defaults where unset)."""
    data = config.model_dump(mode="json")
    data["model"] = config.options.model_dump(mode="json")
    data["recipe"] = config.recipe_card
    return data


#: Defaults this program gives every family where the paper's experiments each have their own (the paper-*
#: presets set them): its lengths and its budget.
GENERIC_DEFAULTS = frozenset({"supernet.steps", "finetune.steps", "teacher.steps", "search.target_ratio",
                              "dataset.search_images", "dataset.search_split"})


def explain_config(preset: str | None = None, path: Path | None = None, overrides: dict[str, Any] | None = None,
                   family: str | None = None) -> tuple[RunConfig, dict[str, Any], dict[str, str]]:
    """``python main.py config``: the run configuration these would give, every setting resolved, and where
    each came from: ``override``, the file, the preset, ``family default`` (the family's model options, recipe
    and run defaults: the reference's) or ``default``. ``family`` alone shows a family's defaults on a
    placeholder dataset."""
    if family is not None and preset is None and path is None:
        overrides = merge({"family": family, "dataset": {"path": "path/to/your/dataset"}}, overrides or {})
    layers = config_layers(preset, path, overrides)
    if family is not None and preset is None and path is None:
        layers = [("--family", layer) for _, layer in layers]
    config = _validate(_merged(layers), _where(layers))
    settings = resolved_settings(config)
    given = {name: source for source, layer in layers for name in leaves(_move_settings(layer))}
    family_impl = config.family_impl
    from_family = set(leaves(family_impl.run_defaults)) | {f"model.{k}" for k in family_impl.options_model.model_fields}
    from_family |= {f"recipe.{k}" for k in type(family_impl.default_recipe).model_fields}
    sources = {}
    for name in leaves(settings):
        parts = name.split(".")
        source = next((given[".".join(parts[:i])] for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in given),
                      None)
        sources[name] = source or ("family default" if name in from_family else
                                   "this program's default, not the paper's" if name in GENERIC_DEFAULTS else "default")
    return config, settings, sources


def config_lines(settings: dict[str, Any], sources: dict[str, str]) -> list[str]:
    """``explain_config``'s result as aligned lines ``name  value  (source)``, one per setting."""
    import json

    flat = leaves(settings)
    shown = {name: value if isinstance(value, str) else json.dumps(value) for name, value in flat.items()}
    width = max(len(name) for name in flat)
    value_width = min(40, max(len(text) for text in shown.values()))
    return [f"{name:<{width}}  {text:<{value_width}}  ({sources[name]})" for name, text in shown.items()]


#: Byte-order marks and the encodings they name (UTF-32 before UTF-16: its little-endian mark starts with UTF-16's).
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def config_text(path: Path) -> str:
    """A configuration file's text: UTF-8, or whatever encoding its byte-order mark names (Windows PowerShell's
    ``>`` writes UTF-16 with one); anything else is refused in one line naming the file and what to save it as."""
    data = path.read_bytes()
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not {encoding.upper().replace('-SIG', '')} text (byte 0x{data[exc.start]:02x} at position "
            f"{exc.start} cannot be read; it may be Latin-1 or another legacy encoding): save it as UTF-8 (in an "
            "editor's 'Save with encoding', or PowerShell: Get-Content run.yaml | Set-Content -Encoding utf8 "
            "run-utf8.yaml)") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps the last silently: a second
    ``teacher:`` block would drop the first's settings without a word)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(f"{self.name}: {key!r} is given twice (lines {seen[key]} and {line}); the second "
                                  "would replace the first: keep one (merge their settings)")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def config_layers(preset: str | None = None, path: Path | None = None,
                  overrides: dict[str, Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The layers a run's configuration is made of, lowest first, each named by where it comes from: the preset
    (the file's own ``preset:`` wins over ``preset``), the file (relative paths made relative to it), the
    overrides. ``load_config`` merges them; ``explain_config`` says which layer each setting came from."""
    layers: list[tuple[str, dict[str, Any]]] = []
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(missing(path, "config file"))
        try:
            loader = _UniqueKeyLoader(config_text(path))
            loader.name = str(path)  # named in its messages (else "<unicode string>")
            try:
                loaded = loader.get_single_data() or {}
            finally:
                loader.dispose()
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping of settings, not {type(loaded).__name__}")
        preset = loaded.pop("preset", None) or preset
        # Relative dataset and checkpoint paths are relative to the config file.
        for section, key in (("dataset", "path"), ("dataset", "search_list"), ("teacher", "checkpoint"),
                             ("teacher", "discriminator_checkpoint")):
            value = loaded.get(section, {}).get(key) if isinstance(loaded.get(section), dict) else None
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{path}: {section}.{key} must be a path (text), not {value!r}")
            if value and value.strip() and not Path(value).expanduser().is_absolute():  # blank: refused by its field
                loaded[section][key] = str((path.parent / value).resolve())
        layers.append((str(path), loaded))
    if preset is not None:
        if not isinstance(preset, str):
            raise ConfigError(f"preset must be one name, not {preset!r}; choose one of: {', '.join(sorted(PRESETS))}")
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(sorted(PRESETS))}")
        layers.insert(0, (f"preset {preset}", PRESETS[preset]))
    if overrides:
        layers.append(("override", overrides))
    if not layers:
        raise ConfigError("give --preset NAME or --config FILE")
    return layers


def _merged(layers: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The layers merged, each over the ones below; a budget of one kind replaces another's (a ratio a MACs
    budget, and so on)."""
    data: dict[str, Any] = {}
    for _, layer in layers:
        layer = _move_settings(layer)
        data = merge(_without_replaced_budget(data, layer), layer)
    return data


def load_config(preset: str | None = None, path: Path | None = None,
                overrides: dict[str, Any] | None = None) -> RunConfig:
    layers = config_layers(preset, path, overrides)
    return _validate(_merged(layers), _where(layers))


def _where(layers: list[tuple[str, dict[str, Any]]]) -> str:
    """Where a configuration came from, for its error messages."""
    return ", ".join(name for name, _ in layers if name not in ("override", "--family")) or "overrides"
