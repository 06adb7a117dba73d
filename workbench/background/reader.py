"""Store reads off the GUI thread: a view asks for a read by key and gets the result of its latest request
for that key back on the GUI thread. Reads whose cost grows with the data (runs, candidates, series) go
through here, so the event loop never waits on the store; a result that a newer request has made stale
(another run selected meanwhile, say) is dropped, never shown."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from workbench.background.worker import Worker

log = logging.getLogger(__name__)


class StoreReader(QObject):
    """``read(key, fn, on_result)``: ``fn()`` runs in a background thread; ``on_result(value)`` runs on the
    GUI thread, unless a newer ``read`` with the same key came meanwhile: then only the newest request is
    run next and delivered. ``failed(key, message)`` reports a read that raised."""

    failed = Signal(str, str)

    def __init__(self, parent: QObject | None = None, threads: int = 2):
        super().__init__(parent)
        self.worker = Worker(self, threads=threads)  # SQLite in WAL mode serves readers in parallel
        self.worker.done.connect(self._done)
        self.worker.failed.connect(self._failed)
        self._running: dict[str, int] = {}  # key -> job id
        self._keys: dict[int, str] = {}
        self._callbacks: dict[int, Callable[[Any], None]] = {}
        self._queued: dict[str, tuple[Callable[[], Any], Callable[[Any], None]]] = {}

    def read(self, key: str, function: Callable[[], Any], on_result: Callable[[Any], None]) -> None:
        if key in self._running:
            self._queued[key] = (function, on_result)  # replaces an older queued request
            return
        self._start(key, function, on_result)

    def forget(self, key: str) -> None:
        """Drop what is pending for ``key``: nothing more is delivered for it until the next ``read``."""
        self._queued.pop(key, None)
        job = self._running.get(key)
        if job is not None:
            self._callbacks.pop(job, None)

    def busy(self, key: str | None = None) -> bool:
        return bool(self._running) if key is None else key in self._running or key in self._queued

    def wait(self, msecs: int = 30_000) -> bool:
        return self.worker.wait(msecs)

    def _start(self, key: str, function: Callable[[], Any], on_result: Callable[[Any], None]) -> None:
        job = self.worker.submit(function)
        self._running[key], self._keys[job], self._callbacks[job] = job, key, on_result

    def _finish(self, job: int) -> tuple[str, Callable[[Any], None] | None, bool]:
        key = self._keys.pop(job)
        callback = self._callbacks.pop(job, None)
        del self._running[key]
        queued = self._queued.pop(key, None)
        if queued is not None:
            self._start(key, *queued)
        return key, callback, queued is not None

    def _done(self, job: int, result: Any) -> None:
        key, callback, stale = self._finish(job)
        if callback is not None and not stale:
            callback(result)

    def _failed(self, job: int, message: str) -> None:
        key, callback, stale = self._finish(job)
        if callback is not None and not stale:
            log.warning("reading %s from the store failed: %s", key, message)
            self.failed.emit(key, message)
