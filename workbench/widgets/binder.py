"""Binds the fields of a plain-data form (a frozen dataclass, e.g. ``workbench.session.new_run_form.NewRunForm``) to the
widgets that show them: one line per field says which widget holds it, and the form is drawn into the widgets
and read back from them by the same table, so adding a setting to a dialog is its form field and one binding.

Drawing blocks the widgets' signals (the dialog checks the whole form once afterwards, not once per field), and
happens in the order the bindings were made (a family before the sample choices that depend on it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from PySide6.QtWidgets import QAbstractButton, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox, QWidget


@dataclass(frozen=True)
class Binding:
    field: str
    read: Callable[[], Any]
    write: Callable[[Any], None]
    widgets: tuple[QWidget, ...]


class FormBinder:
    def __init__(self) -> None:
        self.bindings: list[Binding] = []

    def bind(self, field: str, read: Callable[[], Any], write: Callable[[Any], None], *widgets: QWidget) -> None:
        """A field read and written by functions of its own (a choice between two widgets, say)."""
        self.bindings.append(Binding(field, read, write, widgets))

    def value(self, field: str, widget: QSpinBox | QDoubleSpinBox) -> None:
        self.bind(field, widget.value, widget.setValue, widget)

    def text(self, field: str, widget: QLineEdit) -> None:
        self.bind(field, widget.text, widget.setText, widget)

    def choice(self, field: str, widget: QComboBox) -> None:
        self.bind(field, widget.currentText, widget.setCurrentText, widget)

    def option(self, field: str, buttons: dict[Any, QAbstractButton]) -> None:
        """A field whose values are chosen by checkable buttons, one per value (none checked yet, as while the
        dialog is being built: the last)."""
        def read() -> Any:
            return next((value for value, button in buttons.items() if button.isChecked()), list(buttons)[-1])

        self.bind(field, read, lambda value: buttons[value].setChecked(True), *buttons.values())

    def show(self, form: Any) -> None:
        """Draw ``form`` into the widgets, their signals blocked."""
        widgets = {widget for binding in self.bindings for widget in binding.widgets}
        blocked = {widget: widget.blockSignals(True) for widget in widgets}
        try:
            for binding in self.bindings:
                binding.write(getattr(form, binding.field))
        finally:
            for widget, was in blocked.items():
                widget.blockSignals(was)

    def read(self, form_type: type, **given: Any) -> Any:
        """A ``form_type`` of what the widgets hold (``given``: fields that no widget holds)."""
        values = {binding.field: binding.read() for binding in self.bindings}
        unbound = {f.name for f in fields(form_type)} - set(values) - set(given)
        if unbound:
            raise TypeError(f"{form_type.__name__} fields without a widget: {', '.join(sorted(unbound))}")
        return form_type(**values, **given)
