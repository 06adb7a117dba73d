"""Whether a run recorded as running still has a process, and the operations that act on that answer.

A running process writes its heartbeat on a timer (``engine.recorder.Heartbeat``), whatever its stage is doing.
Only a process about to act on a run marks it failed: ``resume`` (for its own run) and a user's explicit
``mark failed`` (``python main.py runs mark-failed RUN``, the window's context menu). Readers (the runs list,
``runs``) only say that a run is not responding, so that a window on a shared store never fails a live run on
another machine in a long step-less phase.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from engine.errors import RunBusyError, UserError
from engine.store import Status, Store

#: A run on another host whose heartbeat is older than this is considered dead (the heartbeat's timer writes
#: every few seconds, so ten minutes is many missed beats, not a slow phase).
STALE_AFTER = timedelta(minutes=10)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def why_not_running(host: str | None, pid: int | None, heartbeat_at: datetime | None,
                    now: datetime | None = None, stale_after: timedelta = STALE_AFTER) -> str | None:
    """Why a run recorded as running has no process any more (None: it looks alive). On this host its pid is
    asked; elsewhere its heartbeat must be younger than ``stale_after``."""
    if host == socket.gethostname() and pid:
        return None if _pid_alive(pid) else f"its process (pid {pid} on {host}) is gone"
    now = now or datetime.now(timezone.utc)
    if heartbeat_at is not None and heartbeat_at.tzinfo is None:
        heartbeat_at = heartbeat_at.replace(tzinfo=timezone.utc)
    if heartbeat_at is None:
        return f"its process (pid {pid} on {host}) never wrote a heartbeat"
    age = now - heartbeat_at
    if age <= stale_after:
        return None
    return f"its process (pid {pid} on {host}) wrote no heartbeat for {int(age.total_seconds() // 60)} minutes"


def not_responding(run: Any) -> str | None:
    """Why a run listed as running (a ``RunSummary``) seems to have no process; None when it looks alive or is
    not running. For readers: said, never acted on."""
    return why_not_running(run.host, run.pid, run.heartbeat_at) if run.status == "running" else None


def _fail(store: Store, run: Any, reason: str) -> None:
    message = f"{reason}: it stopped without finishing; resume with: python main.py resume {run.id}"
    for stage in run.stages:
        if stage.status is Status.running:
            store.update_stage(run.id, stage.name, status=Status.failed, error=message)
    store.mark_run(run.id, Status.failed, error=message)


def fail_dead_runs(store: Store, stale_after: timedelta = STALE_AFTER, now: datetime | None = None,
                   run_ids: Iterable[int] | None = None) -> list[int]:
    """Mark failed those of ``run_ids`` (default: every run recorded as running) whose process is gone. For a
    process about to act on them (``resume``), not for readers."""
    wanted = None if run_ids is None else set(run_ids)
    failed = []
    for run_id in store.running_run_ids():
        if wanted is not None and run_id not in wanted:
            continue
        run = store.get_run(run_id)
        reason = why_not_running(run.host, run.pid, run.heartbeat_at, now, stale_after)
        if reason is not None:
            _fail(store, run, reason)
            failed.append(run.id)
    return failed


def mark_failed(store: Store, run_id: int, now: datetime | None = None, folder: Path | None = None) -> str:
    """A user's explicit "mark failed" of a run whose process is gone; refused while it looks alive (cancel it
    instead). Returns what was done, for the user."""
    _refuse_if_held(run_id, folder, "mark")
    run = store.get_run(run_id)
    if run.status is not Status.running:
        return f"run {run_id} is {run.status.value}, not running: nothing to mark"
    reason = why_not_running(run.host, run.pid, run.heartbeat_at, now)
    if reason is None:
        raise RunBusyError(f"run {run_id} is alive (pid {run.pid} on {run.host}, heartbeat fresh): cancel it "
                           "instead of marking it failed")
    _fail(store, run, reason)
    return f"run {run_id} marked failed ({reason}); resume with: python main.py resume {run_id}"


def _hold_paths(folder: Path) -> tuple[Path, Path]:
    """The lock file every command working on the run in ``folder`` holds shared, and the folder of notes saying
    who holds it (beside the runs' folders: the run's own folder is what a delete removes)."""
    holds = folder.parent / ".holds"
    return holds / f"{folder.name}.lock", holds / folder.name


@contextmanager
def hold_run(folder: Path, what: str) -> Iterator[None]:
    """Hold the run in ``folder`` while ``what`` (``export``, say) works on it: ``runs delete`` and
    ``runs mark-failed`` on this machine refuse meanwhile (the run's own process holds it by its status)."""
    try:
        import fcntl
    except ImportError:  # Windows: no shared file locks here; the run is not held
        yield
        return

    lock, notes = _hold_paths(folder)
    notes.mkdir(parents=True, exist_ok=True)
    note = notes / f"{os.getpid()}"
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        note.write_text(what)
        try:
            yield
        finally:
            note.unlink(missing_ok=True)
            fcntl.flock(handle, fcntl.LOCK_UN)


def held_by(folder: Path) -> list[str]:
    """Who holds the run in ``folder`` now ("export (pid 1234)"); empty when nothing does. Asked without waiting:
    an exclusive lock that cannot be taken at once means a holder."""
    try:
        import fcntl
    except ImportError:
        return []

    lock, notes = _hold_paths(folder)
    if not lock.is_file():
        return []
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holders = [f"{note.read_text()} (pid {note.name})" for note in sorted(notes.glob("*")) if note.is_file()
                       and _pid_alive(int(note.name))] if notes.is_dir() else []
            return holders or ["another command of this machine"]
        fcntl.flock(handle, fcntl.LOCK_UN)
    return []


def _refuse_if_held(run_id: int, folder: Path | None, action: str) -> None:
    if folder is not None and (holders := held_by(folder)):
        raise RunBusyError(f"run {run_id} is in use by {', '.join(holders)}: {action} it once that has ended")


def cancel_run(store: Store, run_id: int, signal_process=None) -> str:
    """Ask a live run to stop at its next checkpoint (SIGTERM, as Ctrl-C or the window's Cancel), whichever
    program started it: a window that did not start it, or a terminal. Refused, with what to do, when the run
    is not running, runs on another machine (a signal cannot reach it from here) or its process is gone.
    Returns what was done, for the user. ``signal_process(pid, signum)`` defaults to ``os.kill`` (tests)."""
    import signal

    run = store.get_run(run_id)
    if run.status is not Status.running:
        raise UserError(f"run {run_id} is {run.status.value}, not running: nothing to cancel")
    if run.host != socket.gethostname():
        raise UserError(f"run {run_id} runs on the machine {run.host} (pid {run.pid}), not on this one "
                        f"({socket.gethostname()}): cancel it there with 'python main.py runs cancel {run_id}' "
                        f"(or kill -TERM {run.pid} on {run.host}); it stops at its next checkpoint")
    reason = why_not_running(run.host, run.pid, run.heartbeat_at)
    if reason is not None or not run.pid:
        raise UserError(f"run {run_id} cannot be cancelled: {reason or 'it recorded no process'}; mark it failed "
                        f"instead (python main.py runs mark-failed {run_id}) and resume it later")
    try:
        (signal_process or os.kill)(run.pid, signal.SIGTERM)
    except PermissionError as exc:
        raise UserError(f"run {run_id} (pid {run.pid}) belongs to another user of this machine: cancel it as that "
                        f"user (python main.py runs cancel {run_id})") from exc
    except ProcessLookupError as exc:
        raise UserError(f"run {run_id}'s process (pid {run.pid}) ended meanwhile: refresh the runs list") from exc
    return f"run {run_id} (pid {run.pid}) stops at its next checkpoint; resume it later with: python main.py resume {run_id}"


def delete_run(store: Store, run_id: int, folder: Path, keep_files: bool = False) -> str:
    """Delete a run from the store and, unless ``keep_files``, its folder; a running run is refused (the store
    says so), and so is one another command of this machine works on (an export, say). Returns what was deleted,
    for the user."""
    _refuse_if_held(run_id, folder, "delete")
    store.delete_run(run_id)
    if keep_files or not folder.is_dir():
        return f"deleted run {run_id}" + (f"; its folder {folder} is kept" if folder.is_dir() else "")
    shutil.rmtree(folder)
    return f"deleted run {run_id} and its folder {folder}"
