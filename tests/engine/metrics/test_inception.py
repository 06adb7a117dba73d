import torch

from engine.metrics import resolve_extractor
from engine.metrics.inception import FIDInceptionV3, find_weights, load_fid_inception

# Names and shapes of pytorch-fid's pt_inception-2015-12-05 weights (torchvision's InceptionV3 layout,
# 1008 classes, no auxiliary head).
KNOWN = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_1a_3x3.bn.running_var": (32,),
    "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
    "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
    "fc.weight": (1008, 2048),
}


def test_layout_matches_the_fid_weights():
    state = FIDInceptionV3().state_dict()
    for key, shape in KNOWN.items():
        assert tuple(state[key].shape) == shape, key
    assert not any("AuxLogits" in k for k in state)
    # torchvision's InceptionV3 without the auxiliary head has 23,834,568 parameters for 1000 classes;
    # 8 more classes add 8 x 2049.
    assert sum(p.numel() for p in FIDInceptionV3().parameters()) == 23_834_568 + 8 * 2049


def test_weights_file_loads_strictly_even_without_batch_counters(tmp_path):
    reference = FIDInceptionV3()
    state = {k: torch.randn_like(v, dtype=torch.float32) if v.is_floating_point() else v
             for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")}
    state = {k: (v.abs() + 0.5 if k.endswith("running_var") else v) for k, v in state.items()}
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, path)
    model = load_fid_inception(path)
    assert torch.equal(model.Mixed_7c.branch_pool.conv.weight, state["Mixed_7c.branch_pool.conv.weight"])
    assert not model.training
    assert model(torch.rand(2, 3, 32, 32) * 2 - 1).shape == (2, 2048)


def test_weights_are_found_at_the_setting_the_environment_or_the_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert find_weights() is None
    hub_file = tmp_path / "torch" / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth"
    hub_file.parent.mkdir(parents=True)
    hub_file.write_bytes(b"x")
    assert find_weights() == hub_file
    env_file = tmp_path / "env.pth"
    env_file.write_bytes(b"x")
    monkeypatch.setenv("GCW_INCEPTION_WEIGHTS", str(env_file))
    assert find_weights() == env_file
    setting = tmp_path / "setting.pth"
    setting.write_bytes(b"x")
    assert find_weights(setting) == setting


def test_without_weights_fid_falls_back_to_a_labelled_metric_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    warnings = []
    name, extractor = resolve_extractor("fid", None, "cpu", warnings.append)
    assert name == "rfid" and extractor.name == "random"
    assert len(warnings) == 1 and "Inception weights for FID not found" in warnings[0]
    assert "not comparable with published FID" in warnings[0]


def test_with_weights_fid_is_fid(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(FIDInceptionV3().state_dict(), path)
    warnings = []
    name, extractor = resolve_extractor("fid", path, "cpu", warnings.append)
    assert (name, extractor.name, warnings) == ("fid", "inception", [])
