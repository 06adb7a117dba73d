"""MUNIT through the plug-in interface beyond what every family shares (tests/engine/families/test_families.py):
the checkpoint layouts users bring, the style code as a second input everywhere, and a tiny run end to end."""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.panels import LEGEND_HEIGHT
from engine.arch import Arch
from engine.families import get_family
from engine.models.munit import MUNITGenerator
from engine.families.capabilities import export_feed, export_input_names, inherit_from_teacher

FAMILY = get_family("munit")
TINY = FAMILY.options({"ngf": 8, "mlp_dim": 16, "student_mlp_dim": 16})


def _nvlabs_generator(seed: int) -> dict[str, torch.Tensor]:
    """A generator in NVlabs/MUNIT's layout: its AdaIN layers also hold (unused) running statistics."""
    torch.manual_seed(seed)
    state = MUNITGenerator(3, 8, style_dim=8, mlp_dim=16).state_dict()
    for index in range(4):
        for conv in range(2):
            prefix = f"dec.model.0.model.{index}.model.{conv}.norm"
            state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"] = torch.zeros(32), torch.ones(32)
    return state


def test_the_supernet_can_start_from_the_teachers_reading_of_a_style_code():
    from engine.errors import ConfigError

    teacher = FAMILY.build_teacher(TINY)
    space = FAMILY.default_search_space(TINY)
    fresh = FAMILY.build_supernet(TINY, space)
    before = [p.clone() for p in fresh.mlp.parameters()]
    assert inherit_from_teacher(FAMILY, fresh, teacher, TINY) is None  # the reference's start: untouched
    assert all(torch.equal(a, b) for a, b in zip(before, fresh.mlp.parameters()))
    options = FAMILY.options({**TINY.model_dump(), "student_style_mlp": "teacher"})
    supernet = FAMILY.build_supernet(options, space)
    last = supernet.mlp.model[2].fc.weight.clone()
    assert "teacher" in inherit_from_teacher(FAMILY, supernet, teacher, options)
    for index in (0, 1):
        assert torch.equal(supernet.mlp.model[index].fc.weight, teacher.mlp.model[index].fc.weight)
        assert torch.equal(supernet.mlp.model[index].fc.bias, teacher.mlp.model[index].fc.bias)
    assert torch.equal(supernet.mlp.model[2].fc.weight, last)  # the AdaIN layer is at the student's widths
    with pytest.raises((ConfigError, ValueError), match="student_mlp_dim"):
        FAMILY.options({**TINY.model_dump(), "student_style_mlp": "teacher", "student_mlp_dim": 32})


def test_nvlabs_pair_of_generators_becomes_the_a_to_b_teacher(tmp_path):
    gen_a, gen_b = _nvlabs_generator(1), _nvlabs_generator(2)
    state = FAMILY.teacher_state({"a": gen_a, "b": gen_b}, tmp_path / "gen_00100000.pt", TINY)
    teacher = FAMILY.build_teacher(TINY)
    teacher.load_state_dict(state, strict=True)
    # A's content encoder, B's style encoder, decoder and MLP: A -> B.
    torch.testing.assert_close(teacher.enc_content.model[0].conv.weight, gen_a["enc_content.model.0.conv.weight"])
    torch.testing.assert_close(teacher.dec.model[5].conv.weight, gen_b["dec.model.5.conv.weight"])
    torch.testing.assert_close(teacher.enc_style.model[6].weight, gen_b["enc_style.model.6.weight"])
    torch.testing.assert_close(teacher.mlp.model[2].fc.weight, gen_b["mlp.model.2.fc.weight"])


def test_one_generator_loads_plain_or_nested_and_one_without_style_encoder_is_refused(tmp_path):
    torch.manual_seed(0)
    own = MUNITGenerator(3, 8, style_dim=8, mlp_dim=16).state_dict()
    teacher = FAMILY.build_teacher(TINY)
    teacher.load_state_dict(FAMILY.teacher_state(own, tmp_path / "G.pth", TINY), strict=True)
    teacher.load_state_dict(FAMILY.teacher_state({"netG": own}, tmp_path / "G.pth", TINY), strict=True)
    without = {k: v for k, v in own.items() if not k.startswith("enc_style.")}
    with pytest.raises(Exception, match="no style encoder"):
        FAMILY.teacher_state(without, tmp_path / "G.pth", TINY)


def test_the_seeded_style_codes_are_the_same_for_every_caller_and_change_the_image():
    first, again = FAMILY.conditioning(TINY, 3, seed=5), FAMILY.conditioning(TINY, 3, seed=5)
    torch.testing.assert_close(first[0], again[0], rtol=0, atol=0)
    assert first[0].shape == (3, 8, 1, 1)
    teacher = FAMILY.build_teacher(TINY).eval()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        a = teacher(x, FAMILY.conditioning(TINY, 1, seed=1)[0])
        b = teacher(x, FAMILY.conditioning(TINY, 1, seed=2)[0])
    assert (a - b).abs().mean() > 1e-3
    shown = FAMILY.display_conditioning((first[0][:1],), TINY, (64, 64))
    assert shown.shape == (1, 3, 64, 64) and shown.min() >= -1 and shown.max() <= 1


def test_without_its_style_encoder_the_student_takes_a_code_and_its_macs_leave_the_encoder_out():
    options = FAMILY.options({**TINY.model_dump(), "style_encoder": False})
    arch = Arch((8,) * 10)
    assert export_input_names(FAMILY, options) == ("input", "style")
    assert export_input_names(FAMILY, TINY) == ("input", "style_image")
    assert FAMILY.macs(arch, options, (64, 64)) < FAMILY.macs(arch, TINY, (64, 64))
    student = FAMILY.build_student(options, arch)
    assert student.enc_style is None
    codes = FAMILY.conditioning(options, 2, 0)
    assert export_feed(FAMILY, options, torch.zeros(2, 3, 64, 64), codes, torch.zeros(2, 3, 64, 64))[1] is codes[0]


@pytest.mark.slow
def test_a_tiny_munit_run_end_to_end(finished_munit):
    _, store, run_id, summary = finished_munit
    assert summary["student"]["macs"] * 1.5 <= summary["teacher"]["macs"]
    assert summary["onnx_max_abs_diff"] <= 1e-3
    card = json.loads(Path(summary["model_card_path"]).read_text())
    assert card["inputs"] == ["input", "style_image"]
    grid = Image.open(Path(summary["onnx_path"]).parent / "grid.png")
    assert grid.size == (5 * 64, 4 * 64 + LEGEND_HEIGHT)  # content | style | teacher | student | difference
    for loss in ("G_recon", "G_distill", "G_style", "D_real"):
        assert store.metric_series(run_id, "supernet", loss), loss
