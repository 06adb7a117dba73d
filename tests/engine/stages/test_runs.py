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
    assert run_id == 1 and not run_dir(settings, 1).exists()
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
