"""The main window driven as a user would: runs from the store, a new run from a preset through to a
finished run with live points on the Pareto plot, cancel and resume, a responsive event loop."""

import gc
import json
import threading

import pytest
from PySide6.QtCore import Qt, QTimer

from engine.events import CandidateScored, StepProgress
from engine.store import ListedResult, Status
from tests.engine.stages.tiny import tiny_config
from tests.patience import REAL_WORK_MS, REAL_WORK_S
from workbench.app import freeze_startup_heap
from workbench.main_window import MainWindow


@pytest.fixture
def window(qtbot, settings, store):
    window = MainWindow(settings, store)
    qtbot.addWidget(window)
    window.show()
    yield window
    for process in window.watched.all_processes():
        process.kill()


def test_empty_store_explains_how_to_start(window):
    assert window.runs_model.rowCount() == 0
    assert window.empty_label.isVisible() and "New run" in window.empty_label.text()


def test_runs_from_the_store_appear_with_their_stages(window, store, qtbot):
    first = store.create_run(name="h2z", family="cyclegan", dataset="grass2gravel", config={},
                             stages=["teacher", "supernet", "search", "finetune", "export"])
    store.mark_run(first, Status.running)
    store.update_stage(first, "teacher", status=Status.finished, step=10, total_steps=10)
    store.update_stage(first, "supernet", status=Status.running, step=5, total_steps=20)
    store.record_metrics(first, "supernet", 5, {"G_gan": 0.5, "G_distill": 3.0})
    with store.session() as session:  # a live process of this test owns the run
        from engine.store.models import Run
        session.get(Run, first).pid = __import__("os").getpid()
    window.refresh()
    qtbot.waitUntil(window.idle, timeout=10_000)
    row = [window.runs_model.index(0, c).data() for c in range(window.runs_model.columnCount())]
    assert row[:4] == ["h2z", "cyclegan · grass2gravel", "running", "supernet 25%"]
    assert window.monitor.bars["teacher"].value() == window.monitor.bars["teacher"].maximum()
    assert (window.monitor.bars["supernet"].value(), window.monitor.bars["supernet"].maximum()) == (5, 20)
    assert set(window.monitor.curves) == {"G_gan", "G_distill"}

    second = store.create_run(name="e2p", family="pix2pix", dataset="edges2photos", config={}, stages=["teacher"])
    store.mark_run(second, Status.failed, error="teacher checkpoint not found: /x.pth")
    qtbot.waitUntil(lambda: window.runs_model.rowCount() == 2, timeout=5000)  # the window polls the store
    assert window.selected_run_id() == first  # a refresh keeps the selection
    window.select_run(second)
    qtbot.waitUntil(window.idle, timeout=10_000)
    assert "teacher checkpoint not found" in window.monitor.error.text()
    assert window.resume_action.isEnabled() and not window.cancel_action.isEnabled()


