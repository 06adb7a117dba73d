"""A search by predicted latency, end to end on tiny models: a budget nothing meets is refused before the
supernet trains; one that some sub-networks meet holds every scored candidate to it, and the student's
predicted latency reaches the search result and the model card beside the measured one."""

import json
from pathlib import Path

import numpy as np
import pytest

from engine.arch import Arch
from engine.errors import ConfigError
from engine.events import CandidateScored
from engine.latency_table import LatencyTable, build_on_meta
from engine.pipeline import create_run, execute, run_dir
from engine.stages.latency_budget import table_folder
from engine.store import Status
from tests.engine.stages.tiny import SPACE, tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture
def steady_clock(monkeypatch):
    """Layer and network times that grow with the weights, the same every run: the mechanics are tested here,
    the accuracy of real timings in benchmarks/latency_table.py."""
    from engine import latency_table

    def weights(module):
        return sum(p.numel() for p in module.parameters())

    monkeypatch.setattr(latency_table, "time_layer", lambda module, shape, device, **_: 0.01 + weights(module) / 1e4)
    monkeypatch.setattr(latency_table, "measured_ms", lambda net, example, device, *args: 0.5 + weights(net) / 1e4)
    monkeypatch.setattr(latency_table, "measured_against", lambda net, reference, example, device, *args:
                        latency_table.PairedTime((0.5 + weights(net) / 1e4) / (0.5 + weights(reference) / 1e4),
                                                 0.5 + weights(reference) / 1e4))


def test_a_latency_budget_is_checked_before_training_and_holds_the_search(settings, store, steady_clock):
    search = {"latency_budget_ms": 1e-6, "target_ratio": None, "latency_calibration_nets": 6, "method": "exhaustive",
              "latency_decision": "predicted"}  # this test is of the table's prediction; measured: test_measured_budget
    run_id = create_run(tiny_config("pix2pix", search=search), store, settings)
    with pytest.raises(ConfigError, match=r"latency_budget_ms 1e-06 ms is below the smallest sub-network .* predicted"):
        execute(run_id, settings, store, lambda event: None)
    run = store.get_run(run_id)
    assert {s.name: s.status for s in run.stages}["supernet"] is Status.failed
    assert not (run_dir(settings, run_id) / "supernet" / "checkpoint.pt").exists()  # refused before any step
    [table_file] = table_folder(settings).glob("pix2pix-*-cpu-pytorch-*.json")
    table = json.loads(table_file.read_text())
    assert len(table["calibration"]) == 6 and table["provenance"]["calibration_nets"] == 6

    # A budget halfway between the smallest and the largest sub-network's predicted latency (predictions, not
    # measurements: a fit on 4 nets may predict the smallest above another net's measured time).
    config = tiny_config("pix2pix", search=search)
    family, options = config.family_impl, config.options
    fitted = LatencyTable.load(table_file)
    example = family.example_inputs(options, config.size_hw)
    smallest, largest = (fitted.predict(build_on_meta(lambda arch: family.build_student(options, arch), arch), example)
                         for arch in (Arch.smallest(config.search_space()), Arch.largest(config.search_space())))
    assert largest > smallest
    budget = (smallest + largest) / 2
    search = {**search, "latency_budget_ms": budget}
    run_id = create_run(tiny_config("pix2pix", search=search), store, settings)
    scored = []
    execute(run_id, settings, store, lambda e: scored.append(e) if isinstance(e, CandidateScored) else None)
    assert table_file.stat().st_size > 0 and len(list(table_folder(settings).glob("*.json"))) == 1  # reused
    candidates = store.candidates(run_id)
    assert candidates and len(candidates) < 2 ** len(SPACE)  # the budget left some sub-networks out
    assert all(c.latency_ms is not None and c.latency_ms <= budget for c in candidates)
    assert all(e.latency_ms is not None for e in scored)
    result = json.loads((run_dir(settings, run_id) / "search" / "result.json").read_text())
    assert result["latency_budget_ms"] == budget and result["budget_macs"] is None
    assert result["latency_ms"] <= budget and result["latency"]["backend"] == "pytorch"
    best = min(candidates, key=lambda c: -c.metrics["psnr"])
    assert Arch.parse(result["arch"]) == Arch.parse(best.arch)
    card = json.loads((run_dir(settings, run_id) / "export" / "model_card.json").read_text())
    predicted = card["predicted_latency"]
    assert predicted["ms"] == result["latency_ms"] and predicted["device"] == "cpu"
    assert predicted["measured_ms"] == card["latency_ms"]["pytorch"] and "error" in predicted
    assert card["macs"] > 0  # the card reports both


