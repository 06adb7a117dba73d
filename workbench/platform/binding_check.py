"""Whether the Qt binding keeps Python's reference counts exact when signals are emitted.

PySide6 / shiboken6 6.12.0 lowers the reference count of every Python object passed through a queued or direct
``Signal.emit()`` by one: ``True`` per argument-less emit, ``None`` per emitted ``None``, about three of ``None``
per finished pool job of ``workbench.background.worker``. Before Python 3.12 ``True``, ``False`` and ``None`` are ordinary
objects, so after some thousands of emits one of them is deallocated and the interpreter aborts
(``Fatal Python error: none_dealloc``): the window vanished after 38 minutes of ordinary use. pyproject.toml
excludes those releases; this module measures the defect itself, so that the window refuses a binding with it
(one line naming the fix, not a black screen later) and the tests fail on one.
"""

from __future__ import annotations

import gc
import sys
from dataclasses import dataclass

#: The singletons whose counts a defective binding lowers (immortal from Python 3.12: their counts never move).
WATCHED = {"True": True, "False": False, "None": None}


@dataclass(frozen=True)
class Drift:
    """How far each watched count moved over ``emits`` emits of each kind (0 everywhere on a sound binding)."""

    emits: int
    direct: dict[str, int]  # emitted on this thread, connected directly
    pooled: dict[str, int]  # emitted from a pool thread, delivered through the event loop

    @property
    def worst(self) -> int:
        return max(abs(v) for v in (*self.direct.values(), *self.pooled.values()))

    def describe(self) -> str:
        return (f"after {self.emits} emits, direct: " + ", ".join(f"{k} {v:+d}" for k, v in self.direct.items())
                + "; from a pool thread: " + ", ".join(f"{k} {v:+d}" for k, v in self.pooled.items()))


def _counts() -> dict[str, int]:
    return {name: sys.getrefcount(value) for name, value in WATCHED.items()}


def _delta(before: dict[str, int]) -> dict[str, int]:
    after = _counts()
    return {name: after[name] - before[name] for name in before}


def measure(emits: int = 200, jobs: int | None = None) -> Drift:
    """See ``_measure``; the garbage collector is held meanwhile (a collection that frees objects holding
    None would move its count by far more than the emits)."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        return _measure(emits, jobs)
    finally:
        if was_enabled:
            gc.enable()


def _measure(emits: int, jobs: int | None) -> Drift:
    """Emit connected signals ``emits`` times each (no argument, a bool, None) on this thread, then run ``jobs``
    pool jobs that emit their results back through the event loop as the window's worker does, and return how
    the counts of True, False and None moved. Needs a Q(Core)Application."""
    from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QRunnable, QThreadPool, QTimer, Signal

    class Emitter(QObject):
        bare = Signal()
        flag = Signal(bool)
        anything = Signal(object)
        done = Signal(int, object)

    received = [0]

    def count(*_: object) -> None:
        received[0] += 1

    emitter = Emitter()
    for signal in (emitter.bare, emitter.flag, emitter.anything):
        signal.connect(count)
    # One of each first: a first emit sets up the binding's caches, which hold references of their own.
    emitter.bare.emit()
    emitter.flag.emit(True)
    emitter.anything.emit(None)
    before = _counts()
    for i in range(emits):
        emitter.bare.emit()
        emitter.flag.emit(i % 2 == 0)
        emitter.anything.emit(None)
    direct = _delta(before)
    _give_back(direct)

    jobs = emits if jobs is None else jobs
    receiver = Emitter()
    finished = [0]
    loop = QEventLoop()

    def job_done(_job: int, _result: object) -> None:
        finished[0] += 1
        if finished[0] == jobs:
            loop.quit()

    receiver.done.connect(job_done)  # queued: emitted on a pool thread, delivered on this one

    class Job(QRunnable):
        def __init__(self, number: int):
            super().__init__()
            self.number = number

        def run(self) -> None:
            receiver.done.emit(self.number, None)

    pool = QThreadPool()
    pool.setMaxThreadCount(1)
    pool.setExpiryTimeout(-1)  # one thread for every job: a thread's start and end move None's count too
    pool.start(lambda: None)  # ... so it is started before the counts are taken
    pool.waitForDone()
    before = _counts()
    if jobs:
        for number in range(jobs):
            pool.start(Job(number))
        QTimer.singleShot(60_000, loop.quit)  # never hang a start-up or a test on a lost signal
        loop.exec()
    pool.waitForDone()
    QCoreApplication.processEvents()
    pooled = _delta(before)
    _give_back(pooled)
    return Drift(emits, direct, pooled)


def _give_back(delta: dict[str, int]) -> None:
    """Restore the references a defective binding took (a sound one takes none), so that finding the defect
    does not itself end in the abort at exit."""
    import ctypes

    for name, moved in delta.items():
        for _ in range(-moved if moved < 0 else 0):
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(WATCHED[name]))


def binding_version() -> str:
    import PySide6
    import shiboken6

    return f"PySide6 {PySide6.__version__} (shiboken6 {shiboken6.__version__})"


def problem(emits: int = 32) -> str | None:
    """One line for a user when this binding corrupts reference counts (None when it does not). A defective
    binding moves a count by one per emitted object (here 48 of True's), a sound one not at all on this thread
    (pool threads' bookkeeping moves None's by a few, so they are not judged here). Few emits: this runs as the
    window starts, and on a defective binding each one brings the abort nearer."""
    drift = measure(emits, jobs=0)
    if max(abs(v) for v in drift.direct.values()) < emits // 4:
        return None
    return (f"error: {binding_version()} corrupts Python's reference counts when Qt signals are emitted "
            f"({drift.describe()}); the window would abort after some minutes. Install a release without the "
            "defect: pip install 'pyside6-essentials<6.12' (the versions pyproject.toml allows); every command "
            "works without the window (python main.py --help)")
