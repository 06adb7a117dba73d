"""Python's cyclic garbage collector runs in whichever thread happens to allocate past its threshold. Where
that is a background thread and the garbage holds Qt objects (the wrappers of a closed dialog, say), Qt
destroys them off the GUI thread, and the process crashes: seen in CI as a segmentation fault while a
background job built a teacher. So once the workbench has background threads, automatic collection is off and
the GUI thread collects on a timer, by the collector's own thresholds."""

from __future__ import annotations

import gc
import logging

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, QTimer

log = logging.getLogger(__name__)

_INTERVAL_MS = 500
_collector: GuiThreadCollector | None = None


class GuiThreadCollector(QObject):
    def __init__(self, parent: QObject):
        super().__init__(parent)
        self.thresholds = tuple(t or 1 for t in gc.get_threshold())
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.collect)
        self.timer.start(_INTERVAL_MS)

    def collect(self) -> int:
        """The generations past their thresholds, youngest first, as the automatic collector would."""
        counts = gc.get_count()
        generation = -1
        for g in range(3):
            if counts[g] <= self.thresholds[g]:
                break
            generation = g
        return gc.collect(generation) if generation >= 0 else 0


def collect_on_gui_thread() -> GuiThreadCollector:
    """Installs the collector once per process (it lives as long as the application); the caller must be on
    the GUI thread, with a QApplication."""
    global _collector
    app = QCoreApplication.instance()
    if app is None:
        raise RuntimeError("collect_on_gui_thread needs a QApplication")
    if _collector is None or not shiboken6.isValid(_collector):  # a new QApplication needs a new timer
        _collector = GuiThreadCollector(app)
        log.debug("automatic garbage collection moved to the GUI thread (thresholds %s)", _collector.thresholds)
    return _collector
