"""Stage ``export``: the chosen student as ONNX, checked in ONNX Runtime against PyTorch on real test
inputs (the stage fails above a max |difference| of 1e-3), teacher vs student metrics on the test set,
CPU latency per backend, a grid of input | teacher | student | |difference|, and a model card."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import torch

from engine import __version__
from engine.data.images import to_image
from engine.export import cpu_latency_ms, export_checked, export_onnx, write_model_card
from engine.metrics import psnr
from engine.profile import profile_model
from engine.stages.context import StageContext
from engine.stages.data import RunData
from engine.stages.evaluate import generate, make_scorer
from engine.stages.finetune import load_student
from engine.stages.teacher import load_teacher

GRID_ROWS = 8


def save_grid(path, inputs: torch.Tensor, teacher: torch.Tensor, student: torch.Tensor) -> None:
    """Rows of input | teacher | student | |teacher - student| (the difference amplified 4x)."""
    rows = []
    for x, t, s in zip(inputs[:GRID_ROWS], teacher[:GRID_ROWS], student[:GRID_ROWS]):
        diff = ((t - s).abs().mean(0, keepdim=True) * 4 - 1).clamp(-1, 1).repeat(3, 1, 1)
        tiles = [x if x.shape[0] == 3 else x.repeat(3, 1, 1), t, s, diff]
        rows.append(torch.cat(tiles, dim=2))
    to_image(torch.cat(rows, dim=1)).save(path)


def run(ctx: StageContext, data: RunData) -> dict[str, Any]:
    config, size = ctx.config, ctx.config.image_size
    teacher, _ = load_teacher(ctx)
    student = load_student(ctx)
    search = ctx.result("search")
    finetune = ctx.result("finetune")

    scorer = make_scorer(ctx, data, "test")
    teacher_out = generate(teacher, data.test_inputs, ctx.device)
    student_out = generate(student, data.test_inputs, ctx.device)
    teacher_metrics = scorer.all(teacher_out)
    student_metrics = {**scorer.all(student_out), "psnr_to_teacher": psnr(student_out, teacher_out)}

    grid = ctx.stage_dir / "grid.png"
    save_grid(grid, data.test_inputs, teacher_out, student_out)
    ctx.artifact(grid, "comparison_grid")

    student_cpu, teacher_cpu = student.cpu().eval(), teacher.cpu().eval()
    onnx_path, parity = export_checked(student_cpu, ctx.stage_dir / "student.onnx", data.test_inputs[:8],
                                       config.threads)
    ctx.artifact(onnx_path, "onnx")
    teacher_onnx = export_onnx(teacher_cpu, ctx.stage_dir / "teacher.onnx", data.test_inputs[:1])

    example = data.test_inputs[:1].cpu()
    latency = {"teacher": cpu_latency_ms(teacher_cpu, teacher_onnx, example, config.threads),
               "student": cpu_latency_ms(student_cpu, onnx_path, example, config.threads)}
    profiles = {"teacher": profile_model(teacher_cpu, (1, 3, size, size)),
                "student": profile_model(student_cpu, (1, 3, size, size))}
    card_path = ctx.stage_dir / "model_card.json"
    summary = {
        "run_id": ctx.run_id,
        "teacher": {**profiles["teacher"].as_dict(), "metrics": teacher_metrics, "latency_ms": latency["teacher"]},
        "student": {**profiles["student"].as_dict(), "arch": search["arch"], "metrics": student_metrics,
                    "latency_ms": latency["student"]},
        "macs_ratio": profiles["teacher"].macs / profiles["student"].macs,
        "metric": scorer.metric,
        "image_size": size,
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "onnx_path": str(onnx_path),
        "onnx_max_abs_diff": parity.max_abs_diff,
        "model_card_path": str(card_path),
        "grid_path": str(grid),
        "search": {k: search[k] for k in ("method", "scored", "reused", "seconds", "candidates_per_second", "budget_macs")},
        "finetune": {k: finetune[k] for k in ("before", "after", "kept", "steps")},
    }
    write_model_card(card_path, {
        "family": config.family, "arch": search["arch"], "image_size": size,
        "macs": profiles["student"].macs, "params": profiles["student"].params,
        "metric": {scorer.metric: student_metrics[scorer.metric]}, "metrics": student_metrics,
        "teacher": {"macs": profiles["teacher"].macs, "params": profiles["teacher"].params, "metrics": teacher_metrics},
        "latency_ms": latency["student"], "latency_device": "cpu", "onnx": onnx_path.name,
        "onnx_opset": 17, "onnx_max_abs_diff": parity.max_abs_diff,
        "source_run": {"id": ctx.run_id, "name": config.name, "dataset": str(data.root)},
        "created": datetime.now(timezone.utc).isoformat(), "workbench_version": __version__,
    })
    ctx.artifact(card_path, "model_card")
    return summary


