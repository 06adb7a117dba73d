"""The latency table's mechanics (its accuracy is measured by benchmarks/latency_table.py, not here)."""

import itertools
import random

import pytest
import torch

from engine import latency_table
from engine.arch import Arch
from engine.families import FAMILIES
from engine.latency_table import LatencyTable, cached_table, layer_key, layer_shapes, random_archs

SPACE = [(4, 8)] * 8


def _fake_measured_ms(net, example, device, *args):
    """A stand-in for the timing protocol: the nets' times in a test need not be real, only distinct."""
    return 1.0 + sum(p.numel() for p in net.parameters()) / 1e6


def _fake_measured_against(net, reference, example, device, *args):
    """The same, timed against a reference network (the table's fit times each net interleaved with one)."""
    return latency_table.PairedTime(_fake_measured_ms(net, example, device) / _fake_measured_ms(reference, example,
                                                                                                device),
                                    _fake_measured_ms(reference, example, device))


@pytest.fixture
def quick_timing(monkeypatch):
    """Layers timed once, whole networks not timed at all: the mechanics, not the numbers."""
    monkeypatch.setattr(latency_table, "LAYER_RUNS", 1)
    monkeypatch.setattr(latency_table, "LAYER_WARMUP", 0)
    monkeypatch.setattr(latency_table, "measured_ms", _fake_measured_ms)
    monkeypatch.setattr(latency_table, "measured_against", _fake_measured_against)


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


def test_a_table_is_built_cached_and_predicts_any_sub_network(tmp_path, quick_timing):
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


def test_the_fast_predictor_equals_the_whole_network_path_on_every_sub_network(tmp_path, quick_timing):
    family, options = _family()
    example = family.example_inputs(options, (16, 16))
    space = [(4, 8, 12)] + [(4, 8)] * 7

    def build(arch):
        return family.build_student(options, arch)

    table, _ = cached_table(tmp_path, "cyclegan", options.model_dump_json(), build, example, space, calibration_nets=3)
    predictor = latency_table.SpacePredictor(table, build, space, example)
    assert predictor.split  # the ResNet student's layers each depend on one or two positions
    assert all(positions and len(positions) <= 2 for positions, _ in predictor.groups)
    for values in itertools.islice(itertools.product(*space), 0, None, 7):
        arch = Arch(values)
        assert abs(predictor(arch) - table.predict(latency_table.build_on_meta(build, arch), example)) < 1e-9


class _Growing(torch.nn.Module):
    """A net whose number of layers depends on the arch: the split cannot hold."""

    def __init__(self, arch):
        super().__init__()
        self.layers = torch.nn.Sequential(*[torch.nn.Conv2d(3, 3, 1) for _ in range(arch[0])],
                                          torch.nn.Conv2d(3, arch[1], 1))

    def forward(self, x):
        return self.layers(x)


def test_the_predictor_falls_back_to_whole_networks_where_the_layers_change_in_number(quick_timing):
    space = [(1, 2, 3), (2, 4)]
    table = LatencyTable("test", "{}", "cpu", "pytorch", 1, (8, 8), scale=2.0, offset_ms=1.0)
    example = (torch.zeros(1, 3, 8, 8),)
    predictor = latency_table.SpacePredictor(table, _Growing, space, example)
    assert not predictor.split
    for arch in (Arch((1, 2)), Arch((3, 4))):
        assert predictor(arch) == table.predict(latency_table.build_on_meta(_Growing, arch), example)
    assert predictor(Arch((3, 4))) > predictor(Arch((1, 2)))


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_a_whole_network_is_timed_end_to_end_in_a_deployment_runtime(backend):
    family, options = _family()
    net = family.build_student(options, Arch((8, 4, 8, 4, 8, 4, 8, 4))).eval()
    example = family.example_inputs(options, (32, 32))
    assert latency_table.measured_ms(net, example, torch.device("cpu"), time_cap_s=0.5, backend=backend) > 0


