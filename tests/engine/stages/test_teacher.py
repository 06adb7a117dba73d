import pytest
import torch

from engine.errors import UserError
from engine.families import get_family
from engine.families.weights import load_strict, unwrap_state_dict
from engine.stages.resources import build_teacher
from tests.engine.models.reference_checkpoints import reference_resnet_state
from tests.engine.stages.tiny import tiny_config


def test_checkpoint_formats_all_yield_the_generator_state(tmp_path):
    family = get_family("pix2pix")
    options = family.options({"ngf": 8, "n_blocks": 3})
    state = reference_resnet_state(ngf=8, n_blocks=3)
    old_instance_norm = {**state, "model.2.running_mean": torch.zeros(8), "model.2.running_var": torch.ones(8)}
    for raw in (state, {"netG": state}, {"G": {f"module.{k}": v for k, v in state.items()}}, old_instance_norm):
        assert family.teacher_state(raw, tmp_path / "x.pth", options).keys() == state.keys()
    with pytest.raises(UserError, match="holds no generator weights.*found keys epoch, optimizer"):
        unwrap_state_dict({"epoch": 3, "optimizer": {"lr": 1}}, tmp_path / "x.pth")


def test_a_checkpoint_of_another_architecture_says_which_settings_to_change(tmp_path):
    config = tiny_config("pix2pix")
    family = config.family_impl
    state = reference_resnet_state(ngf=16, n_blocks=3)
    with pytest.raises(UserError, match=r"does not fit the pix2pix ResNet teacher \(ngf 8, 3 blocks.*model\.ngf"):
        load_strict(build_teacher(config), family.teacher_state(state, tmp_path / "x.pth", config.options),
                    tmp_path / "x.pth", family.describe_teacher(config.options), "Set model.ngf")