@pytest.mark.slow
def test_a_run_started_from_the_window_finishes_and_its_candidates_arrive_live(window, store, qtbot):
    live_points = []
    window.pareto.candidate_selected.connect(lambda *a: None)
    process = window.start_config(tiny_config("pix2pix"))
    process.event.connect(lambda e: live_points.append(e) if isinstance(e, CandidateScored) else None)
    qtbot.waitUntil(lambda: process.run_id is not None and process.run_id in window.processes, timeout=REAL_WORK_MS)
    run_id = process.run_id
    qtbot.waitUntil(lambda: window.selected_run_id() == run_id, timeout=10_000)  # the new run is selected
    qtbot.waitUntil(lambda: len(live_points) >= 3, timeout=REAL_WORK_MS)
    # Points arrive on the Pareto plot as the events do, before the search is over.
    qtbot.waitUntil(lambda: window.pareto.count(run_id) >= 3, timeout=10_000)
    with qtbot.waitSignal(process.finished, timeout=REAL_WORK_MS) as finished:
        pass
    assert finished.args == [0]
    qtbot.waitUntil(lambda: store.get_run(run_id).status is Status.finished, timeout=10_000)
    window.refresh()
    qtbot.waitUntil(window.idle, timeout=10_000)
    row = window.runs_model.row_of(run_id)
    assert window.runs_model.run_at(row).status == "finished"
    # The runs list shows the summary's test-split numbers, labelled, beside the search's best.
    summary = json.loads((window.settings.runs_dir / f"{run_id:05d}" / "export" / "result.json").read_text())
    shown = window.runs_model.index(row, 5).data()
    assert shown == (f"psnr {summary['student']['metrics']['psnr']:.4g} (teacher "
                     f"{summary['teacher']['metrics']['psnr']:.4g})")
    headers = [window.runs_model.headerData(c, Qt.Orientation.Horizontal) for c in range(8)]
    assert headers[4:8] == ["Best (search)", "Student (test)", "Fewer MACs", "Started"]
    assert window.runs_model.index(row, 6).data() == f"{summary['macs_ratio']:.1f}x"
    assert window.runs_model.index(row, 7).data()[:4].isdigit()  # the date with its year
    assert window.runs_model.index(row, 4).data().startswith("psnr ")
    assert "test split" in window.runs_model.headerData(5, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
    assert "test split" in window.runs_model.index(row, 5).data(Qt.ItemDataRole.ToolTipRole)
    window.pareto.flush()
    assert window.pareto.count(run_id) == len(store.candidates(run_id))
    assert window.pareto.front.getData()[0] is not None and len(window.pareto.front.getData()[0]) >= 1
    assert "run finished" in window.monitor.log_view.toPlainText()
    assert window.export_action.isEnabled()
    # The run's end is notified and its summary is shown up front.
    title, text = window.notifications[-1]
    assert title == f"Run {run_id} finished" and "fewer MACs" in text and "test split" in text
    assert window.tabs.currentWidget() is window.summary
    assert window.summary.summary is not None and window.summary.summary.run_id == run_id


@pytest.mark.slow
def test_cancel_keeps_checkpoints_and_resume_finishes(window, store, qtbot, monkeypatch):
    import sys

    import workbench.background.process

    real_command = workbench.background.process.child_command

    def held_at_the_third_supernet_step(arguments, processes=1):
        """The new run waits at its third supernet step until the cancel reaches it, so the cancel lands in the
        supernet stage however loaded the machine is (the resume runs as it is)."""
        if arguments[0] != "compress":
            return real_command(arguments, processes)
        return sys.executable, ["-m", "tests.faults.hold_at", "supernet", "3", *arguments]

    monkeypatch.setattr(workbench.background.process, "child_command", held_at_the_third_supernet_step)
    steps = []
    process = window.start_config(tiny_config("pix2pix", supernet={"steps": 12}))
    process.event.connect(lambda e: steps.append(e) if isinstance(e, StepProgress) and e.stage == "supernet" else None)
    qtbot.waitUntil(lambda: any(e.step == 3 for e in steps), timeout=REAL_WORK_MS)
    run_id = process.run_id
    window.select_run(run_id)
    window.cancel_run(run_id)
    with qtbot.waitSignal(process.finished, timeout=REAL_WORK_MS) as finished:
        pass
    assert finished.args == [3]  # stopped at a checkpoint on request
    window.refresh()
    qtbot.waitUntil(window.idle, timeout=10_000)
    run = store.get_run(run_id)
    assert run.status is Status.cancelled and run.stages[1].checkpoint_path
    assert window.resume_action.isEnabled()
    stopped_at = run.stages[1].step
    assert stopped_at == 3  # the step it was held at: the cancel was honoured there, at a checkpoint

    resumed_steps = []
    window.resume_run(run_id)
    resumed = window.processes[run_id]
    resumed.event.connect(lambda e: resumed_steps.append(e.step) if isinstance(e, StepProgress) and e.stage == "supernet" else None)
    with qtbot.waitSignal(resumed.finished, timeout=REAL_WORK_MS) as finished:
        pass
    assert finished.args == [0]
    assert resumed_steps[0] == stopped_at and resumed_steps[-1] == 12  # continued from the checkpoint, not step 0
    assert store.get_run(run_id).status is Status.finished


@pytest.mark.slow
def test_the_event_loop_keeps_running_while_a_run_and_a_latency_measurement_go(window, qtbot, finished, tmp_path):
    """Deterministic, not timed: the measurement waits in the model process behind a job held until the GUI thread
    has handled events meanwhile; it runs in another process (as a run does), never on the window's."""
    import os

    from tests.workbench.held_job import held_until

    settings, finished_store, finished_id, _ = finished
    steps, held, release = [], [], tmp_path / "release"
    process = window.start_config(tiny_config("pix2pix", supernet={"steps": 60}))
    process.event.connect(lambda e: steps.append(e) if isinstance(e, StepProgress) else None)
    window.compare.store, window.compare.settings = finished_store, settings
    window.compare.set_run(finished_id)
    freeze_startup_heap()  # as the application does once its window is up
    window.compare.worker.done.connect(lambda job, result: held.append(result) if isinstance(result, int) else None)
    try:
        window.compare.worker.submit(held_until, str(release))
        window.compare.measure_latency()  # queued behind the held job, in the same model process
        ticks = []
        QTimer.singleShot(0, lambda: ticks.append(1))
        seen = len(steps)
        # While the measurement waits: timers fire and the run's progress keeps arriving.
        qtbot.waitUntil(lambda: bool(ticks) and len(steps) > seen, timeout=REAL_WORK_MS)
        assert window.compare.latency is None
        release.touch()
        qtbot.waitUntil(lambda: window.compare.latency is not None, timeout=REAL_WORK_MS)
    finally:
        release.touch()
        gc.unfreeze()  # give the rest of the session its collector back
        process.kill()
    assert held and held[0] != os.getpid()  # the model work's process is not the window's
    assert window.compare.latency.timings["student"].median_ms > 0


def test_clicking_a_pareto_point_shows_that_candidate_in_the_compare_view(qtbot, finished):
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    settings, store, run_id, _ = finished
    window = MainWindow(settings, store)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.runs_model.rowCount() == 1, timeout=10_000)
    window.select_run(run_id)
    assert window.selected_run_id() == run_id
    assert window.tabs.currentWidget() is window.summary  # a finished run opens on its outcome, not on Monitor
    window.tabs.setCurrentWidget(window.pareto)
    qtbot.waitUntil(lambda: window.idle() and window.pareto.count(run_id) > 0, timeout=10_000)
    target = store.candidates(run_id)[-1]
    metric = window.pareto.metric_name()
    at = window.pareto.plot.mapFromScene(window.pareto.view_to_scene(target.macs, target.metrics[metric]))
    QTest.mouseClick(window.pareto.plot.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(at.x(), at.y()))
    clicked = window.compare.arch
    assert clicked is not None and store.candidate(run_id, clicked) is not None
    qtbot.waitUntil(lambda: window.compare.result is not None and window.compare.result.arch == clicked,
                    timeout=REAL_WORK_MS)
    assert clicked in window.compare.readout.text()
    # One selection: the compare view's budget slider moves the Pareto highlight and the status bar with it.
    qtbot.waitUntil(lambda: window.compare.budget.isEnabled(), timeout=10_000)
    window.compare.budget.setValue(0)
    cheapest = window.compare.candidates[0][1]
    assert window.pareto.selected["arch"] == cheapest and window.compare.arch == cheapest
    assert window.statusBar().currentMessage() == f"selected {cheapest} of run {run_id}"
    assert list(window.pareto.highlight.getData()[0]) == [window.pareto.plot_x(window.pareto.selected["macs"])]
    window.compare.final_button.click()
    assert window.pareto.selected is None and len(window.pareto.highlight.getData()[0]) == 0
    assert window.statusBar().currentMessage() == f"showing the final student of run {run_id}"
    window.compare.worker.wait()