def test_a_latency_device_this_machine_lacks_is_named(settings, store, monkeypatch):
    from engine.stages import latency_budget
    from engine.stages.context import StageContext

    monkeypatch.setattr(latency_budget.torch.cuda, "is_available", lambda: False)
    config = tiny_config("pix2pix", search={"latency_budget_ms": 5, "latency_device": "cuda"})
    ctx = StageContext(run_id=1, stage="supernet", config=config, settings=settings, store=store,
                       run_dir=settings.runs_dir / "00001", events=lambda e: None, cancel_requested=lambda: False,
                       device=latency_budget.torch.device("cpu"))
    with pytest.raises(ConfigError, match="latency_device is cuda, but this machine has no usable CUDA GPU"):
        latency_budget.check_latency_budget(ctx)


def test_a_measured_budget_and_a_speedup_budget_hold_the_search_and_reach_the_summary(settings, store, steady_clock,
                                                                                      monkeypatch):
    """The wiring end to end, with network times from a fake clock (proportional to the weights): the teacher
    measured against the reference before training, every kept candidate measured, the measurements in the run's
    file, the kept student's reading and how it was taken in the result and the summary."""
    from engine.latency import measure
    from engine.stages import latency_budget

    def fake_time(self, name, net, pairs):
        clock = [0.0]
        cost = {"reference": self.reference, name: net}

        def runner(module):
            weights = sum(p.numel() for p in module.parameters())
            return lambda: clock.__setitem__(0, clock[0] + (0.5 + weights / 1e4) / 1000)

        return measure({key: runner(module) for key, module in cost.items()}, clock=lambda: clock[0], pairs=pairs,
                       warmup=0, time_cap_s=1e9, min_rounds=10, max_rounds=20)

    monkeypatch.setattr(latency_budget.PairTimer, "time", fake_time)
    space = [[8, 4]] + [[8]] * 7  # two sub-networks: both measured, the larger over the budget
    config = tiny_config("pix2pix", supernet={"steps": 8, "search_space": space}, finetune={"steps": 0},
                         export={"latency_time_cap_s": 1, "variants": []},
                         search={"target_ratio": None, "speedup_budget": 1.5, "latency_calibration_nets": 2,
                                 "method": "exhaustive"})
    run_id = create_run(config, store, settings)
    summary = execute(run_id, settings, store, lambda event: None)
    result = json.loads((run_dir(settings, run_id) / "search" / "result.json").read_text())
    measured = result["latency_measured"]
    assert result["latency_decision"] == "measured" and measured["speedup_over_teacher"] >= 1.5
    assert measured["arch"] == result["arch"] and "interleaved with the reference network" in measured["how"]
    assert result["measurements"]["limit_ms"] == pytest.approx(result["measurements"]["teacher_ms"] / 1.5)
    _, stored = latency_budget.read_measurements(run_dir(settings, run_id) / "search" / latency_budget.MEASURED_FILE)
    assert result["arch"] in stored and all(m.ms <= result["measurements"]["limit_ms"] for m in stored.values()
                                            if m.arch == result["arch"])
    assert summary["search"]["latency_measured"]["how"] == measured["how"]
    from engine.cli import format_summary
    from engine.run_result import RunResult

    text = format_summary(RunResult.from_dict(summary))
    assert "latency budget: the kept student" in text and "faster than the teacher, measured end to end" in text
    assert "protocol: departs from the paper protocol (paper-pix2pix-edges2shoes)" in text
    card = json.loads((run_dir(settings, run_id) / "export" / "model_card.json").read_text())
    assert card["measured_latency"]["how"] == measured["how"] and card["protocol"]["paper_protocol"] is False
    # Every scored candidate's measurement is in the store (the Pareto view's measured axis), the budget reads as
    # measured with its limit in ms, and the compare view's preview says how the kept student was measured.
    from engine import api

    table = store.candidate_table(run_id)
    assert len(table) >= 1 and not np.isnan(table.measured_ms).any()
    assert table.row(table.row_of(result["arch"]))["measured_ms"] == pytest.approx(measured["ms"])
    budget = api.search_budget(store, settings, run_id)
    assert budget.measured and budget.latency_ms == pytest.approx(result["measurements"]["limit_ms"])
    assert "measured end to end" in budget.latency_on
    shown = api.preview(store, settings, run_id, api.sample_images(store, settings, run_id)[0], None)
    assert shown.measured_latency.startswith("the search's measurement of the kept student: ")
    assert measured["how"] in shown.measured_latency


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_the_reference_network_is_compiled_once_for_every_candidate_it_is_timed_beside(tmp_path, monkeypatch, backend):
    from engine import export, openvino_runtime
    from engine.stages.latency_budget import PairTimer

    compiled: list[str] = []
    if backend == "openvino":
        real = openvino_runtime.compile_model

        def counting(path, *args, **kwargs):
            compiled.append(Path(path).name)
            return real(path, *args, **kwargs)

        monkeypatch.setattr(openvino_runtime, "compile_model", counting)
    else:
        real = export.onnx_session

        def counting(path, *args, **kwargs):
            compiled.append(Path(path).name)
            return real(path, *args, **kwargs)

        monkeypatch.setattr(export, "onnx_session", counting)
    config = tiny_config("pix2pix", search={"latency_backend": backend})
    timer = PairTimer(config, tmp_path, {"warmup": 0, "min_rounds": 2, "max_rounds": 2, "time_cap_s": 5})
    small, large = Arch.smallest(config.search_space()), Arch.largest(config.search_space())
    readings = [timer(small), timer(large)]
    # Each candidate is its own file, compiled for its reading; the reference is compiled for the first only.
    assert compiled == ["reference.onnx", "candidate.onnx", "candidate.onnx"]
    assert all(reading.ratios["reference/candidate"].median_ms > 0 for reading in readings)


def test_the_reference_latency_every_measurement_rests_on_is_its_fastest_of_several_readings(tmp_path, monkeypatch):
    """A busy moment while the baseline is read slows the reference and its copy alike (the ratio's spread shows
    nothing), and every candidate's latency is the reference's over a ratio: the fastest reading is kept."""
    from engine.latency import measure
    from engine.stages.latency_budget import PairTimer

    slow_first = iter([3.0, 1.0, 1.2, 1.0])  # the machine busy during the first reading only

    def fake_time(self, name, net, pairs):
        factor = next(slow_first)
        clock = [0.0]

        def runner(ms):
            def run():
                clock[0] += ms * factor / 1000
            return run

        return measure({"reference": runner(2.0), name: runner(2.0)}, clock=lambda: clock[0], pairs=pairs,
                       warmup=0, time_cap_s=1e9, min_rounds=10, max_rounds=20)

    monkeypatch.setattr(PairTimer, "time", fake_time)
    timer = PairTimer(tiny_config("pix2pix"), tmp_path)
    baseline, _ = timer.baseline(with_teacher=False, attempts=3)
    assert baseline.reference_ms == pytest.approx(2.0) and baseline.teacher_over_reference is None
