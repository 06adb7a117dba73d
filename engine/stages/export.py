"""Stage ``export``: the chosen student as ONNX, checked in ONNX Runtime against PyTorch on real test
inputs (the stage fails above a max |difference| of 1e-3), teacher vs student metrics on the test set,
CPU latency per backend, a grid of input | teacher | student | |difference|, and a model card."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from engine.export import export_checked, export_onnx, measure_teacher_and_student
from engine.families.capabilities import column_title, display_conditioning, display_input, export_input_names
from engine.model_card import protocol_of, build_model_card, weights_of
from engine.panels import compose, difference_levels, grid_panels, scale_top, with_legend
from engine.metrics import psnr
from engine.onnx_variants import build_variants, skipped_variants, variant_outputs
from engine.openvino_int8 import AccuracyControl, QuantisationStopped
from engine.profile import profile_model
from engine.stages.context import Cancelled, StageContext
from engine.stages.data import RunData
from engine.stages.evaluate import Scorer, generate, make_scorer
from engine.stages.resources import load_student, load_teacher

GRID_ROWS = 8
#: The export's parts, as progress: test-split metrics, the grid, the ONNX files, the variants, the timing.
PARTS = 5
CARD = "model_card.json"


def save_grid(path, columns: tuple[str, ...], inputs: torch.Tensor, teacher: torch.Tensor, student: torch.Tensor,
              targets: torch.Tensor | None = None, conditioning: list[torch.Tensor] | None = None) -> None:
    """Rows of the family's compare columns (input | ground truth or conditioning | teacher | student | difference), the
    difference on the compare view's colour scale (``engine.panels``), from 0 to the rows' 99th percentile."""
    rows = min(GRID_ROWS, len(inputs))
    panels = grid_panels(inputs[:rows], teacher[:rows], student[:rows],
                         None if targets is None else targets[:rows],
                         None if not conditioning else torch.stack(conditioning[:rows]))
    top = scale_top(difference_levels(teacher[:rows], student[:rows]))
    Image.fromarray(with_legend(compose(columns, panels), columns, panels, top)).save(path)


def _conditioning_tiles(family, options, conditioning: tuple[torch.Tensor, ...], size) -> list[torch.Tensor] | None:
    """The first grid rows' conditioning as pictures (``Conditioned.display_conditioning``), or None."""
    if not conditioning:
        return None
    tiles = [display_conditioning(family, tuple(c[i:i + 1] for c in conditioning), options, size)
             for i in range(min(GRID_ROWS, len(conditioning[0])))]
    return None if any(t is None for t in tiles) else [t[0] for t in tiles]


def _predicted_latency(search: dict[str, Any], measured: dict[str, float]) -> dict[str, Any] | None:
    """The latency table's prediction for the chosen student (searches that predicted latency), beside the
    time measured here where the conditions are the same (the CPU, the backend, the thread count)."""
    if search.get("latency_ms") is None or not search.get("latency"):
        return None
    conditions = search["latency"]
    predicted = {"ms": search["latency_ms"], **conditions}
    if conditions["device"] == "cpu" and conditions["threads"] == torch.get_num_threads() \
            and conditions["backend"] in measured:
        actual = measured[conditions["backend"]]
        predicted["measured_ms"] = actual
        predicted["error"] = (search["latency_ms"] - actual) / actual
    return predicted


def _variants(ctx: StageContext, data: RunData, onnx_path: Path, student: nn.Module,
              scorer) -> dict[str, dict[str, Any]]:
    """The run's ONNX variants of the student, each checked against the float student on the test split
    (INT8 also scored with the run's metrics there), calibrated on search-split images."""
    config, family = ctx.config, ctx.config.family_impl
    names = tuple(config.export.variants)
    if not names:
        return {}
    ctx.message(f"export: ONNX variants {', '.join(names)}")
    options, count = config.options, config.export.calibration_images
    input_names = export_input_names(family, options)
    # INT8 ranges from search-split inputs (with their conditioning), checked on the test split's.
    calibration = data.feed(family, options, "search", count)
    test_feed = data.feed(family, options, "test")
    float_out = generate(student, test_feed[0], torch.device("cpu"), test_feed[1:])
    try:
        variants = build_variants(onnx_path, names, tuple(t.cpu().numpy() for t in calibration),
                                  tuple(t.cpu().numpy() for t in test_feed), float_out.numpy(), config.threads,
                                  input_names, _int8_control(ctx, data) if "openvino_int8" in names else None,
                                  config.export.int8_preset)
    except QuantisationStopped as exc:
        raise Cancelled(f"export {exc}; resume with: python main.py resume {ctx.run_id}") from None
    feed = {n: t.cpu().numpy() for n, t in zip(input_names, test_feed)}
    registered: set[str] = set()
    for name, variant in variants.items():
        if not variant["exact"]:
            outputs = variant_outputs(variant, feed, config.threads)
            variant["metrics"], variant["metrics_split"] = scorer.all(torch.from_numpy(outputs)), "test"
        if variant["path"] not in registered:  # bf16 is a hint on the OpenVINO model, not a file of its own
            registered.add(variant["path"])
            ctx.artifact(Path(variant["path"]), f"onnx_{name}" if variant["backend"] == "onnxruntime" else name)
        control = variant.get("control")
        if control and control.get("within_drop") is False:
            ctx.message(f"export: INT8 accuracy control did not bring {control['metric']} within "
                        f"{100 * control['max_drop']:g}% of the float student's ({control['float']:.4g} float, "
                        f"{control['int8']:.4g} INT8 on the search split"
                        + (f"; stopped at its time cap of {control['stopped_after_s']:g} s"
                           if control.get("stopped_after_s") else "")
                        + "); raise export.int8_max_iterations, export.int8_time_cap_s or export.int8_max_drop, or "
                        "use the f32 OpenVINO model", level="warning")
        if not variant["usable"]:
            ctx.message(f"export: the {name} variant is outside its tolerance ({variant['tolerance']}): "
                        f"{variant['check']}; use the float student.onnx", level="warning")
    return variants


