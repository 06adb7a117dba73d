"""A form built from a family's model options (a pydantic model): one field per option, with its
description as the tooltip, so a new family's options appear in the new-run dialog without GUI code."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QWidget

from workbench.widgets.checked_spin import CheckedDoubleSpinBox, CheckedSpinBox


def _bounds(info) -> tuple[float | None, float | None]:
    low = high = None
    for item in info.metadata:
        low = getattr(item, "ge", None) if getattr(item, "ge", None) is not None else low
        high = getattr(item, "le", None) if getattr(item, "le", None) is not None else high
    return low, high


class OptionsForm(QWidget):
    changed = Signal()

    def __init__(self, model: type[BaseModel], parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.widgets: dict[str, QWidget] = {}
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        for name, info in model.model_fields.items():
            widget = self._widget(info, name.replace("_", " "))
            widget.setObjectName(f"option_{name}")
            widget.setToolTip(info.description or name)
            self.widgets[name] = widget
            form.addRow(name.replace("_", " "), widget)
        self.set_values({})

    def _widget(self, info, title: str) -> QWidget:
        annotation = info.annotation
        if typing.get_origin(annotation) is typing.Literal:
            box = QComboBox()
            box.addItems([str(v) for v in typing.get_args(annotation)])
            box.currentTextChanged.connect(self.changed)
            return box
        if annotation is bool:
            check = QCheckBox()
            check.toggled.connect(self.changed)
            return check
        low, high = _bounds(info)
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        suffix = f" {extra['unit']}" if extra.get("unit") else ""  # the family declares units; none are assumed
        if annotation is int:
            spin = CheckedSpinBox(f"Model {title}")
            spin.field = "model"
            spin.setSuffix(suffix)
            spin.setRange(int(low if low is not None else -1_000_000), int(high if high is not None else 1_000_000))
            spin.valueChanged.connect(self.changed)
            return spin
        spin = CheckedDoubleSpinBox(f"Model {title}")
        spin.field = "model"
        spin.setSuffix(suffix)
        spin.setDecimals(4)
        spin.setRange(low if low is not None else -1e9, high if high is not None else 1e9)
        spin.valueChanged.connect(self.changed)
        return spin

    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values``, the model's defaults for the options not given."""
        for name, info in self.model.model_fields.items():
            value = values.get(name, info.default)
            widget = self.widgets[name]
            widget.blockSignals(True)
            if isinstance(widget, QComboBox):
                widget.setCurrentText(str(value))
            elif isinstance(widget, QCheckBox):
                widget.setChecked(bool(value))
            else:
                widget.setValue(value)
            widget.blockSignals(False)

    def values(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, widget in self.widgets.items():
            if isinstance(widget, QComboBox):
                result[name] = widget.currentText()
            elif isinstance(widget, QCheckBox):
                result[name] = widget.isChecked()
            else:
                result[name] = widget.value()
        return result
