"""Background work for the views (previews, latency): a thread pool whose results come back to the GUI
thread as Qt signals, so the window never waits on a model."""

from __future__ import annotations

import functools
import itertools
import logging
import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from workbench.platform.gui_gc import collect_on_gui_thread

log = logging.getLogger(__name__)

_workers: weakref.WeakSet[Worker] = weakref.WeakSet()


def wait_for_all(msecs: int = 60_000) -> bool:
    """Wait for every worker's jobs: before the interpreter ends, a job still running Python on a pool thread
    aborts the process."""
    return all(worker.wait(msecs) for worker in list(_workers))


class _Emitter(QObject):
    done = Signal(int, object)
    failed = Signal(int, str)


class _Job(QRunnable):
    def __init__(self, job_id: int, function: Callable[[], Any], emitter: _Emitter):
        super().__init__()
        self.job_id, self.function, self.emitter = job_id, function, emitter

    def run(self) -> None:
        try:
            result = self.function()
        except Exception as exc:  # reported to the view, never raised into Qt's thread pool
            log.debug("background job failed", exc_info=True)
            self.emitter.failed.emit(self.job_id, str(exc) or type(exc).__name__)
        else:
            self.emitter.done.emit(self.job_id, result)


class Worker(QObject):
    """``submit(fn)`` runs ``fn`` off the GUI thread; ``done(id, result)`` / ``failed(id, message)``."""

    done = Signal(int, object)
    failed = Signal(int, str)

    def __init__(self, parent: QObject | None = None, threads: int = 1):
        super().__init__(parent)
        collect_on_gui_thread()  # from now on Python runs off the GUI thread too
        self.pool = QThreadPool(self)
        # Model work is CPU-bound: one job at a time keeps the UI responsive.
        self.pool.setMaxThreadCount(threads)
        self._ids = itertools.count(1)
        self._emitter = _Emitter()
        self._emitter.done.connect(self.done)
        self._emitter.failed.connect(self.failed)
        _workers.add(self)

    def submit(self, function: Callable[..., Any], *args: Any) -> int:
        job_id = next(self._ids)
        self.pool.start(_Job(job_id, functools.partial(function, *args), self._emitter))
        return job_id

    def wait(self, msecs: int = 60_000) -> bool:
        try:
            return self.pool.waitForDone(msecs)
        except RuntimeError:  # its Qt side already deleted (with the view that owned it): nothing runs
            return True