def test_an_openvino_table_on_a_gpu_or_without_openvino_is_refused_in_one_line(monkeypatch):
    from engine import openvino_runtime
    from engine.errors import UserError

    family, options = _family()
    example = family.example_inputs(options, (32, 32))
    with pytest.raises(ValueError, match="openvino latency is measured on the CPU"):
        latency_table.build_table("cyclegan", "{}", None, example, SPACE, "cuda", backend="openvino")
    monkeypatch.setattr(openvino_runtime, "available", lambda: False)
    with pytest.raises(UserError, match="^OpenVINO is not installed"):
        latency_table.build_table("cyclegan", "{}", None, example, SPACE, "cpu", backend="openvino")


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_layers_can_be_timed_in_the_deployment_runtime_itself_and_such_a_table_is_kept_apart(tmp_path, monkeypatch,
                                                                                            backend):
    from engine import export

    monkeypatch.setattr(latency_table, "LAYER_RUNS", 1)
    monkeypatch.setattr(latency_table, "LAYER_WARMUP", 0)
    monkeypatch.setattr(latency_table, "measured_ms", _fake_measured_ms)
    monkeypatch.setattr(latency_table, "measured_against", _fake_measured_against)
    exported = []
    real_export = export.export_onnx
    monkeypatch.setattr(export, "export_onnx", lambda *a, **k: exported.append(1) or real_export(*a, **k))
    family, options = _family()
    example = family.example_inputs(options, (16, 16))

    def build(arch):
        return family.build_student(options, arch)

    table, path = cached_table(tmp_path, "cyclegan", options.model_dump_json(), build, example, SPACE,
                               backend=backend, calibration_nets=2, layer_backend=backend)
    # Each distinct layer exported and timed on its own in the runtime: one export per layer of the table.
    assert table.layer_backend == backend and len(exported) == len(table.layers) > 0
    assert all(ms > 0 for ms in table.layers.values())
    assert path.name.endswith(f"-layers-{backend}.json") and LatencyTable.load(path) == table
    # The table whose layers are timed in PyTorch (the default) is another file: the two never mix their layers.
    plain, plain_path = cached_table(tmp_path, "cyclegan", options.model_dump_json(), build, example, SPACE,
                                     backend=backend, calibration_nets=2)
    assert plain_path != path and plain.layer_backend == "pytorch"
    with pytest.raises(ValueError, match="layers are timed in PyTorch or in the table's backend"):
        latency_table.build_table("cyclegan", "{}", build, example, SPACE, backend="onnxruntime",
                                  layer_backend="openvino")


def test_the_fit_times_each_network_against_one_reference_so_a_busy_spell_moves_no_figure(tmp_path, monkeypatch):
    """A reading taken while the machine ran three times slower slows the net and the reference alike: the per-round
    ratio is the same, and each net's figure is its ratio over the reference's usual time."""
    from engine.latency_table import PairedTime, on_common_reference

    steady = [PairedTime(2.0, 5.0), PairedTime(3.0, 5.1), PairedTime(4.0, 4.9)]
    busy = [steady[0], PairedTime(3.0, 15.3), steady[2]]  # the second read during a busy spell
    assert on_common_reference(busy) == on_common_reference(steady) == pytest.approx([10.0, 15.0, 20.0])
    assert Arch.smallest(SPACE) == Arch((4,) * 8)  # the reference the fit times every network against

    monkeypatch.setattr(latency_table, "LAYER_RUNS", 1)
    monkeypatch.setattr(latency_table, "LAYER_WARMUP", 0)
    references, alone = [], []
    monkeypatch.setattr(latency_table, "measured_against", lambda net, reference, *a: references.append(
        sum(p.numel() for p in reference.parameters())) or _fake_measured_against(net, reference, *a))
    monkeypatch.setattr(latency_table, "measured_ms", lambda net, *a: alone.append(1) or _fake_measured_ms(net, *a))
    family, options = _family()
    example = family.example_inputs(options, (16, 16))

    def build(arch):
        return family.build_student(options, arch)

    table = latency_table.build_table("cyclegan", options.model_dump_json(), build, example, SPACE,
                                      calibration_nets=3)
    smallest = sum(p.numel() for p in build(Arch.smallest(SPACE)).parameters())
    assert references == [smallest] * 3 and not alone  # every net against the smallest sub-network
    assert [entry["measured_ms"] for entry in table.calibration] == pytest.approx(
        [_fake_measured_ms(build(Arch.parse(entry["arch"])), example, None) for entry in table.calibration])
    assert table.provenance["end_to_end"] == "interleaved with the smallest sub-network"
    latency_table.build_table("cyclegan", options.model_dump_json(), build, example, SPACE, calibration_nets=3,
                              interleaved=False)
    assert len(alone) == 3 and len(references) == 3  # timed alone, as tables were before
