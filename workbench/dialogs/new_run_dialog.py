"""New run: start from a preset (the built-in samples) and change anything; every change is validated
through the engine's own configuration model and problems are shown before the run can start, with the
teacher's MACs and the budget the search will use (profiled off the GUI thread)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (QApplication, QButtonGroup, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
                               QFileDialog, QFormLayout, QFrame, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QPlainTextEdit, QPushButton, QRadioButton, QScrollArea, QSpinBox, QVBoxLayout, QWidget)

from engine.api import (DEFAULT_TARGET_RATIO, FAMILIES, PRESETS, SAMPLES, Launch, Preflight,
                        Problem, RunConfig, available_devices, config_lines, default_preset, explain_config, find_inception_weights, leaves,
                        load_config, preflight, resolved_settings, teacher_macs, write_launch_files)
from engine.errors import UserError
from engine.settings import Settings
from workbench.widgets.checked_spin import CheckedDoubleSpinBox, CheckedSpinBox
from workbench.widgets.backend_choice import backend_combo
from workbench.session.new_run_state import CheckAnswer, NewRunState, run_check
from workbench.session.new_run_form import NewRunForm, unique_name  # noqa: F401 (unique_name: the dialog's API)
from workbench.widgets.options_form import OptionsForm
from workbench.platform.resources import preset_descriptions
from workbench.background.children import can_start_processes
from workbench.widgets.binder import FormBinder
from workbench.background.worker import Worker


def _spin(title: str, field: str, low: int, high: int, value: int, step: int = 1, suffix: str = "") -> QSpinBox:
    box = _fill(CheckedSpinBox(title), field, low, high, suffix)
    box.setSingleStep(step)
    if suffix.endswith("s") and suffix.strip().isalpha():  # "1 generation", "3 generations"
        box.valueChanged.connect(lambda v: box.setSuffix(suffix[:-1] if v == 1 else suffix))
    box.setValue(value)
    return box


def _number(title: str, field: str, low: float, high: float, value: float, decimals: int,
            suffix: str) -> QDoubleSpinBox:
    box = CheckedDoubleSpinBox(title)
    box.setDecimals(decimals)  # first: Qt rounds the range to the decimals it has
    _fill(box, field, low, high, suffix)
    box.setValue(value)
    return box


def _fill(box, field: str, low, high, suffix: str):
    """A number field's range, unit and the configuration field its refused inputs are shown under."""
    box.field = field
    box.setRange(low, high)
    box.setSuffix(suffix)
    return box


#: A window's title bar and frame (the dialog's height is its client area).
TITLE_BAR = 40
#: The tallest the dialog makes itself: a 1366x768 laptop's screen less a desktop panel (32 px) and a title bar.
LAPTOP_HEIGHT = 768 - 32 - TITLE_BAR
#: A pre-flight not back after this long says "checking…" where the budget is shown (sooner would flicker).
CHECKING_NOTE_MS = 300