def _int8_control(ctx: StageContext, data: RunData) -> AccuracyControl | None:
    """OpenVINO's INT8 quantisation kept within ``export.int8_max_drop`` of the float student's metric on the
    search split (held-out training images: the test split stays unseen by every choice the run makes)."""
    spec = ctx.config.export
    if not spec.int8_accuracy_control:
        return None
    family, options = ctx.config.family_impl, ctx.config.options
    scorer = make_scorer(ctx, data, "search")
    inputs = tuple(t.cpu().numpy() for t in data.feed(family, options, "search"))
    return AccuracyControl(scorer.metric, scorer.higher_is_better,
                           lambda outputs: scorer.primary(torch.from_numpy(outputs)), inputs, spec.int8_max_drop,
                           spec.int8_max_iterations, spec.int8_time_cap_s, stop_requested=ctx.cancel_requested)


@dataclass
class Exported:
    """What the export's steps found, for the summary and the model card."""

    scorer: Scorer
    teacher_metrics: dict[str, float]
    student_metrics: dict[str, float]
    grid: Path
    onnx_path: Path
    parity: Any
    variants: dict[str, dict[str, Any]]
    skipped: dict[str, str]
    readings: dict[str, Any]
    profiles: dict[str, Any]


def _score_and_draw(ctx: StageContext, data: RunData, teacher: nn.Module, student: nn.Module) -> tuple:
    """Teacher and student on the test split: their metrics, and the grid of input | teacher | student."""
    family, options = ctx.config.family_impl, ctx.config.options
    scorer = make_scorer(ctx, data, "test")
    teacher_out = generate(teacher, data.test_inputs, ctx.device, data.test_conditioning)
    student_out = generate(student, data.test_inputs, ctx.device, data.test_conditioning)
    teacher_metrics = scorer.all(teacher_out)
    student_metrics = {**scorer.all(student_out), "psnr_to_teacher": psnr(student_out, teacher_out)}
    ctx.progress(1, PARTS)
    grid = ctx.stage_dir / "grid.png"
    save_grid(grid, family.compare_columns, display_input(family, data.test_inputs, options), teacher_out, student_out,
              data.test_targets, _conditioning_tiles(family, options, data.test_conditioning, ctx.config.size_hw))
    ctx.artifact(grid, "comparison_grid")
    ctx.progress(2, PARTS)
    return scorer, teacher_metrics, student_metrics, grid


def _files_and_latency(ctx: StageContext, data: RunData, teacher: nn.Module, student: nn.Module,
                       scorer: Scorer) -> tuple:
    """The ONNX files (checked against PyTorch), the faster variants, and both models timed interleaved."""
    config, family, options = ctx.config, ctx.config.family_impl, ctx.config.options
    names = (export_input_names(family, options), family.output_names)
    feed = data.feed(family, options, "test", 8)
    onnx_path, parity = export_checked(student, ctx.stage_dir / "student.onnx", feed, config.threads, *names)
    ctx.artifact(onnx_path, "onnx")
    teacher_onnx = export_onnx(teacher, ctx.stage_dir / "teacher.onnx", tuple(t[:1] for t in feed), *names)
    ctx.progress(3, PARTS)
    variants = _variants(ctx, data, onnx_path, student, scorer)
    skipped = skipped_variants(tuple(config.export.variants))
    for name, reason in skipped.items():
        ctx.message(f"export: no {name} variant: {reason}", level="warning")
    ctx.progress(4, PARTS)
    ctx.message("export: measuring teacher and student latency (interleaved; PyTorch, then ONNX Runtime"
                + (" and OpenVINO)" if "openvino" in variants else ")"))
    readings = measure_teacher_and_student(teacher, student, teacher_onnx, onnx_path, tuple(t[:1].cpu() for t in feed),
                                           variants=variants, threads=config.threads, input_names=names[0],
                                           time_cap_s=config.export.latency_time_cap_s,
                                           compiled=config.export.torch_compile)
    ctx.progress(5, PARTS)
    return onnx_path, parity, variants, skipped, readings


