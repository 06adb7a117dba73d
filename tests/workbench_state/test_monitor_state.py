"""The monitor view's Qt-free state: a run's log lines shown once and in order, its series ordered as its family
declares them, the hidden series kept from run to run, cancel and resume as the process stands."""

from workbench.session.monitor_state import MonitorState


def test_log_lines_are_shown_once_and_the_stores_log_replaces_the_stage_story():
    state = MonitorState()
    state.set_run(2)
    fresh, replace = state.new_log_lines([(1, "a"), (2, "b")])
    assert [line[0] for line in fresh] == [1, 2] and replace
    fresh, replace = state.new_log_lines([(2, "b"), (3, "c")])  # a read asked for before the last one came
    assert [line[0] for line in fresh] == [3] and not replace
    assert state.new_log_lines([]) == ([], False)
    state.set_run(5)
    assert state.log_after == 0 and not state.log_from_store and state.run.run_id == 5


def test_another_run_starts_over_but_the_hidden_series_stay_hidden():
    state = MonitorState()
    state.set_run(1)
    state.follow_stage = False
    state.hidden_series = {"D_real"}
    state.curve_data = {"G_gan": None, "D_real": None, "extra": None, "G_L1": None}
    state.loss_order = ("G_gan", "G_L1", "D_real")
    assert state.series_order() == ["G_gan", "G_L1", "D_real", "extra"]
    assert not state.set_run(1)
    assert state.set_run(2) and state.follow_stage and state.curve_data == {} and state.hidden_series == {"D_real"}


def test_cancel_while_the_process_runs_and_resume_a_run_that_stopped():
    state = MonitorState()
    assert not state.can_cancel() and not state.can_resume("failed")  # no run shown
    state.set_run(3)
    state.running = True
    assert state.can_cancel() and not state.can_resume("failed")
    state.running = False
    assert not state.can_cancel() and state.can_resume("cancelled") and not state.can_resume("finished")
