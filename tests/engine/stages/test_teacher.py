import pytest
import torch

from engine.errors import UserError
from engine.stages.teacher import build_teacher, generator_state, load_into
from tests.engine.models.reference_checkpoints import reference_resnet_state
from tests.engine.stages.tiny import tiny_config


def test_checkpoint_formats_all_yield_the_generator_state(tmp_path):
    state = reference_resnet_state(ngf=8, n_blocks=3)
    old_instance_norm = {**state, "model.2.running_mean": torch.zeros(8), "model.2.running_var": torch.ones(8)}
    for raw in (state, {"netG": state}, {"G": {f"module.{k}": v for k, v in state.items()}}, old_instance_norm):
        assert generator_state(raw, tmp_path / "x.pth").keys() == state.keys()
    with pytest.raises(UserError, match="holds no generator weights.*found keys epoch, optimizer"):
        generator_state({"epoch": 3, "optimizer": {"lr": 1}}, tmp_path / "x.pth")


def test_a_checkpoint_of_another_architecture_says_which_settings_to_change(tmp_path):
    config = tiny_config("pix2pix")
    state = reference_resnet_state(ngf=16, n_blocks=3)
    with pytest.raises(UserError, match=r"does not fit the pix2pix teacher generator \(ngf 8, 3 blocks.*teacher\.ngf"):
        load_into(build_teacher(config), state, tmp_path / "x.pth", "teacher generator", config)
