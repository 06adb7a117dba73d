"""The form binder: one table draws a plain-data form into its widgets and reads it back, and a form field
without a widget is found when the form is read, not lost."""

from dataclasses import dataclass

import pytest
from PySide6.QtWidgets import QComboBox, QLineEdit, QRadioButton, QSpinBox, QWidget

from workbench.widgets.binder import FormBinder


@dataclass(frozen=True)
class Form:
    name: str
    steps: int
    device: str
    budget: str


def test_a_form_is_drawn_into_its_widgets_without_their_signals_and_read_back(qtbot):
    parent = QWidget()
    qtbot.addWidget(parent)
    name, steps, device = QLineEdit(parent), QSpinBox(parent), QComboBox(parent)
    steps.setRange(0, 1000)
    device.addItems(["auto", "cpu"])
    ratio, macs = QRadioButton("ratio", parent), QRadioButton("macs", parent)
    heard = []
    steps.valueChanged.connect(heard.append)
    binder = FormBinder()
    binder.text("name", name)
    binder.value("steps", steps)
    binder.choice("device", device)
    binder.option("budget", {"ratio": ratio, "macs": macs})
    form = Form("run", 500, "cpu", "macs")
    binder.show(form)
    assert (name.text(), steps.value(), device.currentText(), macs.isChecked()) == ("run", 500, "cpu", True)
    assert heard == []  # one check of the whole form follows a draw, not one per field
    steps.setValue(7)
    assert heard == [7] and binder.read(Form) == Form("run", 7, "cpu", "macs")
    partial = FormBinder()
    partial.text("name", name)
    with pytest.raises(TypeError, match="Form fields without a widget: budget, device, steps"):
        partial.read(Form)
