"""The monitor: the whole log from the store, progress that never goes back, the curves of the running
stage with series toggles, smoothing and a log scale."""

import pytest
from PySide6.QtCore import Qt

from engine.events import Message, StageStarted, StepProgress
from engine.store import Status
from workbench.views.monitor_view import MonitorView, smoothed


def _view(qtbot, store):
    view = MonitorView(store)
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    return view


def test_a_finished_run_shows_its_whole_log_from_the_store(qtbot, finished, tmp_path):
    settings, store, run_id, _ = finished
    lines = store.log_lines(run_id)
    texts = [text for *_, text in lines]
    assert texts[0].startswith("run started") and texts[-1] == "run finished"
    assert "[teacher] started" in texts and any(t.startswith("search: best") for t in texts)
    view = _view(qtbot, store)  # as after a restart of the window: nothing was watched live
    view.set_run(run_id)
    qtbot.waitUntil(lambda: not view.reader.busy() and "run finished" in view.log_view.toPlainText(), timeout=10_000)
    shown = view.log_view.toPlainText().splitlines()
    assert len(shown) == len(lines) and shown[-1].endswith("run finished")
    assert all(bar.value() == bar.maximum() for bar in view.bars.values())  # every stage done
    assert view.etas["export"].text() == "done"
    view.grab().save(str(tmp_path / "monitor.png"))


def test_progress_never_goes_back_and_the_plot_follows_the_running_stage(qtbot, store):
    run_id = store.create_run(name="live", family="pix2pix", dataset="d", config={},
                              stages=["teacher", "supernet", "search", "finetune", "export"])
    store.mark_run(run_id, Status.running)
    for stage in ("teacher", "supernet", "search"):
        store.update_stage(run_id, stage, status=Status.finished)
    store.update_stage(run_id, "finetune", status=Status.running, step=40, total_steps=100)
    for step in range(1, 41):
        store.record_metrics(run_id, "finetune", step, {"G_gan": 1.0 + step % 3, "G_distill": 10.0 / step})
    view = _view(qtbot, store)
    view.set_run(run_id)
    qtbot.waitUntil(lambda: view.loss_stage.currentText() == "finetune" and set(view.curves) == {"G_gan", "G_distill"},
                    timeout=10_000)
    bar = view.bars["finetune"]
    assert (bar.value(), bar.maximum()) == (40, 100)

    # A live step ahead of the store (which records every log_every steps): the store's lag never pulls it back.
    view.handle_event(StageStarted(run_id=run_id, stage="finetune", total_steps=100, time=0.0))
    view.handle_event(StepProgress(run_id=run_id, stage="finetune", step=50, total_steps=100, time=10.0))
    assert bar.value() == 50
    view.refresh()
    qtbot.waitUntil(lambda: not view.reader.busy(), timeout=10_000)
    assert bar.value() == 50 and view.etas["finetune"].text() == "ETA 0:10"

    # Series toggles, smoothing, log scale.
    item = view.series.findItems("G_gan", Qt.MatchFlag.MatchExactly)[0]
    item.setCheckState(Qt.CheckState.Unchecked)
    assert not view.curves["G_gan"].isVisible() and view.curves["G_distill"].isVisible()
    raw = list(view.curves["G_distill"].getData()[1])
    view.smoothing.setValue(0.9)
    assert list(view.curves["G_distill"].getData()[1]) == pytest.approx(smoothed(raw, 0.9))
    assert not view.curves["G_gan"].isVisible()  # a hidden series stays hidden
    view.log_scale.setChecked(True)
    assert view.plot.getPlotItem().ctrl.logYCheck.isChecked()

    # Once the user picks a stage, it stays, whatever runs.
    view.loss_stage.setCurrentText("teacher")
    view.loss_stage.activated.emit(view.loss_stage.currentIndex())
    view.handle_event(StageStarted(run_id=run_id, stage="finetune", total_steps=100, time=20.0))
    assert view.loss_stage.currentText() == "teacher"

    # A log line sent live is shown from the store, where the pipeline wrote it.
    store.add_log_line(run_id, "warning", "disk almost full")
    view.handle_event(Message(run_id=run_id, level="warning", text="disk almost full"))
    qtbot.waitUntil(lambda: "WARNING: disk almost full" in view.log_view.toPlainText(), timeout=10_000)
    assert view.log_view.toPlainText().count("disk almost full") == 1


def test_the_eta_follows_a_change_of_speed_smoothly():
    from workbench.session.state import StageProgress

    stage = StageProgress("supernet", status="running", started=0.0, total=10_000)
    for second in range(1, 301):  # 10 steps a second for 5 minutes
        stage.advance(second * 10, 10_000, float(second))
    assert stage.eta_seconds() == pytest.approx(700, rel=0.01)
    etas = []
    for second in range(301, 331):  # then 5 a second: the ETA rises gradually, without a jump
        stage.advance(3000 + (second - 300) * 5, 10_000, float(second))
        etas.append(stage.eta_seconds())
    assert all(later > earlier for earlier, later in zip(etas, etas[1:]))
    assert max(b - a for a, b in zip(etas, etas[1:])) < 60
    stage.advance(100, 10_000, 331.0)  # a late report of an earlier step is ignored
    assert stage.step == 3150

    resumed = StageProgress("supernet", status="running", started=1000.0)
    resumed.advance(5000, 10_000, 1000.5)  # its start at the checkpoint's step, steps made by another process
    assert resumed.eta_seconds() is None
    resumed.advance(5010, 10_000, 1001.5)
    assert resumed.eta_seconds() == pytest.approx(499.0)  # 10 steps a second from here, not 5000 in 0.5 s