def test_reads_that_grow_with_the_store_never_run_on_the_gui_thread(qtbot, settings, store, monkeypatch):
    import threading

    from engine.store import CandidateRecord, Store

    run_id = store.create_run(name="big", family="pix2pix", dataset="d", config={},
                              stages=["teacher", "supernet", "search", "finetune", "export"])
    store.add_candidates(run_id, [CandidateRecord(f"a{i}", 1000 + i, 1, {"psnr": 20 + i / 1000}) for i in range(300)])
    for step in range(10, 400, 10):
        store.record_metrics(run_id, "supernet", step, {"G_gan": 1.0 / step})
    on_gui_thread = []
    for name in ("list_runs", "candidate_table", "candidates", "curves", "metric_series", "metric_names"):
        original = getattr(Store, name)

        def checked(self, *args, _original=original, _name=name, **kwargs):
            if threading.current_thread() is threading.main_thread():
                on_gui_thread.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Store, name, checked)
    window = MainWindow(settings, store)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.runs_model.rowCount() == 1, timeout=10_000)
    window.select_run(run_id)
    for tab in (window.pareto, window.compare, window.monitor):
        window.tabs.setCurrentWidget(tab)
        qtbot.waitUntil(window.idle, timeout=10_000)
    window.monitor.loss_stage.setCurrentText("teacher")
    window.monitor.loss_stage.setCurrentText("supernet")
    window.pareto.handle_event(CandidateScored(run_id=run_id, arch="new", macs=1, params=1, metrics={"psnr": 30.0}))
    window.pareto.flush()
    window.refresh()
    qtbot.waitUntil(lambda: window.idle() and not window.pareto.is_loading(), timeout=10_000)
    assert window.pareto.count(run_id) == 301 and window.pareto.front_points()[0]["arch"] == "new"
    assert set(window.monitor.curves) == {"G_gan"} and window.compare.budget.isEnabled()
    assert on_gui_thread == []


