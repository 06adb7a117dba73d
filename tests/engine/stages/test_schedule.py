"""engine.stages.schedule: the learning-rate policies of the teacher, supernet and fine-tuning."""

import torch

from engine.config import load_config
from engine.stages.schedule import lr_schedule


def test_step_schedule_halves_the_rate_every_lr_decay_steps():
    recipe = load_config(overrides={"family": "munit", "dataset": {"path": "d"},
                                    "recipe": {"lr_decay_steps": 3, "teacher_lr_decay_steps": 2}}).resolved_recipe
    rates = {}
    for stage in ("supernet", "teacher"):
        optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
        schedule = lr_schedule(optimizer, 100, recipe, stage)
        rates[stage] = []
        for _ in range(7):
            rates[stage].append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            schedule.step()
    assert rates["supernet"] == [1e-4 * 0.5 ** (k // 3) for k in range(7)]
    assert rates["teacher"] == [1e-4 * 0.5 ** (k // 2) for k in range(7)]
