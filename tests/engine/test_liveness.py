"""Only a process about to act on a run fails it: readers (``runs``, the window) say a run is not responding;
``runs mark-failed`` refuses a live run; ``resume`` reaps its own run alone; ``runs delete`` is the engine's."""

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

import main
from engine.api import not_responding
from engine.errors import RunBusyError
from engine.liveness import STALE_AFTER, mark_failed, why_not_running
from engine.pipeline import create_run, execute, run_dir
from engine.stages.context import Cancelled
from engine.store import Status, open_store
from engine.store.models import Run
from tests.engine.stages.tiny import tiny_config


def _running(store, run_id, *, host="elsewhere", pid=4242, heartbeat=None):
    store.mark_run(run_id, Status.running)
    store.update_stage(run_id, "teacher", status=Status.running)
    with store.session() as session:
        run = session.get(Run, run_id)
        run.host, run.pid, run.heartbeat_at = host, pid, heartbeat


def _running_here_but_gone(store, run_id):
    """Recorded as running on this machine by a process that has ended."""
    import socket

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _running(store, run_id, host=socket.gethostname(), pid=gone.pid)


@pytest.fixture
def runs(settings):
    store = open_store(settings.resolved_store_url)
    ids = [create_run(tiny_config(name=f"run-{i}"), store, settings) for i in range(2)]
    yield store, ids
    store.close()


def test_a_remote_runs_heartbeat_is_stale_only_after_its_timer_stopped_for_stale_after():
    beat = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert why_not_running("elsewhere", 1, beat, now=beat + STALE_AFTER) is None
    reason = why_not_running("elsewhere", 1, beat, now=beat + STALE_AFTER + timedelta(minutes=1))
    assert "no heartbeat for 11 minutes" in reason


def test_readers_never_fail_a_run_they_only_list(settings, runs, capsys):
    store, (remote, _) = runs
    _running(store, remote, heartbeat=datetime.now(timezone.utc) - STALE_AFTER * 3)
    assert main.main(["--workspace", str(settings.workspace), "runs", "--json"]) == 0
    listed = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed[remote]["status"] == "running" and "no heartbeat" in listed[remote]["not_responding"]
    assert store.get_run(remote).status is Status.running  # said, not acted on
    [summary] = [r for r in store.list_runs() if r.id == remote]
    assert not_responding(summary)
    assert main.main(["--workspace", str(settings.workspace), "runs"]) == 0
    assert "running (not responding)" in capsys.readouterr().out


def test_mark_failed_refuses_a_live_run_and_fails_a_dead_one(settings, runs, capsys):
    store, (live, dead) = runs
    _running(store, live, heartbeat=datetime.now(timezone.utc))
    with pytest.raises(RunBusyError, match="cancel it instead"):
        mark_failed(store, live)
    _running_here_but_gone(store, dead)
    assert main.main(["--workspace", str(settings.workspace), "runs", "mark-failed", str(live)]) == 2
    assert "is alive" in capsys.readouterr().err
    assert main.main(["--workspace", str(settings.workspace), "runs", "mark-failed", str(dead)]) == 0
    assert f"resume with: python main.py resume {dead}" in capsys.readouterr().out
    assert store.get_run(dead).status is Status.failed and store.get_run(live).status is Status.running


def test_resume_reaps_its_own_run_and_leaves_the_others(settings, runs):
    store, (other, own) = runs
    _running(store, other, heartbeat=datetime.now(timezone.utc) - STALE_AFTER * 3)
    _running(store, own, heartbeat=datetime.now(timezone.utc) - STALE_AFTER * 3)
    with pytest.raises(Cancelled):
        execute(own, settings, store, lambda event: None, stop_after="teacher")
    assert store.get_run(own).status is Status.cancelled  # reaped, then resumed to the stop asked for
    assert store.get_run(other).status is Status.running


def test_runs_delete_removes_the_run_and_its_folder_and_refuses_a_running_one(settings, runs, capsys):
    store, (running, finished) = runs
    _running(store, running, host="elsewhere", heartbeat=datetime.now(timezone.utc))
    folder = run_dir(settings, finished)
    (folder / "teacher").mkdir(parents=True)
    (folder / "teacher" / "teacher.pt").write_bytes(b"weights")
    workspace = ["--workspace", str(settings.workspace)]
    assert main.main([*workspace, "runs", "delete", str(running)]) == 2
    assert "cancel it before deleting it" in capsys.readouterr().err
    assert main.main([*workspace, "runs", "delete", str(finished), "--keep-files"]) == 0
    assert "is kept" in capsys.readouterr().out and folder.is_dir()
    assert finished not in {r.id for r in store.list_runs()}
    third = create_run(tiny_config(name="third"), store, settings)
    assert run_dir(settings, third).is_dir()  # with its pre-flight
    assert main.main([*workspace, "runs", "delete", str(third)]) == 0
    assert not run_dir(settings, third).exists() and os.path.isdir(settings.runs_dir)


def _waiting_for_term(tmp_path):
    """A process of this machine that records SIGTERM (as a run's command line would stop at a checkpoint)."""
    marker = tmp_path / "terminated"
    code = ("import signal, sys, time\n"
            f"def stop(*_): open({str(marker)!r}, 'w').write('TERM'); sys.exit(3)\n"
            "signal.signal(signal.SIGTERM, stop)\n"
            "print('ready', flush=True)\n"
            "time.sleep(120)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    return child, marker


def test_runs_cancel_stops_a_live_run_this_command_did_not_start(settings, runs, capsys, tmp_path):
    import socket

    store, (live, _) = runs
    child, marker = _waiting_for_term(tmp_path)
    try:
        _running(store, live, host=socket.gethostname(), pid=child.pid, heartbeat=datetime.now(timezone.utc))
        assert main.main(["--workspace", str(settings.workspace), "runs", "cancel", str(live)]) == 0
        assert f"run {live} (pid {child.pid}) stops at its next checkpoint" in capsys.readouterr().out
        assert child.wait(timeout=30) == 3 and marker.read_text() == "TERM"
    finally:
        child.kill()


def test_runs_cancel_says_what_to_do_for_a_run_elsewhere_a_dead_one_and_a_stopped_one(settings, runs, capsys):
    from engine.errors import UserError
    from engine.liveness import cancel_run

    store, (remote, other) = runs
    _running(store, remote, host="gpu-node-7", pid=4242, heartbeat=datetime.now(timezone.utc))
    sent = []
    with pytest.raises(UserError, match=r"runs on the machine gpu-node-7 \(pid 4242\).*'python main.py runs "
                                        rf"cancel {remote}'.*kill -TERM 4242 on gpu-node-7"):
        cancel_run(store, remote, signal_process=lambda *a: sent.append(a))
    assert not sent  # nothing signalled on this machine with that machine's pid
    with pytest.raises(UserError, match="is pending, not running: nothing to cancel"):
        cancel_run(store, other)
    _running_here_but_gone(store, other)
    assert main.main(["--workspace", str(settings.workspace), "runs", "cancel", str(other)]) == 2
    assert f"is gone; mark it failed instead (python main.py runs mark-failed {other})" in capsys.readouterr().err
