import gc
import threading
import weakref

from PySide6.QtCore import QObject

from tests.patience import REAL_WORK_MS
from workbench.background.worker import Worker


def _allocate(count: int) -> list:
    return [[] for _ in range(count)]


def test_qt_garbage_is_collected_on_the_gui_thread_even_when_a_background_job_allocates(qtbot):
    worker = Worker()
    assert not gc.isenabled()
    gui_thread = threading.current_thread()
    collected_on = []

    # A QObject kept only by a reference cycle: only the cyclic collector frees it, in the thread it runs in.
    garbage = QObject()
    garbage.cycle = garbage
    watch = weakref.ref(garbage, lambda _: collected_on.append(threading.current_thread() is gui_thread))
    del garbage

    # Enough new containers to pass the youngest generation's threshold many times over: automatic
    # collection would run in the background thread and free the QObject there.
    many = 20 * gc.get_threshold()[0]
    done = []
    worker.done.connect(lambda job_id, result: done.append(len(result)))
    worker.submit(lambda: _allocate(many))
    qtbot.waitUntil(lambda: bool(done), timeout=REAL_WORK_MS)
    assert collected_on == []

    kept = _allocate(many)  # the GUI thread's own allocations pass the threshold; its timer collects
    qtbot.waitUntil(lambda: bool(collected_on), timeout=10_000)
    assert collected_on == [True] and watch() is None and len(kept) == many
