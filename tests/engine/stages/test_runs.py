import os
import subprocess
import sys

from engine.pipeline import create_run, fail_dead_runs, run_dir
from engine.store import Status, open_store
from tests.engine.stages.tiny import tiny_config


def test_a_new_run_never_inherits_the_folder_of_an_earlier_stores_run(settings):
    leftover = run_dir(settings, 1) / "teacher"
    leftover.mkdir(parents=True)
    (leftover / "checkpoint.pt").write_bytes(b"old")
    store = open_store(settings.resolved_store_url)
    run_id = create_run(tiny_config(), store, settings)
    store.close()
    # The new run's folder holds only its pre-flight: nothing of the earlier run's.
    assert run_id == 1 and [p.name for p in run_dir(settings, 1).iterdir()] == ["preflight.json"]
    [moved] = settings.runs_dir.glob("00001.stale-*")
    assert (moved / "teacher" / "checkpoint.pt").read_bytes() == b"old"


def test_a_run_whose_process_died_is_marked_failed_not_left_running(settings):
    store = open_store(settings.resolved_store_url)
    run_id = create_run(tiny_config(), store, settings)
    store.mark_run(run_id, Status.running)
    store.update_stage(run_id, "teacher", status=Status.running)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    from engine.store.models import Run
    with store.session() as session:
        session.get(Run, run_id).pid = dead.pid
    assert fail_dead_runs(store) == [run_id]
    run = store.get_run(run_id)
    assert run.status is Status.failed and f"resume with: python main.py resume {run_id}" in run.error
    assert run.stages[0].status is Status.failed
    store.mark_run(run_id, Status.running)  # this process is alive: a run it records as its own is live
    with store.session() as session:
        session.get(Run, run_id).pid = os.getppid()
    assert fail_dead_runs(store) == []
    store.close()


def test_stop_after_a_stage_keeps_it_and_resume_continues(settings):
    import pytest

    from engine.pipeline import execute
    from engine.stages.context import Cancelled

    store = open_store(settings.resolved_store_url)
    run_id = create_run(tiny_config("pix2pix", supernet={"steps": 2}, finetune={"steps": 0}, export={"variants": []}),
                        store, settings)
    with pytest.raises(Cancelled, match="stopped after teacher as asked"):
        execute(run_id, settings, store, lambda event: None, stop_after="teacher")
    run = store.get_run(run_id)
    assert run.status is Status.cancelled
    assert [s.status for s in run.stages][:2] == [Status.finished, Status.pending]
    assert (run_dir(settings, run_id) / "teacher" / "teacher.pt").is_file()
    summary = execute(run_id, settings, store, lambda event: None)
    assert summary["run_id"] == run_id and store.get_run(run_id).status is Status.finished
    store.close()


def test_a_cancel_that_arrives_as_a_stage_ends_is_honoured_before_the_next_one_and_logged(settings):
    """The search checks its cancel flag between rounds, so a cancel sent as its last round ended was seen by no
    check of the search: the next stage boundary stops the run (before, fine-tuning and export ran)."""
    import pytest

    from engine.pipeline import execute
    from engine.stages.context import Cancelled

    store = open_store(settings.resolved_store_url)
    run_id = create_run(tiny_config("pix2pix", supernet={"steps": 2}, finetune={"steps": 2}, export={"variants": []}),
                        store, settings)
    folder = run_dir(settings, run_id)
    cancel_once_searched = lambda: (folder / "search" / "result.json").is_file()  # noqa: E731
    with pytest.raises(Cancelled, match="stopped before finetune as asked; continue with: python main.py resume"):
        execute(run_id, settings, store, lambda event: None, cancel_requested=cancel_once_searched)
    run = store.get_run(run_id)
    assert run.status is Status.cancelled
    assert [s.status for s in run.stages][2:] == [Status.finished, Status.cancelled, Status.pending]
    assert not (folder / "finetune" / "result.json").exists()
    assert any("stopped before finetune as asked" in text for *_, text in store.log_lines(run_id))
    assert execute(run_id, settings, store, lambda event: None)["run_id"] == run_id
    store.close()


def test_a_stop_asked_during_int8_accuracy_control_cancels_the_export_as_any_stopped_stage(settings, monkeypatch):
    """NNCF's accuracy control cannot be interrupted from outside; it asks the run's cancel flag before each of its
    evaluations, and the export stage ends as any stopped stage does (resume runs it again)."""
    import pytest

    from engine.openvino_int8 import QuantisationStopped
    from engine.pipeline import execute
    from engine.stages import export as export_stage
    from engine.stages.context import Cancelled

    store = open_store(settings.resolved_store_url)
    config = tiny_config("pix2pix", supernet={"steps": 2}, finetune={"steps": 2},
                         export={"variants": ["openvino_int8"], "latency_time_cap_s": 1})
    run_id = create_run(config, store, settings)
    asked = []

    def stopped_inside(*args, control=None, **kwargs):
        asked.append(control.stop_requested())  # the run's own flag reaches accuracy control
        raise QuantisationStopped("stopped during INT8 accuracy control, as asked")

    monkeypatch.setattr(export_stage, "build_variants",
                        lambda *args: stopped_inside(*args[:7], control=args[7]))
    with pytest.raises(Cancelled, match="export stopped during INT8 accuracy control, as asked; resume with: "
                                        "python main.py resume"):
        execute(run_id, settings, store, lambda event: None, cancel_requested=lambda: True if asked else False)
    run = store.get_run(run_id)
    assert asked == [False] and run.status is Status.cancelled
    assert [s.status for s in run.stages][-2:] == [Status.finished, Status.cancelled]  # resume runs the export again
    store.close()