def _store_run(store, name, dataset, *, status=Status.finished, result=None):
    from engine.store import CandidateRecord

    run_id = store.create_run(name=name, family="cyclegan", dataset=dataset, config={},
                              stages=["teacher", "supernet", "search", "finetune", "export"])
    store.update_stage(run_id, "supernet", status=Status.running, step=1234, total_steps=10_000)
    store.add_candidates(run_id, [CandidateRecord("16_16_24_16_32_64_16_24", 3_123_456_789, 1, {"fid": 71.2345})],
                         metric="fid")
    store.mark_run(run_id, status, result=result)
    return run_id


def test_every_column_of_the_runs_list_is_visible_at_1280_px(qtbot, settings, store, tmp_path):
    result = ListedResult("fid", "test", {"fid": 71.23456}, {"fid": 68.9876})
    for index in range(3):
        _store_run(store, f"horse2zebra-fast-{index}", "/home/someone/datasets/cyclegan/horse2zebra",
                   result=result)
    window = MainWindow(settings, store)
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    qtbot.waitUntil(lambda: window.runs_model.rowCount() == 3 and window.idle(), timeout=10_000)
    header = window.runs_view.horizontalHeader()
    assert header.length() <= window.runs_view.viewport().width()
    assert not window.runs_view.horizontalScrollBar().isVisible()
    assert window.runs_model.index(0, 1).data() == "cyclegan · horse2zebra"
    assert "/home/someone/datasets/cyclegan/horse2zebra" in window.runs_model.index(0, 1).data(Qt.ItemDataRole.ToolTipRole)
    window.grab().save(str(tmp_path / "runs-1280.png"))


def test_a_run_is_renamed_and_deleted_with_its_folder_after_asking(qtbot, window, store, monkeypatch):
    from PySide6.QtWidgets import QInputDialog, QMessageBox

    from engine.pipeline import run_dir

    kept = _store_run(store, "kept", "d")
    doomed = _store_run(store, "doomed", "d")
    folder = run_dir(window.settings, doomed)
    (folder / "teacher").mkdir(parents=True)
    (folder / "teacher" / "weights.pt").write_bytes(b"x" * 1000)
    window.refresh()
    qtbot.waitUntil(lambda: window.runs_model.rowCount() == 2 and window.idle(), timeout=10_000)
    window.select_run(doomed)

    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("renamed", True))
    window.rename_action.trigger()
    qtbot.waitUntil(lambda: window.runs_model.run_at(window.runs_model.row_of(doomed)).name == "renamed", timeout=10_000)

    asked = []

    def answer(choice):
        def question(parent, title, text, *args):
            asked.append(text)
            return choice
        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Cancel))
    window.delete_action.trigger()
    qtbot.waitUntil(lambda: bool(asked), timeout=10_000)  # asked once the folder's size is summed, off the GUI thread
    assert str(folder) in asked[0] and "cannot be undone" in asked[0]
    assert folder.is_dir() and store.get_run(doomed)
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    window.delete_action.trigger()
    qtbot.waitUntil(lambda: window.runs_model.rowCount() == 1 and window.idle(), timeout=10_000)
    assert not folder.exists() and [run.id for run in store.list_runs()] == [kept]
    assert window.selected_run_id() == kept
    assert window.statusBar().currentMessage() == f"deleted run {doomed} and its folder {folder} (renamed)"


