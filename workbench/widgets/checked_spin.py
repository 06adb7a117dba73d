"""Number fields that say why they refused what was typed, instead of silently dropping a key ("-" in a field
that cannot be negative) or putting back the previous value on leaving the field (0 where the least is 1)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox


class _Refusing:
    """Mixed into a spin box: ``refusal`` holds, in words, what was refused of the user's last edit of the field
    (empty once the field's value changes otherwise, or an edit is accepted whole), and ``refused`` carries it
    each time it changes. Within one edit (until the field is left or Return pressed) refused keys add up:
    "abc" is said as 'abc', and "-5" (the "-" refused, the 5 taken) ends saying that the field now holds 5."""

    refused: Signal

    def _setup_refusal(self, title: str) -> None:
        self.title = title
        self.field = ""  # the configuration field it sets, where the window shows its problems
        self.refusal = ""
        self._pending = ""  # typed but not yet a value (below the least allowed, say): refused if left so
        self._refused_keys = ""  # what this edit typed that was refused
        self.lineEdit().textEdited.connect(self._edited)
        self.editingFinished.connect(self._finished)
        self.valueChanged.connect(self._value_changed)

    def _bounds(self) -> str:
        kind = "whole numbers" if isinstance(self, QSpinBox) else "numbers"
        low, high = self.textFromValue(self.minimum()), self.textFromValue(self.maximum())
        unit = self.suffix().strip()
        return f"{kind} from {low} to {high}" + (f", in {unit}" if unit else "")

    def _typed(self, text: str) -> str:
        return text.removeprefix(self.prefix()).removesuffix(self.suffix()).strip()

    def _shown(self) -> str:
        return f"{self.textFromValue(self.value())}{self.suffix()}"

    def _set_refusal(self, text: str) -> None:
        if text != self.refusal:
            self.refusal = text
            self.refused.emit(text)

    def validate(self, text: str, pos: int):
        result = super().validate(text, pos)  # type: ignore[misc]
        state = result[0] if isinstance(result, tuple) else result
        if state == QValidator.State.Invalid and text != self.text():
            self._refused_keys += _inserted(self._typed(self.text()), self._typed(text))
            self._set_refusal(f"{self.title}: {self._refused_keys!r} is not allowed ({self._bounds()}); "
                              f"it stays {self._shown()}")
        return result

    def _edited(self, text: str) -> None:
        state = super().validate(text, len(text))  # type: ignore[misc]
        state = state[0] if isinstance(state, tuple) else state
        if state == QValidator.State.Acceptable:
            self._pending = ""
            if not self._refused_keys:
                self._set_refusal("")
        else:
            self._pending = self._typed(text)

    def _finished(self) -> None:
        if self._pending:
            self._set_refusal(f"{self.title}: {self._pending!r} is outside {self._bounds()}; it was put back to "
                              f"{self._shown()}")
        elif self._refused_keys:
            self._set_refusal(f"{self.title}: {self._refused_keys!r} was not allowed ({self._bounds()}); the field "
                              f"holds {self._shown()}")
        self._pending = self._refused_keys = ""

    def _value_changed(self, *_: object) -> None:
        # A value set by the arrows, the wheel or a preset (not an edit in progress) ends what was said of an
        # earlier edit: the field is what it shows.
        if not self._refused_keys and not self._pending:
            self._set_refusal("")


def _inserted(before: str, after: str) -> str:
    """What an edit put into ``before`` to make ``after`` (their common start and end taken away)."""
    start = 0
    while start < min(len(before), len(after)) and before[start] == after[start]:
        start += 1
    end = 0
    while end < min(len(before), len(after)) - start and before[-1 - end] == after[-1 - end]:
        end += 1
    return after[start:len(after) - end]


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