def run(ctx: StageContext, data: RunData) -> dict[str, Any]:
    """Its parts, as progress: test-split outputs and metrics, the grid, the ONNX files, the variants, the timing;
    then the summary and the model card."""
    teacher, _ = load_teacher(ctx)
    student = load_student(ctx)
    ctx.begin(PARTS)
    scorer, teacher_metrics, student_metrics, grid = _score_and_draw(ctx, data, teacher, student)
    student, teacher = student.cpu().eval(), teacher.cpu().eval()
    onnx_path, parity, variants, skipped, readings = _files_and_latency(ctx, data, teacher, student, scorer)
    example = ctx.config.family_impl.example_inputs(ctx.config.options, ctx.config.size_hw)
    profiles = {name: profile_model(net, example) for name, net in (("teacher", teacher), ("student", student))}
    exported = Exported(scorer, teacher_metrics, student_metrics, grid, onnx_path, parity, variants, skipped,
                        readings, profiles)
    summary = _summary(ctx, exported)
    _write_card(ctx, data, exported, summary)
    return summary


def _summary(ctx: StageContext, found: Exported) -> dict[str, Any]:
    """The run's result: teacher against student on the test split, the files, the latency readings, how the
    search went, the recipe and how the run stands to its paper experiment."""
    config, family = ctx.config, ctx.config.family_impl
    search, finetune, profiles = ctx.result("search"), ctx.result("finetune"), found.profiles
    latency = {name: {backend: reading.timings[name].median_ms for backend, reading in found.readings.items()}
               for name in ("teacher", "student")}
    return {
        "run_id": ctx.run_id,
        "teacher": {**profiles["teacher"].as_dict(), "metrics": found.teacher_metrics, "latency_ms": latency["teacher"]},
        "student": {**profiles["student"].as_dict(), "arch": search["arch"], "metrics": found.student_metrics,
                    "latency_ms": latency["student"],
                    # In words: "weights" is the key of a run's weight files (recorded relative to its folder).
                    "weights_used": weights_of(False, finetune)},
        "macs_ratio": profiles["teacher"].macs / profiles["student"].macs,
        "metric": found.scorer.metric,
        "metric_notes": found.scorer.notes,
        "metrics_split": "test",
        "image_size": config.image_size,
        # Where the run trained and searched (``device: auto`` resolved); the latency readings are the CPU's.
        "run_device": str(ctx.device),
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "latency": {backend: reading.as_dict() for backend, reading in found.readings.items()},
        "onnx_path": str(found.onnx_path),
        "onnx_variants": found.variants,
        "onnx_variants_skipped": found.skipped,
        "onnx_max_abs_diff": found.parity.max_abs_diff,
        "model_card_path": str(ctx.stage_dir / CARD),
        "grid_path": str(found.grid),
        "grid_columns": [column_title(family, c) for c in family.compare_columns],
        "predicted_latency": _predicted_latency(search, latency["student"]),
        "search": {k: search.get(k) for k in ("method", "scored", "reused", "seconds", "candidates_per_second", "budget_macs",
                                              "latency_budget_ms", "scoring_backend", "set_up_ahead", "latency_decision",
                                              "latency_measured", "measurements")},
        "finetune": {k: finetune[k] for k in ("before", "after", "kept", "steps")},
        "recipe": config.recipe_card,
        "protocol": protocol_of(config),
    }


def _write_card(ctx: StageContext, data: RunData, found: Exported, summary: dict[str, Any]) -> None:
    config, search, finetune = ctx.config, ctx.result("search"), ctx.result("finetune")
    teacher_result, card_path = ctx.result("teacher"), ctx.stage_dir / CARD
    build_model_card(config, arch=search["arch"], weights=weights_of(False, finetune), profile=found.profiles["student"],
                     readings=found.readings, onnx_path=found.onnx_path, parity=found.parity, variants=found.variants,
                     source_run={"id": ctx.run_id, "name": config.name, "dataset": str(data.root)},
                     metrics=found.student_metrics, metric=found.scorer.metric,
                     teacher={"macs": found.profiles["teacher"].macs, "params": found.profiles["teacher"].params,
                              "metrics": found.teacher_metrics, "source": teacher_result.get("source"),
                              "shipped": teacher_result.get("shipped")},
                     predicted_latency=summary["predicted_latency"],
                     measured_latency=search.get("latency_measured")).write(card_path)
    ctx.artifact(card_path, "model_card")