#: Each field's tooltip, by the dialog's attribute name.
TIPS = {
    "preset": "A complete recipe to start from; every field below can be changed",
    "name": "The run's name in the runs list (required; made unique when a run has it already)",
    "family": "The model family (each is a plug-in: its generators, losses and dataset layout)",
    "use_sample": "A small dataset made from the photographs that scikit-image ships (no download)",
    "sample": "Which built-in sample dataset",
    "use_folder": "Your own dataset, in a pytorch-CycleGAN-and-pix2pix folder layout",
    "folder": "The dataset folder: trainA/trainB (unaligned) or train/ with A|B side by side (aligned)",
    "train_teacher": "Train the teacher from scratch here (the paper compresses a pretrained one)",
    "teacher_steps": "Training steps (one batch each) of the teacher",
    "import_teacher": "Compress a generator you trained: its checkpoint (e.g. latest_net_G.pth)",
    "teacher_path": "The teacher generator's weights (a state dict; loaded with weights_only)",
    "by_ratio": "Search under the teacher's MACs divided by this ratio",
    "ratio": "How many times fewer MACs than the teacher the student may have (10: this program's "
        "default, not the paper's: its experiments' MACs budgets are in the paper-* presets)",
    "by_macs": "Search under a fixed MACs budget",
    "macs": "The most MACs (multiply-accumulates, in millions) the student may have",
    "by_latency": "Search under a time per image: candidates the per-layer latency table (measured on "
        "this machine once per device, backend and size) puts near it are measured end to "
        "end, and the budget is decided on that",
    "latency": "The most milliseconds one image at the run's size (batch 1) may take",
    "latency_device": "Where the latency is measured and predicted (only the devices this machine has)",
    "latency_backend": "The runtime the latency is for: PyTorch, or ONNX Runtime or OpenVINO (CPU)",
    "supernet_steps": "Training steps of the once-for-all supernet (distillation from the teacher); "
        "2000 is this program's default, not the paper's (the paper-* presets hold its "
        "lengths: 477,600 for map2sat)",
    "finetune_steps": "Fine-tuning steps of the chosen sub-network (this program's default, not the "
        "paper's: see the paper-* presets)",
    "image_size": "Square side in pixels (256) or width x height (512x256); multiples of 4",
    "batch_size": "Images per training step",
    "metric_choice": "What the search ranks sub-networks by (fid needs the Inception weights; rfid is a "
        "download-free fallback; psnr needs paired data)",
    "segmentation": "An ONNX network taking (N, 3, H, W) images in [-1, 1] and giving per-pixel class "
        "scores (e.g. DRN-D-105 for Cityscapes, as the paper): it segments the generated "
        "images, and mIoU compares that with the input label maps",
    "segmentation_classes": "A JSON list of the dataset's label id of each output class of the network "
        "(or {\"label_ids\": [...]}); empty: output k is label id k",
    "search_method": "How sub-networks are searched: auto (exhaustive when the evolution would score as "
        "many as there are), evolution, or exhaustive (every one within the budget)",
    "population": "Evolution: sub-networks per generation (the reference's 100)",
    "generations": "Evolution: generations after the first (the reference's 500)",
    "exhaustive_limit": "Exhaustive: the most sub-networks it scores; a larger space needs the evolution",
    "search_seed": "Evolution: the seed of its random draws (the run's own seed unless set): another seed searches "
        "the same supernet again from another first population, to see how much the student owes to the draw",
    "train_crop": "Train on random square crops of this side (a multiple of 4, at most the image size); "
        "scoring and export use whole images",
    "device": "Where the run trains: auto takes a GPU where this machine has one, else the CPU (said in "
        "the run's log); or one of the devices this machine has",
    "processes": "Processes per machine (torchrun): each trains on its share of every batch and scores "
        "its share of the candidates; on GPUs, one per GPU. The batch size is the global batch",
    "machines": "Machines for the launch files (Start runs on this machine only)",
    "show_config_button": "Every setting of the run as it will run (the family's recipe and defaults "
        "filled in) and where each value comes from",
    "launch_button": "Write the configuration with a torchrun script and a Slurm batch file for "
        "these processes and machines, to submit on a cluster",
}