def test_smoothing_is_debiased_and_zero_leaves_values_alone():
    assert smoothed([1.0, 2.0, 3.0], 0.0) == [1.0, 2.0, 3.0]
    assert smoothed([5.0, 5.0, 5.0], 0.9) == pytest.approx([5.0, 5.0, 5.0])


def test_a_cancelled_run_is_said_plainly_and_the_search_curve_is_labelled_a_score(qtbot, store):
    run_id = store.create_run(name="stopped", family="pix2pix", dataset="d", config={},
                              stages=["teacher", "supernet", "search", "finetune", "export"])
    store.update_stage(run_id, "teacher", status=Status.finished)
    store.update_stage(run_id, "supernet", status=Status.finished)
    store.update_stage(run_id, "search", status=Status.cancelled, step=4, total_steps=10)
    store.record_metrics(run_id, "search", 4, {"best_psnr": 21.0})
    store.mark_run(run_id, Status.cancelled, error=f"search stopped; 4 scored candidates are kept in the store; "
                                                   f"resume with: python main.py resume {run_id}")
    view = _view(qtbot, store)
    view.set_run(run_id)
    qtbot.waitUntil(lambda: not view.reader.busy() and view.error.text() != "", timeout=10_000)
    assert view.error.text() == "search stopped; 4 scored candidates are kept in the store. Resume continues from there."
    assert "b00020" not in view.error.styleSheet()
    view._show_stage("search")
    qtbot.waitUntil(lambda: not view.reader.busy() and "best_psnr" in view.curves, timeout=10_000)
    assert view.plot.getAxis("left").labelText == "best score so far (search split)"
    store.mark_run(run_id, Status.failed, error="boom")
    view.refresh()
    qtbot.waitUntil(lambda: not view.reader.busy() and view.error.text() == "boom", timeout=10_000)
    assert "b00020" in view.error.styleSheet()


def test_an_empty_plot_says_why(qtbot, store):
    run_id = store.create_run(name="young", family="pix2pix", dataset="d", config={"log_every": 25},
                              stages=["teacher", "supernet", "search", "finetune", "export"])
    store.mark_run(run_id, Status.running)
    store.update_stage(run_id, "teacher", status=Status.running, step=3, total_steps=100)
    view = _view(qtbot, store)
    view.set_run(run_id)
    qtbot.waitUntil(lambda: not view.reader.busy() and view.loss_stage.currentText() == "teacher", timeout=10_000)
    qtbot.waitUntil(lambda: "recorded at step 25" in view.plot.getPlotItem().titleLabel.text, timeout=10_000)
    store.record_metrics(run_id, "teacher", 25, {"G_L1": 1.0})
    view.refresh()
    qtbot.waitUntil(lambda: not view.reader.busy() and "G_L1" in view.curves, timeout=10_000)
    assert not view.plot.getPlotItem().titleLabel.isVisible()
    assert view.plot.getViewBox().viewRange()[0][0] >= 0  # one point at step 25: no negative steps around it
    assert view.curves["G_L1"].opts["symbol"] == "o"  # a lone point draws no line: a dot shows it
    store.record_metrics(run_id, "teacher", 50, {"G_L1": 0.5})
    view.refresh()
    qtbot.waitUntil(lambda: not view.reader.busy() and len(view.curves["G_L1"].getData()[0]) == 2, timeout=10_000)
    assert view.curves["G_L1"].opts["symbol"] is None
    # The search plots a score per scored sub-network, not losses at a logging step.
    store.update_stage(run_id, "teacher", status=Status.finished)
    store.update_stage(run_id, "search", status=Status.running)
    view._show_stage("search")
    qtbot.waitUntil(lambda: "as the first sub-networks are scored" in view.plot.getPlotItem().titleLabel.text,
                    timeout=10_000)
    # Another run: the previous one's axes do not linger over its empty plot.
    other = store.create_run(name="new", family="pix2pix", dataset="d", config={}, stages=["teacher"])
    view.set_run(other)
    assert view.plot.getViewBox().viewRange()[0] == [0, 1]


def test_the_losses_are_listed_in_the_order_the_family_declares(qtbot, store):
    import numpy as np

    from engine.families import get_family
    from engine.store import Curve

    view = _view(qtbot, store)
    view.state.loss_order = get_family("pix2pix").loss_names
    steps = np.arange(3)
    view.state.curve_data = {name: Curve(steps, steps * 1.0, steps * 1.0, steps * 1.0, 1)
                       for name in ("lr", "D_fake", "G_distill", "G_gan")}
    view._redraw_curves()
    listed = [view.series.item(i).text() for i in range(view.series.count())]
    declared = [n for n in get_family("pix2pix").loss_names if n in view.state.curve_data]
    assert listed == [*declared, "lr"]  # then what the family does not declare, by name
