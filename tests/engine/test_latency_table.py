"""The latency table's mechanics (its accuracy is measured by benchmarks/latency_table.py, not here)."""

import random

import torch

from engine import latency_table
from engine.arch import Arch
from engine.families import FAMILIES
from engine.latency_table import LatencyTable, cached_table, layer_key, layer_shapes, random_archs

SPACE = [(4, 8)] * 8


def _family():
    family = FAMILIES.get("cyclegan")
    return family, family.options_model(ngf=8, n_blocks=3)


def test_the_layers_are_found_on_the_meta_device_with_the_shapes_a_real_pass_sees():
    family, options = _family()
    net = family.build_student(options, Arch((8, 4, 8, 4, 8, 4, 8, 4))).eval()
    example = family.example_inputs(options, (32, 32))
    real = []
    hooks = [m.register_forward_pre_hook(lambda m, i: real.append((m, tuple(i[0].shape))))
             for m in net.modules() if not list(m.children())]
    with torch.no_grad():
        net(*example)
    for hook in hooks:
        hook.remove()
    found = layer_shapes(net, example)
    assert [(id(m), s) for m, s in found] == [(id(m), s) for m, s in real]
    assert next(p for p in net.parameters()).device.type == "cpu"  # the net itself is untouched
    assert "Conv2d(" in layer_key(*found[1]) and "@ 1x" in layer_key(*found[1])


def test_a_table_is_built_cached_and_predicts_any_sub_network(tmp_path, monkeypatch):
    monkeypatch.setattr(latency_table, "LAYER_RUNS", 2)
    monkeypatch.setattr(latency_table, "LAYER_WARMUP", 1)
    monkeypatch.setattr(latency_table, "measured_ms", lambda net, example, device: 1.0 + sum(
        p.numel() for p in net.parameters()) / 1e6)  # a stand-in for the timing protocol
    family, options = _family()
    example = family.example_inputs(options, (32, 32))

    def build(arch):
        return family.build_student(options, arch)

    table, path = cached_table(tmp_path, "cyclegan", options.model_dump_json(), build, example, SPACE,
                               calibration_nets=4)
    assert path.is_file() and len(table.calibration) == 4 and table.layers
    assert table.calibration[0]["arch"] == str(Arch.smallest(SPACE))
    known = len(table.layers)
    unseen = Arch((8, 8, 8, 4, 4, 4, 8, 8))
    assert table.predict(build(unseen), example) > 0
    assert len(table.layers) >= known  # layers met for the first time are timed and kept
    again, _ = cached_table(tmp_path, "cyclegan", options.model_dump_json(), build, example, SPACE)
    assert again.layers.keys() <= table.layers.keys() and again.scale == table.scale  # read, not measured again
    table.save(path)
    assert LatencyTable.load(path) == table


def test_random_archs_start_with_the_extremes_and_are_distinct():
    archs = random_archs(SPACE, 10, random.Random(0))
    assert archs[0] == Arch((4,) * 8) and archs[1] == Arch((8,) * 8) and len(set(archs)) == 10


def test_a_net_built_on_meta_has_the_same_layers_and_its_unseen_layers_are_timed_with_real_weights(monkeypatch):
    from engine.latency_table import build_on_meta, time_layer

    monkeypatch.setattr(latency_table, "LAYER_RUNS", 2)
    family, options = _family()
    arch = Arch((8, 4, 8, 4, 8, 4, 8, 4))
    example = family.example_inputs(options, (32, 32))
    meta = build_on_meta(lambda a: family.build_student(options, a), arch)
    assert all(p.device.type == "meta" for p in meta.parameters())
    real_keys = [layer_key(m, s) for m, s in layer_shapes(family.build_student(options, arch), example)]
    meta_layers = layer_shapes(meta, example)
    assert [layer_key(m, s) for m, s in meta_layers] == real_keys
    conv, shape = next((m, s) for m, s in meta_layers if isinstance(m, torch.nn.Conv2d))
    assert time_layer(conv, shape, torch.device("cpu")) > 0
