"""The views' model work (previews, latency readings) in a child process, not on a thread of the window's.

Loading a run's models, exporting one to ONNX and creating ONNX Runtime and OpenVINO sessions run long stretches
of C code that hold Python's GIL: on a thread of this process they froze the window's event loop for 1-2 s each
time (a latency reading, the first preview). In a child process they cannot. One child serves every view, started
on the first job (it imports the engine once, a few seconds) and kept for the next; a child that dies (out of
memory, killed) is reported as the job's failure and replaced by the next job.

``submit(function, *args)`` takes a function of the engine's facade that opens what it needs itself (a store by
its URL, a run's models from its folder): it must be importable by name, with picklable arguments and result. The
child is started with ``spawn``, which imports the parent's main script: a script that opens the window must do so
under ``if __name__ == "__main__":`` (as main.py and the benchmarks do).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import itertools
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

log = logging.getLogger(__name__)

#: How often finished jobs are collected (their results then reach the views as signals on the GUI thread).
POLL_MS = 20

_executor: concurrent.futures.ProcessPoolExecutor | None = None


def _shared_executor() -> concurrent.futures.ProcessPoolExecutor:
    global _executor
    if _executor is None:
        # spawn: a fork of a process with Qt and torch threads running can deadlock in the child.
        _executor = concurrent.futures.ProcessPoolExecutor(max_workers=1,
                                                           mp_context=multiprocessing.get_context("spawn"))
    return _executor


def _replace_broken() -> None:
    global _executor
    if _executor is not None:
        _executor.shutdown(wait=False, cancel_futures=True)
    _executor = None


def _imported() -> bool:
    import engine.api  # noqa: F401 (what every job needs: torch and the engine)

    return True


@atexit.register
def shutdown() -> None:
    """End the child (at exit, or when the window closes)."""
    global _executor
    if _executor is not None:
        _executor.shutdown(wait=True, cancel_futures=True)
        _executor = None


class ModelProcess(QObject):
    """``submit(function, *args)`` runs ``function(*args)`` in the model process; ``done(id, result)`` /
    ``failed(id, message)`` come back on the GUI thread (the interface of ``workbench.background.worker.Worker``)."""

    done = Signal(int, object)
    failed = Signal(int, str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._futures: dict[int, concurrent.futures.Future] = {}
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._collect)

    def submit(self, function: Callable[..., Any], *args: Any) -> int:
        job_id = next(self._ids)
        try:
            self._futures[job_id] = _shared_executor().submit(function, *args)
        except (BrokenProcessPool, RuntimeError):  # the child died since the last job: a new one
            _replace_broken()
            self._futures[job_id] = _shared_executor().submit(function, *args)
        self._poll.start()
        return job_id

    def warm_up(self) -> None:
        """Start the child now (it imports the engine: seconds), so that the first real job does not wait for it."""
        if _executor is None:
            _shared_executor().submit(_imported)

    def busy(self) -> bool:
        return bool(self._futures)

    def _collect(self) -> None:
        for job_id, future in list(self._futures.items()):
            if not future.done():
                continue
            del self._futures[job_id]
            try:
                result = future.result()
            except BrokenProcessPool:
                _replace_broken()
                self.failed.emit(job_id, "the process that runs the models ended unexpectedly (out of memory?); "
                                         "try again")
            except Exception as exc:  # the job's own error, reported to the view (never raised into Qt)
                log.debug("model job failed", exc_info=exc)
                self.failed.emit(job_id, str(exc) or type(exc).__name__)
            else:
                self.done.emit(job_id, result)
        if not self._futures:
            self._poll.stop()

    def wait(self, msecs: int = 60_000) -> bool:
        """Wait for this object's jobs (their results are then delivered by the next collection)."""
        if not self._futures:
            return True
        _, pending = concurrent.futures.wait(list(self._futures.values()), timeout=msecs / 1000)
        self._collect()
        return not pending
