"""The latency backend choice the compare view and the new-run dialog share: every backend of the engine's one
latency protocol, those this machine cannot run greyed out with the reason as their tooltip."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox

from engine.api import LATENCY_BACKENDS, backend_unavailable


def backend_combo(current: str = "pytorch") -> QComboBox:
    combo = QComboBox()
    combo.addItems(list(LATENCY_BACKENDS))
    model = combo.model()
    assert isinstance(model, QStandardItemModel)
    for row, backend in enumerate(LATENCY_BACKENDS):
        reason = backend_unavailable(backend)
        if reason:
            item = model.item(row)
            item.setEnabled(False)
            item.setData(reason, Qt.ItemDataRole.ToolTipRole)
    if current in LATENCY_BACKENDS and not backend_unavailable(current):
        combo.setCurrentText(current)
    return combo