class NewRunDialog(QDialog):
    def __init__(self, parent: QWidget | None = None, preset: str | None = None, taken_names: set[str] | None = None,
                 settings: Settings | None = None):
        """``taken_names``: the names of the runs in the store, so that a preset's name is made unique;
        ``settings``: where the workspace's latency tables are (what a latency budget can be is shown)."""
        super().__init__(parent)
        self.settings = settings
        self.setWindowTitle("New compression run")
        # Everything but the fields' values (the form, drawn from them): the pre-flight, problems, budget words.
        self.state = NewRunState(taken_names or ())
        self.configuration_dialog: QDialog | None = None
        self._field_errors: dict[str, QLabel] = {}  # by field: the red line under its row
        self._error_rows: list[tuple[QFormLayout | None, QLabel]] = []
        # The pre-flight and the teacher's profile run off the GUI thread, on this worker.
        self.worker = Worker(self)
        self.worker.done.connect(self._done)
        self.worker.failed.connect(self._failed)

        self._make_fields()
        self._make_compression_fields()
        for name, tip in TIPS.items():
            getattr(self, name).setToolTip(tip)
        self._lay_out()
        self._connect()
        self.binder = self._bind_form()
        preset = preset if preset in PRESETS else default_preset()
        self.preset.setCurrentText(preset)
        self.apply_preset(preset)

    def _make_fields(self) -> None:
        """The fields of what to compress: preset, name, family, dataset, teacher and the family's model."""
        self.preset = QComboBox()
        self.preset.addItems(sorted(PRESETS))
        self.preset_description = QLabel()
        self.preset_description.setWordWrap(True)
        self.preset_description.setStyleSheet("color: #555")
        self.name = QLineEdit()
        self.family = QComboBox()
        self.family.addItems(FAMILIES.names())

        self.use_sample = QRadioButton("Built-in sample")
        self.use_folder = QRadioButton("Folder")
        self.sample = QComboBox()
        self._set_sample_choices()
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("a dataset in the pytorch-CycleGAN-and-pix2pix layout")
        self.browse_folder = QPushButton("Browse…")
        self.browse_folder.clicked.connect(self._pick_folder)
        self.layout_label = QLabel()
        self.layout_label.setWordWrap(True)
        source = QButtonGroup(self)
        source.addButton(self.use_sample)
        source.addButton(self.use_folder)

        self.train_teacher = QRadioButton("Train one here")
        self.import_teacher = QRadioButton("Checkpoint")
        teacher_source = QButtonGroup(self)
        teacher_source.addButton(self.train_teacher)
        teacher_source.addButton(self.import_teacher)
        self.teacher_path = QLineEdit()
        self.teacher_path.setPlaceholderText("latest_net_G.pth")
        self.browse_teacher = QPushButton("Browse…")
        self.browse_teacher.clicked.connect(self._pick_teacher)
        self.teacher_steps = _spin("Teacher steps", "teacher.steps", 0, 1_000_000, 500, 50, " steps")
        # The family's model options (its own fields), rebuilt when the family changes.
        self.model_box = QGroupBox("Model")
        self.model_layout = QVBoxLayout(self.model_box)
        self.model_layout.addWidget(self._error_row(None, "model"))
        self.model_form: OptionsForm | None = None

    def _make_compression_fields(self) -> None:
        """The fields of how to compress: budget, lengths, search, sizes, metric, device and processes."""
        self.by_ratio = QRadioButton("Target ratio")
        self.by_macs = QRadioButton("MACs budget")
        self.by_latency = QRadioButton("Latency budget")
        budget_kind = QButtonGroup(self)
        budget_kind.addButton(self.by_ratio)
        budget_kind.addButton(self.by_macs)
        budget_kind.addButton(self.by_latency)
        self.latency = _number("Latency budget", "search.latency_budget_ms", 0.01, 1e6, 50, 2, " ms")
        self.latency_device = QComboBox()
        self.latency_device.addItems(available_devices())
        self.latency_backend = backend_combo()
        self.ratio = _number("Target ratio", "search.target_ratio", 1.01, 1000, DEFAULT_TARGET_RATIO, 2, "x fewer MACs")
        self.macs = _number("MACs budget", "search.macs_budget", 0.001, 1e7, 100, 3, " M MACs")
        self.supernet_steps = _spin("Supernet steps", "supernet.steps", 1, 10_000_000, 900, 100, " steps")
        self.finetune_steps = _spin("Fine-tuning steps", "finetune.steps", 0, 10_000_000, 200, 50, " steps")
        self.search_method = QComboBox()
        self.search_method.addItems(["auto", "evolution", "exhaustive"])
        self.population = _spin("Population", "search.population", 2, 1_000_000, 100, 10, " members")
        self.generations = _spin("Generations", "search.generations", 1, 1_000_000, 500, 10, " generations")
        self.exhaustive_limit = _spin("Exhaustive limit", "search.exhaustive_limit", 1, 100_000_000, 2000, 100, " sub-networks at most")
        self.search_seed = _spin("Search seed", "search.seed", -1, 2**31 - 1, -1)
        self.search_seed.setSpecialValueText("the run's seed")  # -1: search.seed unset
        self.train_crop = _spin("Training crop", "train_crop", 0, 8192, 0, 4, " px crops")
        self.train_crop.setSpecialValueText("whole images")  # 0: no crop (train_crop: null)
        self.image_size = QLineEdit("64")
        self.batch_size = _spin("Batch", "batch_size", 1, 256, 4, suffix=" images")
        self.segmentation = QLineEdit()
        self.segmentation.setPlaceholderText("segmentation network (.onnx) for mIoU")
        self.segmentation_classes = QLineEdit()
        self.segmentation_classes.setPlaceholderText("its class list (.json; default: output k is class k)")
        self.browse_segmentation = QPushButton("Browse…")
        self.browse_segmentation.clicked.connect(self._pick_segmentation)
        self.metric_choice = QComboBox()
        self._set_metric_choices()
        self.device = QComboBox()
        self.device.addItems(["auto", *available_devices()])  # only what this machine has
        self.processes = _spin("Processes", "processes", 1, 1024, 1, suffix=" per machine")
        self.processes.setEnabled(can_start_processes())
        self.machines = _spin("Machines", "processes", 1, 1024, 1, suffix=" machine(s)")
        self.show_config_button = QPushButton("Show configuration…")
        self.show_config_button.clicked.connect(self._show_configuration)
        self.launch_button = QPushButton("Write launch files…")
        self.launch_button.clicked.connect(self._write_launch_files)
        self.launch_label = QLabel()
        self.launch_label.setWordWrap(True)
        self.budget_label = QLabel()
        self.budget_label.setObjectName("budgetPreview")
        self.budget_label.setWordWrap(True)
        self.budget_label.setMinimumHeight(3 * self.budget_label.fontMetrics().lineSpacing())  # room to wrap
        self.budget_label.setStyleSheet("color: #1b4f72")

    def _lay_out(self) -> None:
        """The fields in two columns that scroll, the messages and Start/Cancel below them."""
        self.error = QLabel()
        self.error.setObjectName("validationError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b00020")

        form = QFormLayout()
        form.addRow("Preset", self.preset)
        form.addRow(self.preset_description)  # the whole width: fewer lines
        form.addRow("Name", self.name)
        self._error_row(form, "name")
        form.addRow("Family", self.family)
        data_box = QGroupBox("Dataset")
        data_form = QFormLayout(data_box)
        data_form.addRow(self.use_sample, self.sample)
        data_form.addRow(self.use_folder, self._pair(self.folder, self.browse_folder))
        data_form.addRow("", self.layout_label)
        self._error_row(data_form, "dataset.path")
        teacher_box = QGroupBox("Teacher")
        teacher_form = QFormLayout(teacher_box)
        teacher_form.addRow(self.train_teacher, self.teacher_steps)
        teacher_form.addRow(self.import_teacher, self._pair(self.teacher_path, self.browse_teacher))
        self._error_row(teacher_form, "teacher.checkpoint", "teacher.steps")
        budget_box = self._compression_box()
        sizes = QFormLayout()
        sizes.addRow("Image size / batch", self._pair(self.image_size, self.batch_size))
        self._error_row(sizes, "image_size", "batch_size")
        sizes.addRow("Training crop", self.train_crop)
        self._error_row(sizes, "train_crop")
        other = QFormLayout()
        other.addRow("Device", self.device)
        self._error_row(other, "device")
        other.addRow("Processes", self._pair(self.processes, self.machines, self.launch_button))
        self._error_row(other, "processes")
        other.addRow("", self.show_config_button)
        other.addRow("", self.launch_label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.start_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.start_button.setText("Start")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        # Two columns, so that the dialog fits a laptop's 800 px height: what to compress on the left,
        # how to compress it on the right.
        left, right = QVBoxLayout(), QVBoxLayout()
        # The family's model options (seven rows for MUNIT) under the teacher, the run's own settings under the
        # compression: columns of about equal height, so the dialog stays within a laptop's screen.
        left.addWidget(data_box)
        left.addWidget(teacher_box)
        left.addWidget(self.model_box)
        left.addLayout(sizes)
        left.addStretch(1)
        right.addWidget(budget_box)
        right.addLayout(other)
        right.addStretch(1)
        columns = QHBoxLayout()
        columns.addLayout(left, 1)
        columns.addLayout(right, 1)
        # The fields scroll; the messages and Start/Cancel stay below them, always on the screen.
        self.body = QWidget()
        body_layout = QVBoxLayout(self.body)
        body_layout.setContentsMargins(0, 0, 0, 0)
        body_layout.addLayout(form)
        body_layout.addLayout(columns)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.body)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        # Wrapped labels need the width to know their height: a width that fits the longest lines.
        self.setMinimumWidth(960)

    def _compression_box(self) -> QGroupBox:
        """The budget, lengths, search and metric, with the pre-flight's budget in words under them."""
        budget_box = QGroupBox("Compression")
        budget_column = QVBoxLayout(budget_box)
        budget_form = QFormLayout()
        budget_form.addRow(self.by_ratio, self.ratio)
        self._error_row(budget_form, "search.target_ratio")
        budget_form.addRow(self.by_macs, self.macs)
        self._error_row(budget_form, "search.macs_budget")
        budget_form.addRow(self.by_latency, self._pair(self.latency, self.latency_device, self.latency_backend))
        self._error_row(budget_form, "search.latency_budget_ms", "search.latency_device")
        budget_form.addRow("Supernet / fine-tune", self._pair(self.supernet_steps, self.finetune_steps))
        self._error_row(budget_form, "supernet.steps", "finetune.steps")
        budget_form.addRow("Search", self._pair(self.search_method, self.population, self.generations))
        self._error_row(budget_form, "search.population", "search.generations")
        budget_form.addRow("Exhaustive up to", self.exhaustive_limit)
        self._error_row(budget_form, "search.exhaustive_limit")
        budget_form.addRow("Search seed", self.search_seed)
        self._error_row(budget_form, "search.seed")
        # Beside the metric: that FID will not be what the run reports where its weights are missing.
        self.metric_note = QLabel()
        self.metric_note.setWordWrap(True)
        self.metric_note.setStyleSheet("color: #8a6d00")
        self.metric_choice.currentTextChanged.connect(lambda _: self._show_metric_note())
        budget_form.addRow("Metric", self.metric_choice)
        budget_form.addRow("", self.metric_note)
        self.segmentation_row = self._pair(self.segmentation, self.segmentation_classes, self.browse_segmentation)
        budget_form.addRow("Segmentation", self.segmentation_row)
        self.segmentation_form = budget_form
        budget_column.addLayout(budget_form)
        budget_column.addWidget(self.budget_label)
        return budget_box

    def _connect(self) -> None:
        """Every change of a field validates the form (a preset or a family first redraws it)."""
        self.preset.currentTextChanged.connect(self.apply_preset)
        for widget in (self.name, self.folder, self.teacher_path, self.image_size, self.segmentation_classes):
            widget.textChanged.connect(self.validate)
        self.segmentation.textChanged.connect(self._segmentation_changed)
        self.family.currentTextChanged.connect(self._family_changed)
        for widget in (self.sample, self.metric_choice, self.device, self.latency_device, self.latency_backend,
                       self.search_method):
            widget.currentTextChanged.connect(self.validate)
        for widget in (self.use_sample, self.use_folder, self.train_teacher, self.import_teacher, self.by_ratio,
                       self.by_macs, self.by_latency):
            widget.toggled.connect(self.validate)
        for widget in (self.teacher_steps, self.supernet_steps, self.finetune_steps, self.batch_size, self.ratio,
                       self.macs, self.latency, self.processes, self.machines, self.population, self.generations,
                       self.exhaustive_limit, self.search_seed, self.train_crop):
            widget.valueChanged.connect(self.validate)
        self._watch_refusals(self)

    def _set_metric_choices(self) -> None:
        """The metrics the current family can report (psnr only where it has ground truth; miou only for
        label maps, and only once a segmentation network is given, which the item's tooltip says)."""
        family = FAMILIES.get(self.family.currentText())
        current = self.metric_choice.currentText()
        choices = [m for m in ("fid", "rfid", "psnr", "miou") if m in family.metrics]
        self.metric_choice.blockSignals(True)
        self.metric_choice.clear()
        self.metric_choice.addItems(choices)
        if "miou" in choices and not self.segmentation.text().strip():
            index = choices.index("miou")
            self.metric_choice.model().item(index).setEnabled(False)
            self.metric_choice.setItemData(index, "unavailable: mIoU needs a segmentation network (an ONNX file); "
                                                  "set Segmentation below", Qt.ItemDataRole.ToolTipRole)
            self.metric_choice.setItemText(index, "miou (needs a segmentation network)")
            if current == "miou":
                current = choices[0]
        self.metric_choice.setCurrentText(current if current in choices else choices[0])
        self.metric_choice.blockSignals(False)
        if hasattr(self, "segmentation_form"):
            visible = "miou" in family.metrics
            if visible != self.segmentation_form.isRowVisible(self.segmentation_row):
                self.segmentation_form.setRowVisible(self.segmentation_row, visible)  # validate() then fits it

    def _set_sample_choices(self) -> None:
        """The built-in samples in the current family's dataset layout."""
        layout = FAMILIES.get(self.family.currentText()).dataset_layout
        current = self.sample.currentText()
        names = [n for n in SAMPLES.names() if SAMPLES.get(n).layout == layout]
        self.sample.blockSignals(True)
        self.sample.clear()
        self.sample.addItems(names)
        self.sample.setCurrentText(current if current in names else (names[0] if names else ""))
        self.sample.blockSignals(False)
        self.use_sample.setEnabled(bool(names))

    def _segmentation_changed(self) -> None:
        self._set_metric_choices()
        self.validate()

    def _pick_segmentation(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Segmentation network", "", "ONNX models (*.onnx)")
        if path:
            self.segmentation.setText(path)

    def _set_model_form(self, values: dict[str, Any]) -> None:
        family = FAMILIES.get(self.family.currentText())
        if self.model_form is None or self.model_form.model is not family.options_model:
            if self.model_form is not None:
                self.model_form.setParent(None)
                self.model_form.deleteLater()
            self.model_form = OptionsForm(family.options_model)
            self.model_form.changed.connect(self.validate)
            self._watch_refusals(self.model_form)
            self.model_layout.insertWidget(0, self.model_form)  # above its problems' line
        self.model_form.set_values(values)

    def _family_changed(self) -> None:
        self._set_sample_choices()
        self._set_metric_choices()
        self._set_model_form(self.model_form.values() if self.model_form else {})
        self.validate()

    def _error_row(self, form: QFormLayout | None, *fields: str) -> QLabel:
        """A red line under the row just added to ``form`` (or for a layout of its own), where the problems of
        ``fields`` are shown; hidden while there are none."""
        label = QLabel()
        label.setObjectName("fieldError")
        label.setWordWrap(True)
        label.setStyleSheet("color: #b00020")
        if form is not None:
            form.addRow("", label)
            form.setRowVisible(label, False)
        else:
            label.setVisible(False)
        for name in fields:
            self._field_errors[name] = label
        self._error_rows.append((form, label))
        return label

    def field_error(self, name: str) -> str:
        """What is shown under the field ``name`` (dotted, as in the configuration)."""
        return self._field_errors[name].text()

    def problems_text(self) -> str:
        """Every problem, beside a field or not, one per line."""
        return self.state.problems_text()

    @property
    def config(self) -> RunConfig | None:
        """The configuration Start runs: the form as it is now, once its pre-flight came back without a problem."""
        return self.state.config

    @property
    def preflight(self) -> Preflight | None:
        return self.state.preflight

    @property
    def problems(self) -> list[Problem]:
        return self.state.problems

    @staticmethod
    def _number_fields(parent: QWidget) -> list[CheckedSpinBox | CheckedDoubleSpinBox]:
        return [*parent.findChildren(CheckedSpinBox), *parent.findChildren(CheckedDoubleSpinBox)]

    def _watch_refusals(self, parent: QWidget) -> None:
        for box in self._number_fields(parent):
            box.refused.connect(lambda _text: self._show_problems())

    def refusals(self) -> list[tuple[str, str]]:
        """(field, words) of every number field whose last input was refused (not a number, out of its range)."""
        return [(box.field, box.refusal) for box in self._number_fields(self) if box.refusal]

    def _show_problems(self) -> None:
        """The state's messages: each under the field it names, the rest at the bottom."""
        placed, general = self.state.messages(set(self._field_errors), self.refusals())
        by_label: dict[QLabel, list[str]] = {}
        for field, message in placed:
            by_label.setdefault(self._field_errors[field], []).append(message)
        for form, label in self._error_rows:
            texts = by_label.get(label, [])
            label.setText("\n".join(texts))
            if form is not None:
                if form.isRowVisible(label) != bool(texts):
                    form.setRowVisible(label, bool(texts))
            else:
                label.setVisible(bool(texts))
        self.error.setText("\n".join(general))

    @staticmethod
    def _pair(*widgets: QWidget) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        for widget in widgets:
            row.addWidget(widget)
        return box

    def _pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Dataset folder", self.folder.text())
        if folder:
            self.folder.setText(folder)
            self.use_folder.setChecked(True)

    def _pick_teacher(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Teacher generator", "", "PyTorch weights (*.pth *.pt)")
        if path:
            self.teacher_path.setText(path)
            self.import_teacher.setChecked(True)

    def apply_preset(self, name: str) -> None:
        self.preset_description.setText(preset_descriptions().get(name, ""))
        self.preset.setToolTip(preset_descriptions().get(name, ""))
        # Another preset's settings; how many processes and machines run it is the user's, kept.
        self.show_form(NewRunForm.from_preset(name, self.state.taken_names).with_(processes=self.processes.value(),
                                                                          machines=self.machines.value()))
        self.validate()
        if self.isVisible():  # another preset's fields: the height they need, shorter too
            QTimer.singleShot(0, self._fit_height)

    def _bind_form(self) -> FormBinder:
        """Which widget holds each field of the form (``NewRunForm``), in the order they are drawn (the family
        before the sample and metric choices that depend on it)."""
        binder = FormBinder()
        binder.bind("preset", self.preset.currentText, lambda _: None)  # chosen by its own box: apply_preset
        binder.text("name", self.name)
        binder.choice("family", self.family)
        binder.bind("sample", lambda: self.sample.currentText() if self.use_sample.isChecked() else None,
                    self._show_sample, self.use_sample, self.use_folder, self.sample)
        binder.text("folder", self.folder)
        binder.bind("teacher_checkpoint", lambda: self.teacher_path.text() if self.import_teacher.isChecked() else None,
                    self._show_teacher, self.train_teacher, self.import_teacher, self.teacher_path)
        binder.value("teacher_steps", self.teacher_steps)
        binder.text("segmentation", self.segmentation)
        binder.text("segmentation_classes", self.segmentation_classes)
        binder.bind("metric", self._metric, self._show_metric, self.metric_choice)
        binder.bind("model", lambda: self.model_form.values() if self.model_form else {}, self._set_model_form)
        binder.option("budget", {"ratio": self.by_ratio, "macs": self.by_macs, "latency": self.by_latency})
        binder.value("ratio", self.ratio)
        binder.value("macs_millions", self.macs)
        binder.value("latency_ms", self.latency)
        binder.choice("latency_device", self.latency_device)
        binder.choice("latency_backend", self.latency_backend)
        binder.value("supernet_steps", self.supernet_steps)
        binder.value("finetune_steps", self.finetune_steps)
        binder.text("image_size", self.image_size)
        binder.value("batch_size", self.batch_size)
        binder.choice("search_method", self.search_method)
        binder.value("population", self.population)
        binder.value("generations", self.generations)
        binder.value("exhaustive_limit", self.exhaustive_limit)
        binder.value("search_seed", self.search_seed)
        binder.value("train_crop", self.train_crop)
        binder.choice("device", self.device)
        binder.value("processes", self.processes)
        binder.value("machines", self.machines)
        return binder

    def _show_sample(self, sample: str | None) -> None:
        self.use_sample.setChecked(sample is not None)
        self.use_folder.setChecked(sample is None)
        self._set_sample_choices()
        self.sample.setCurrentText(sample or "")

    def _show_teacher(self, checkpoint: str | None) -> None:
        self.train_teacher.setChecked(checkpoint is None)
        self.import_teacher.setChecked(checkpoint is not None)
        self.teacher_path.setText(checkpoint or "")

    def _show_metric(self, metric: str) -> None:
        self._set_metric_choices()
        self.metric_choice.setCurrentText(metric)

    def show_form(self, form: NewRunForm) -> None:
        """Draw ``form`` into the fields (without a check per field: ``validate`` follows)."""
        self.binder.show(form)

    def form(self) -> NewRunForm:
        """What the fields hold, as plain data (``workbench.session.new_run_form``)."""
        return self.binder.read(NewRunForm)

    def overrides(self) -> dict[str, Any]:
        return self.form().overrides()

    def _metric(self) -> str:
        return self.metric_choice.currentText().split(" ")[0]

    def _grey_out(self) -> None:
        """Only the chosen option of each pair can be edited."""
        self.sample.setEnabled(self.use_sample.isChecked())
        self.folder.setEnabled(self.use_folder.isChecked())
        self.teacher_steps.setEnabled(self.train_teacher.isChecked())
        self.teacher_path.setEnabled(self.import_teacher.isChecked())
        self.ratio.setEnabled(self.by_ratio.isChecked())
        self.macs.setEnabled(self.by_macs.isChecked())
        for widget in (self.latency, self.latency_device, self.latency_backend):
            widget.setEnabled(self.by_latency.isChecked())
        if self.by_latency.isChecked() and self.latency_device.currentText() != "cpu":
            self.latency_backend.setCurrentText("pytorch")  # ONNX Runtime and OpenVINO are measured on the CPU here

    def _show_metric_note(self) -> None:
        missing = self._metric() == "fid" and find_inception_weights(
            self.settings.inception_weights if self.settings else None) is None
        self.metric_note.setText(
            "The Inception weights behind FID are not on this machine: this run will report rfid (a labelled, "
            "download-free fallback) instead. Put pt_inception-2015-12-05-6726825d.pth in torch's hub cache or set "
            "it in Settings, or choose rfid." if missing else "")
        self.metric_note.setVisible(missing)

    def validate(self) -> None:
        """Check the form: its own rules and the configuration's at once, the engine's pre-flight (the budget, the
        devices, the dataset, the latency table) in the background, applied when it comes back (``checking``);
        ``config`` is set, and Start enabled, once it has come back without a problem."""
        self._grey_out()
        self._show_metric_note()
        self.state.validate(self.form())
        self.layout_label.setText(self.state.layout_words)
        self._submit_check()
        if self.state.checking:
            # With the dialog as the timer's context: a dialog closed meanwhile is not written to.
            QTimer.singleShot(CHECKING_NOTE_MS, self,
                              lambda number=self.state.checks.latest: self._note_checking(number))
        self._apply()

    def checking(self) -> bool:
        """Whether the pre-flight of the form as it is now has not come back yet."""
        return self.state.checking

    def _submit_check(self) -> None:
        """The waiting form's pre-flight, once the one in flight has come back."""
        request = self.state.next_check()
        if request is None:
            return
        settings = self.settings
        self.state.check_started(self.worker.submit(lambda: run_check(request, settings, preflight)))

    def _note_checking(self, number: int) -> None:
        if self.state.still_checking(number):
            self.budget_label.setText(self.state.budget_words)

    def _checked(self, answer: CheckAnswer) -> None:
        to_profile = self.state.checked(answer)
        self._submit_check()
        if to_profile is not None:  # the teacher's MACs: profiled in the background, then validated again
            self.state.profile_started(self.worker.submit(lambda: teacher_macs(to_profile)), to_profile)
        self.budget_label.setText(self.state.budget_words)
        self.layout_label.setText(self.state.layout_words)
        self._apply()

    def _check_failed(self, message: str) -> None:
        applied = self.state.check_failed(message)
        self._submit_check()
        if applied:
            self.budget_label.setText(self.state.budget_words)
            self._apply()

    def _apply(self) -> None:
        """The problems found so far, under their fields, and the buttons that follow from them."""
        self._show_problems()
        self.start_button.setEnabled(self.config is not None)
        self.launch_button.setEnabled(self.config is not None and self.settings is not None)
        self.show_config_button.setEnabled(self.config is not None)
        if self.isVisible():  # new texts (the budget, an error) may wrap onto more lines: after Qt re-lays them out
            QTimer.singleShot(0, self._fit_height)

    def configuration_text(self) -> str:
        """The run as it will start, every setting resolved, with where each value comes from (the same lines
        as ``python main.py config``)."""
        preset = self.preset.currentText()
        overrides = self.overrides()
        overrides["name"] = overrides["name"] or "run"
        # Only what differs from the preset counts as a change of the user's (the form holds every field).
        before = leaves(resolved_settings(load_config(preset)))
        changed: dict[str, Any] = {}
        for name, value in leaves(overrides).items():
            if name not in before or before[name] != value:
                *parents, key = name.split(".")
                target = changed
                for part in parents:
                    target = target.setdefault(part, {})
                target[key] = value
        _, resolved, sources = explain_config(preset, overrides=changed)
        return "\n".join(config_lines(resolved, sources))

    def _show_configuration(self) -> None:
        try:
            text = self.configuration_text()
        except UserError as exc:
            text = f"not valid yet: {exc}"
        dialog = QDialog(self)
        dialog.setWindowTitle("Run configuration")
        view = QPlainTextEdit(text)
        view.setReadOnly(True)
        view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        note = QLabel("Where each value comes from: the preset, your changes in this dialog (override), the "
                      "family's defaults (the reference's recipe) or the program's defaults. "
                      "python main.py config --preset NAME prints the same.")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        layout = QVBoxLayout(dialog)
        layout.addWidget(note)
        layout.addWidget(view)
        layout.addWidget(buttons)
        dialog.resize(820, 600)
        self.configuration_dialog = dialog
        dialog.open()

    def launch(self) -> Launch:
        form = self.form()
        return Launch(form.processes, form.machines)

    def _write_launch_files(self) -> None:
        if self.config is None or self.settings is None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Folder for the launch files", str(self.settings.workspace))
        if folder:
            self.write_launch_files(Path(folder))

    def write_launch_files(self, folder: Path) -> list[Path]:
        assert self.config is not None and self.settings is not None
        try:
            paths = write_launch_files(self.config, folder, self.launch(), self.settings)
        except (UserError, OSError) as exc:
            self.launch_label.setText(f"not written: {exc}")
            return []
        self.launch_label.setText("wrote " + ", ".join(p.name for p in paths) + f" in {folder} (submit the .slurm "
                                  "file with sbatch, or run the .sh on each machine)")
        return paths

    def _done(self, job: int, result: Any) -> None:
        if self.state.is_check(job):
            self._checked(result)
        else:  # a teacher profiled: its MACs are known to the engine now
            self.state.profile_done(job)
            self.validate()

    def _failed(self, job: int, message: str) -> None:
        if self.state.is_check(job):
            self._check_failed(message)
        else:
            self.state.profile_failed(job, message)
            self.validate()

    def preview_pending(self) -> bool:
        """Whether a teacher is being profiled in the background."""
        return self.state.profiling_teacher

    def _accept(self) -> None:
        if self.config is not None and not self.checking():  # the form as it is now passed its pre-flight
            self.accept()

    def height_limit(self) -> int:
        """The tallest this dialog makes itself: its screen's free height less a title bar, and never more than
        a 1366x768 laptop with a panel leaves (the fields scroll beyond it; Start and Cancel stay in view)."""
        screen = self.screen() or QApplication.primaryScreen()
        free = screen.availableGeometry().height() if screen is not None else LAPTOP_HEIGHT
        return min(free - TITLE_BAR, LAPTOP_HEIGHT)

    def needed_height(self) -> int:
        """The height that shows every field and message without scrolling, at the dialog's width."""
        layout = self.layout()
        margins = layout.contentsMargins()
        inner = self.width() - margins.left() - margins.right()
        fields = self.body.layout().totalHeightForWidth(inner - self.scroll.verticalScrollBar().sizeHint().width())
        error = self.error.heightForWidth(inner) if self.error.text() else 0  # wrapped: its height at this width
        buttons = self.start_button.parentWidget().sizeHint().height()
        return fields + error + buttons + margins.top() + margins.bottom() + 2 * layout.spacing()

    def _fit_height(self) -> None:
        # Qt sizes a top-level window by its minimum, not by the height its wrapped labels need at its width:
        # the dialog follows what its fields and messages need (growing with a message, shrinking when it goes),
        # up to what the screen has room for, past which the fields scroll.
        self.body.layout().activate()  # rows hidden or shown since the last layout pass count as they are now
        wanted = min(self.needed_height(), self.height_limit())
        if wanted != self.height():
            self.resize(self.width(), wanted)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._fit_height()

    def done(self, result: int) -> None:
        self.worker.wait(30_000)  # a profile still running must not outlive the dialog's objects
        super().done(result)