def test_a_running_run_cannot_be_deleted(qtbot, window, store):
    running = _store_run(store, "busy", "d", status=Status.running)
    with store.session() as session:  # held by this live test process, so it is not found dead
        from engine.store.models import Run
        session.get(Run, running).pid = __import__("os").getpid()
    window.refresh()
    qtbot.waitUntil(lambda: window.runs_model.rowCount() == 1 and window.idle(), timeout=10_000)
    window.select_run(running)
    assert not window.delete_action.isEnabled()


def test_the_window_says_a_silent_run_is_not_responding_and_fails_it_only_when_asked(qtbot, window, store):
    from datetime import datetime, timezone

    from engine.liveness import STALE_AFTER
    from engine.store.models import Run

    silent = _store_run(store, "remote", "d", status=Status.running)
    with store.session() as session:  # a run on another machine whose heartbeat stopped
        run = session.get(Run, silent)
        run.host, run.pid, run.heartbeat_at = "elsewhere", 7, datetime.now(timezone.utc) - 2 * STALE_AFTER
    for _ in range(2):  # the window's reads never fail it
        window.refresh()
        qtbot.waitUntil(lambda: window.runs_model.rowCount() == 1 and window.idle(), timeout=10_000)
    assert store.get_run(silent).status is Status.running
    status = window.runs_model.index(window.runs_model.row_of(silent), 2).data()
    assert status == "running · not responding"
    window.select_run(silent)
    assert window.mark_failed_action.isEnabled() and not window.delete_action.isEnabled()
    window.mark_failed_action.trigger()
    qtbot.waitUntil(lambda: store.get_run(silent).status is Status.failed and window.idle(), timeout=10_000)
    qtbot.waitUntil(lambda: window.runs_model.index(window.runs_model.row_of(silent), 2).data() == "failed",
                    timeout=10_000)


def test_only_other_finished_runs_are_offered_as_pareto_overlays(qtbot, window, store):
    done = _store_run(store, "done", "d")
    failed = _store_run(store, "failed", "d", status=Status.failed)
    window.refresh()
    qtbot.waitUntil(lambda: window.runs_model.rowCount() == 2 and window.idle(), timeout=10_000)
    offered = [window.pareto.overlays.item(i).data(Qt.ItemDataRole.UserRole)
               for i in range(window.pareto.overlays.count())]
    assert offered == [done] and failed not in offered


def test_help_offers_the_getting_started_steps_and_the_docs_folder(window, qtbot):
    from workbench.dialogs.getting_started import GettingStartedDialog

    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    names = [a.text() for a in help_menu.actions()]
    assert names[0] == "&Getting started" and "&About" in names and "&Documentation folder" in names
    help_menu.actions()[0].trigger()
    dialog = window.findChild(GettingStartedDialog)
    assert dialog is not None and dialog.isVisible()
    text = dialog.text.toPlainText()
    assert "New run" in text and "python main.py compress --preset pix2pix-sample" in text and "docs" in text
    dialog.close()


def test_a_running_runs_compare_view_tries_again_when_a_stage_finishes(qtbot, finished, monkeypatch):
    import workbench.views.compare_view
    from engine.errors import UserError
    from engine.events import StageFinished

    from workbench.background.worker import Worker

    settings, store, run_id, _ = finished
    # The window's model work in this process (a thread), so that this test can stand in for a facade function.
    monkeypatch.setattr(workbench.views.compare_view, "ModelProcess", Worker)
    real_preview = workbench.views.compare_view.api.preview
    monkeypatch.setattr(workbench.views.compare_view.api, "preview",
                        lambda *a, **k: (_ for _ in ()).throw(UserError(f"run {run_id} has no finished teacher "
                                                                        "stage yet")))
    window = MainWindow(settings, store)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.runs_model.rowCount() == 1, timeout=10_000)
    window.select_run(run_id)
    qtbot.waitUntil(lambda: "could not compute" in window.compare.readout.text(), timeout=REAL_WORK_MS)
    assert window.compare.result is None
    monkeypatch.setattr(workbench.views.compare_view.api, "preview", real_preview)  # the teacher is there now
    window._on_event(object(), StageFinished(run_id=run_id, stage="teacher", seconds=1.0))
    qtbot.waitUntil(lambda: window.compare.result is not None, timeout=REAL_WORK_MS)
    window.compare.worker.wait()


