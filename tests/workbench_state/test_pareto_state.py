"""The Pareto view's state without the plot: what showing another run resets, where the budget line goes on each
axis, when a latency axis is offered or chosen first, the overlay size note and the export name; no QApplication."""

from pathlib import Path

from engine.api import TeacherReference
from workbench.session.pareto_state import ParetoState


def test_another_run_resets_the_selection_and_gives_the_axes_back_to_the_view():
    state = ParetoState()
    assert state.show_run(1) and not state.show_run(1)
    state.selected = {"run_id": 1, "arch": "8_8"}
    state.fitted = True
    state.user_moved_axes()
    assert not state.auto_axes
    assert state.show_run(2) and state.selected is None and state.auto_axes and not state.fitted


def test_the_budget_is_drawn_on_the_axis_it_was_decided_on():
    state = ParetoState()
    assert state.budget_on("macs") is None  # no run shown
    state.show_run(3)
    state.references.update(3, budget=250e6, teacher=TeacherReference(1_000_000_000, {"fid": 30.0}, "search"),
                            latency_budget=(12.5, "cpu, openvino"), measured=True)
    assert state.budget_on("macs") == (250.0, None)
    assert state.budget_on("measured_ms") == (12.5, "cpu, openvino")
    assert state.budget_on("latency_ms") is None  # a measured limit is not a predicted one
    assert state.latency_decided_on("measured_ms") and not state.latency_decided_on("latency_ms")
    assert state.teacher_level("fid") == 30.0 and state.teacher_level("psnr") is None


def test_a_run_searched_by_latency_alone_is_shown_against_it_until_something_is_selected():
    state = ParetoState()
    state.show_run(4)
    assert state.latency_axis_first(4, None, (9.0, "cpu, pytorch"), measured=False) == "Predicted latency"
    assert state.latency_axis_first(4, None, (9.0, "cpu, pytorch"), measured=True) == "Measured latency"
    assert state.latency_axis_first(4, 1e8, (9.0, "cpu, pytorch"), measured=True) is None  # a MACs budget too
    assert state.latency_axis_first(5, None, (9.0, "cpu, pytorch"), measured=True) is None  # not the run shown
    state.selected = {"run_id": 4, "arch": "4_4"}
    assert state.latency_axis_first(4, None, (9.0, "cpu, pytorch"), measured=True) is None


def test_overlays_at_another_size_are_said_and_exports_are_named_for_what_they_hold(tmp_path):
    state = ParetoState()
    assert state.offer_runs([(1, "a"), (2, "b"), (3, "c")], {1: 256, 2: "512x256", 3: 256})
    assert not state.offer_runs([(1, "a"), (2, "b"), (3, "c")], {1: 256})  # the same runs
    state.offer_runs([(1, "a"), (2, "b"), (3, "c")], {1: 256, 2: "512x256", 3: 256})
    state.show_run(1)
    assert state.size_note({3}) == ""
    assert state.size_note({1, 2, 3}) == ("At another image size: run 2 (512x256); their MACs are for that size, "
                                          "not comparable with run 1's (256 px).")
    assert state.suggested_name("psnr", "png") == Path.home() / "run-1-pareto-psnr.png"
    state.export_dir = tmp_path
    assert state.suggested_name(None, "csv") == tmp_path / "run-1-pareto-candidates.csv"
