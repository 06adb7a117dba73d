"""Number fields that say why they refused what was typed, instead of silently dropping a key ("-" in a field
that cannot be negative) or putting back the previous value on leaving the field (0 where the least is 1)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox


class _Refusing:
    """Mixed into a spin box: ``refusal`` holds the last refused input in words (empty once an accepted value is
    typed), and ``refused`` carries it each time it changes."""

    refused: Signal

    def _setup_refusal(self, title: str) -> None:
        self.title = title
        self.field = ""  # the configuration field it sets, where the window shows its problems
        self.refusal = ""
        self._pending = ""  # typed but not yet a value (below the least allowed, say): refused if left so
        self.lineEdit().textEdited.connect(self._edited)
        self.editingFinished.connect(self._finished)

    def _bounds(self) -> str:
        kind = "whole numbers" if isinstance(self, QSpinBox) else "numbers"
        low, high = self.textFromValue(self.minimum()), self.textFromValue(self.maximum())
        unit = self.suffix().strip()
        return f"{kind} from {low} to {high}" + (f", in {unit}" if unit else "")

    def _typed(self, text: str) -> str:
        return text.removeprefix(self.prefix()).removesuffix(self.suffix()).strip()

    def _set_refusal(self, text: str) -> None:
        if text != self.refusal:
            self.refusal = text
            self.refused.emit(text)

    def validate(self, text: str, pos: int):
        result = super().validate(text, pos)  # type: ignore[misc]
        state = result[0] if isinstance(result, tuple) else result
        if state == QValidator.State.Invalid and text != self.text():
            self._set_refusal(f"{self.title}: {self._typed(text)!r} is not allowed ({self._bounds()}); "
                              f"it stays {self.textFromValue(self.value())}{self.suffix()}")
        return result

    def _edited(self, text: str) -> None:
        state = super().validate(text, len(text))  # type: ignore[misc]
        state = state[0] if isinstance(state, tuple) else state
        if state == QValidator.State.Acceptable:
            self._pending = ""
            self._set_refusal("")
        else:
            self._pending = self._typed(text)

    def _finished(self) -> None:
        if self._pending:
            self._set_refusal(f"{self.title}: {self._pending!r} is outside {self._bounds()}; it was put back to "
                              f"{self.textFromValue(self.value())}{self.suffix()}")
            self._pending = ""


class CheckedSpinBox(_Refusing, QSpinBox):
    refused = Signal(str)

    def __init__(self, title: str, parent=None) -> None:
        QSpinBox.__init__(self, parent)
        self._setup_refusal(title)


class CheckedDoubleSpinBox(_Refusing, QDoubleSpinBox):
    refused = Signal(str)

    def __init__(self, title: str, parent=None) -> None:
        QDoubleSpinBox.__init__(self, parent)
        self._setup_refusal(title)