def test_a_restarted_window_cancels_a_live_run_it_did_not_start(qtbot, window, store, monkeypatch, tmp_path):
    """A run started by an earlier window or a terminal: Cancel (toolbar and Monitor, after confirming) reaches
    its process; a run on another machine says where and how to cancel it."""
    import os
    import socket
    import subprocess
    import sys
    from datetime import datetime, timezone

    from PySide6.QtWidgets import QMessageBox

    from engine.store.models import Run
    from tests.engine.test_liveness import _waiting_for_term

    here = _store_run(store, "from-a-terminal", "d", status=Status.running)
    remote = _store_run(store, "on-a-cluster", "d", status=Status.running)
    child, marker = _waiting_for_term(tmp_path)
    try:
        with store.session() as session:
            for run_id, host, pid in ((here, socket.gethostname(), child.pid), (remote, "gpu-node-7", 4242)):
                run = session.get(Run, run_id)
                run.host, run.pid, run.heartbeat_at = host, pid, datetime.now(timezone.utc)
        window.refresh()
        qtbot.waitUntil(lambda: window.runs_model.rowCount() == 2 and window.idle(), timeout=10_000)
        window.select_run(here)
        qtbot.waitUntil(window.idle, timeout=10_000)
        assert here not in window.processes  # not this window's process
        assert window.cancel_action.isEnabled() and window.monitor.cancel_button.isEnabled()

        asked, told = [], []
        monkeypatch.setattr(QMessageBox, "question", lambda parent, title, text, *a: asked.append(text)
                            or QMessageBox.StandardButton.No)
        window.cancel_action.trigger()
        assert "next checkpoint" in asked[-1] and child.poll() is None  # declined: nothing sent
        monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Yes)
        window.monitor.cancel_button.click()
        assert child.wait(timeout=30) == 3 and marker.read_text() == "TERM"
        qtbot.waitUntil(window.idle, timeout=10_000)
        assert f"run {here} (pid {child.pid}) stops at its next checkpoint" in window.statusBar().currentMessage()

        # The process records the stop (as a run's would): the request's words give way to what happened.
        store.mark_run(here, Status.cancelled, error="cancelled by the user")
        window.refresh()
        qtbot.waitUntil(lambda: "is cancelled" in window.statusBar().currentMessage(), timeout=10_000)

        monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text, *a: told.append(text))
        window.select_run(remote)
        qtbot.waitUntil(window.idle, timeout=10_000)
        assert window.cancel_action.isEnabled()
        window.cancel_action.trigger()
        qtbot.waitUntil(lambda: bool(told), timeout=10_000)
        assert "gpu-node-7" in told[0] and f"runs cancel {remote}" in told[0]
    finally:
        child.kill()


def test_spare_width_of_the_runs_list_goes_to_the_task_not_to_the_start_date(qtbot, settings, store):
    from PySide6.QtWidgets import QHeaderView

    _store_run(store, "a-run", "/data/horse2zebra")
    window = MainWindow(settings, store)
    qtbot.addWidget(window)
    window.resize(1600, 1000)
    window.show()
    qtbot.waitUntil(lambda: window.runs_model.rowCount() == 1 and window.idle(), timeout=10_000)
    header = window.runs_view.horizontalHeader()
    assert header.sectionResizeMode(1) == QHeaderView.ResizeMode.Stretch and not header.stretchLastSection()
    started = window.runs_model.columnCount() - 1
    widest = max(window.runs_view.sizeHintForColumn(started), header.sectionSizeHint(started))
    assert header.sectionSize(started) <= widest + 4  # as wide as its text, no wider
    assert header.sectionSize(1) > widest
