"""The teachers shipped for the sample presets (``resources/teachers``) load strictly into the preset's
architecture and reproduce the output stored when they were trained
(``packaging/train_sample_teachers.py``)."""

from pathlib import Path

import pytest
import torch

from engine import checkpoints
from engine.config import PRESETS, SAMPLE_PRESETS, load_config
from engine.families.shipped import shipped_teacher_provenance
from engine.stages.resources import build_teacher

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


SHIPPED = sorted(name for name in SAMPLE_PRESETS if PRESETS[name]["teacher"].get("checkpoint"))


def test_every_sample_preset_ships_its_teacher():
    # so that a sample run spends its minutes on compression
    assert SHIPPED == sorted(SAMPLE_PRESETS)


@pytest.mark.parametrize("preset", SHIPPED)
def test_shipped_teacher_loads_strictly_and_reproduces_its_stored_output(preset):
    config = load_config(preset)
    path = Path(config.teacher.checkpoint)
    assert path.is_file(), f"{preset} ships its teacher at {path}"
    family = config.family_impl
    teacher = build_teacher(config).eval()
    teacher.load_state_dict(family.teacher_state(checkpoints.load(path), path, config.options), strict=True)
    check = torch.load(FIXTURES / f"{path.stem}-teacher-check.pt", weights_only=True)
    with torch.no_grad():
        out = teacher(check["input"], *check.get("conditioning", ()))
    # The float order of deep networks' reductions differs between CPUs (their kernels block the sums
    # differently): SPADE's 8 blocks at 128 px moved its outputs by 5.0e-5 on an AMD EPYC against the fixture's
    # machine, with 1 and 2 threads alike (the others by under 2e-6). 1e-3 bounds that with a 20x margin; a wrong
    # or missing weight moves outputs in [-1, 1] by tenths.
    torch.testing.assert_close(out, check["output"], rtol=0, atol=1e-3)
    assert path.stat().st_size < 15e6  # shipped in the wheel: keep it small


@pytest.mark.parametrize("preset", SHIPPED)
def test_a_shipped_teacher_names_its_training_config_and_command(preset, tmp_path):
    path = Path(load_config(preset).teacher.checkpoint)
    provenance = shipped_teacher_provenance(path)
    assert provenance == {"training_config": f"resources/teachers/{path.stem}.yaml",
                          "retrain": f"python packaging/train_sample_teachers.py {path.stem}"}
    # A user's checkpoint of the same name elsewhere is not the shipped one.
    elsewhere = tmp_path / path.name
    elsewhere.write_bytes(path.read_bytes())
    assert shipped_teacher_provenance(elsewhere) is None
