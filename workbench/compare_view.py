"""Compare: input | teacher | student | |difference| at full resolution with synced zoom and pan, or a
wipe between teacher and student; MACs, params and measured latency of both (background worker); a
budget slider that previews the best sub-network under that budget at once (weights are shared)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QRectF, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPainter, QPixmap, QTransform, QWheelEvent
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView,
                               QGridLayout, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget)

from engine.data.images import list_images
from engine.devices import available_devices
from engine.errors import UserError
from engine.latency import describe as describe_latency
from engine.metric_names import primary_metric
from engine.settings import Settings
from engine.store import CandidateTable, Store
from workbench.reader import StoreReader
from workbench.state import front_rows
from workbench.worker import Worker

PANELS = ("input", "teacher", "student", "difference")


def _front_of(table: CandidateTable) -> list[tuple[int, str, dict[str, float]]]:
    """(MACs, arch, metrics) of the front of a run's candidates by its primary metric, fewest MACs first."""
    metric = primary_metric(table.metrics) or next(iter(table.metrics), None)
    if metric is None:
        return []
    rows = front_rows(table.macs.astype(float), table.scores(metric))
    return [(int(table.macs[r]), table.archs[r], table.row(int(r))["metrics"]) for r in rows]


def to_pixmap(array: np.ndarray) -> QPixmap:
    array = np.ascontiguousarray(array)
    height, width, _ = array.shape
    image = QImage(array.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())


class SyncedView(QGraphicsView):
    """An image view whose zoom (wheel) and pan (drag) other views follow."""

    view_changed = Signal(object, int, int)

    def __init__(self, title: str):
        super().__init__()
        self.setScene(QGraphicsScene(self))
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.TransformationMode.FastTransformation)  # show real pixels
        self.scene().addItem(self.item)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setToolTip(title)
        self._syncing = False
        self.horizontalScrollBar().valueChanged.connect(self._emit)
        self.verticalScrollBar().valueChanged.connect(self._emit)

    def set_pixmap(self, pixmap: QPixmap) -> None:
        self.item.setPixmap(pixmap)
        self.scene().setSceneRect(QRectF(pixmap.rect()))

    def wheelEvent(self, event: QWheelEvent) -> None:
        factor = 1.25 if event.angleDelta().y() > 0 else 0.8
        self.scale(factor, factor)
        self._emit()

    def _emit(self, *_: object) -> None:
        if not self._syncing:
            self.view_changed.emit(self.transform(), self.horizontalScrollBar().value(),
                                   self.verticalScrollBar().value())

    def follow(self, transform: QTransform, h: int, v: int) -> None:
        self._syncing = True
        self.setTransform(transform)
        self.horizontalScrollBar().setValue(h)
        self.verticalScrollBar().setValue(v)
        self._syncing = False


class CompareView(QWidget):
    def __init__(self, store: Store, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.store, self.settings = store, settings
        self.worker = Worker(self)
        self.reader = StoreReader(self, threads=1)
        self.worker.done.connect(self._job_done)
        self.worker.failed.connect(self._job_failed)
        self._jobs: dict[int, str] = {}
        self.run_id: int | None = None
        self.arch: str | None = None
        self.result: dict[str, Any] | None = None
        self.latency: dict[str, Any] | None = None  # a LatencyReading, as_dict()
        self.candidates: list[tuple[int, str, dict]] = []  # (macs, arch, metrics)

        self.image_choice = QComboBox()
        self.image_choice.currentIndexChanged.connect(lambda _: self.update_preview())
        open_button = QPushButton("Open image…")
        open_button.clicked.connect(self._open_image)
        self.device = QComboBox()
        self.device.addItems(self._devices())
        self.backend = QComboBox()
        self.backend.addItems(["pytorch", "onnxruntime"])
        remembered = QSettings()
        self.device.setCurrentText(str(remembered.value("compare/device", self.device.currentText())))
        self.backend.setCurrentText(str(remembered.value("compare/backend", "pytorch")))
        self.device.currentTextChanged.connect(lambda text: QSettings().setValue("compare/device", text))
        self.backend.currentTextChanged.connect(lambda text: QSettings().setValue("compare/backend", text))
        self.measure_button = QPushButton("Measure latency")
        self.measure_button.clicked.connect(self.measure_latency)
        self.wipe = QCheckBox("Wipe teacher | student")
        self.wipe.toggled.connect(lambda _: self._show())
        self.wipe_slider = QSlider(Qt.Orientation.Horizontal)
        self.wipe_slider.setRange(0, 100)
        self.wipe_slider.setValue(50)
        self.wipe_slider.valueChanged.connect(lambda _: self._show())
        self.budget = QSlider(Qt.Orientation.Horizontal)
        self.budget.valueChanged.connect(self._budget_moved)
        self.budget_label = QLabel("budget: -")
        self.readout = QLabel("Select a run (and a candidate on the Pareto plot).")
        self.readout.setObjectName("compareReadout")
        self.readout.setWordWrap(True)

        self.views = {name: SyncedView(name) for name in PANELS}
        for view in self.views.values():
            view.view_changed.connect(self._sync_from(view))
        grid = QGridLayout()
        for column, name in enumerate(PANELS):
            grid.addWidget(QLabel(name.capitalize()), 0, column, alignment=Qt.AlignmentFlag.AlignHCenter)
            grid.addWidget(self.views[name], 1, column)

        row1 = QHBoxLayout()
        row1.addWidget(QLabel("Image"))
        row1.addWidget(self.image_choice, 1)
        row1.addWidget(open_button)
        row1.addWidget(self.wipe)
        row1.addWidget(self.wipe_slider)
        row2 = QHBoxLayout()
        row2.addWidget(self.budget_label)
        row2.addWidget(self.budget, 1)
        row2.addWidget(QLabel("Device"))
        row2.addWidget(self.device)
        row2.addWidget(self.backend)
        row2.addWidget(self.measure_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row1)
        layout.addLayout(grid, 1)
        layout.addLayout(row2)
        layout.addWidget(self.readout)

    @staticmethod
    def _devices() -> list[str]:
        return sorted(available_devices(), key=lambda d: d == "cpu")  # a GPU first where there is one

    def _sync_from(self, source: SyncedView):
        def sync(transform, h, v):
            for view in self.views.values():
                if view is not source:
                    view.follow(transform, h, v)
        return sync

    # --- selection --------------------------------------------------------------------------------
    def set_run(self, run_id: int | None) -> None:
        if run_id == self.run_id:
            return
        self.run_id, self.arch, self.result, self.latency = run_id, None, None, None
        self.image_choice.blockSignals(True)
        self.image_choice.clear()
        self.image_choice.blockSignals(False)
        self.reload_candidates()
        if run_id is not None:
            QTimer.singleShot(0, lambda: self._fill_images(run_id))

    def _fill_images(self, run_id: int) -> None:
        if run_id != self.run_id:
            return
        self.image_choice.blockSignals(True)
        for path in self._sample_images(run_id):
            self.image_choice.addItem(path.name, str(path))
        self.image_choice.blockSignals(False)
        self.update_preview()

    def _sample_images(self, run_id: int) -> list[Path]:
        """Up to 20 test inputs of the run's dataset (test/ or testA/), if its folder exists."""
        from engine.inspect import RunModels
        from engine.stages.data import existing_dataset_root

        try:
            models = RunModels.open(self.store, self.settings, run_id)
        except UserError:
            return []
        root = existing_dataset_root(models.config, self.settings)
        for folder in ((root / "test", root / "testA") if root else ()):
            if folder.is_dir():
                try:
                    return list_images(folder)[:20]
                except UserError:
                    return []
        return []

    def reload_candidates(self) -> None:
        """The run's Pareto front (read in the background): the budget slider steps along it, so each of its
        positions is the best candidate within that many MACs."""
        self.candidates = []
        self.budget.setEnabled(False)
        if self.run_id is None:
            self.reader.forget("front")
            return
        store, run_id = self.store, self.run_id
        self.reader.read("front", lambda: _front_of(store.candidate_table(run_id)),
                         lambda front, run_id=run_id: self._front_read(run_id, front))

    def _front_read(self, run_id: int, front: list[tuple[int, str, dict[str, float]]]) -> None:
        if run_id != self.run_id:
            return
        self.candidates = front
        self.budget.blockSignals(True)
        self.budget.setRange(0, max(0, len(front) - 1))
        self.budget.setValue(max(0, len(front) - 1))
        self.budget.blockSignals(False)
        self.budget.setEnabled(bool(front))

    def select_candidate(self, run_id: int, arch: str | None) -> None:
        if run_id != self.run_id:
            self.set_run(run_id)
        self.arch = arch
        self.update_preview()

    def _budget_moved(self, index: int) -> None:
        if not self.candidates:
            return
        macs, arch, _ = self.candidates[index]
        self.budget_label.setText(f"budget: {macs / 1e6:.2f}M MACs")
        self.arch = arch
        self.update_preview()

    # --- work -------------------------------------------------------------------------------------
    def _open_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "", "Images (*.png *.jpg *.jpeg *.bmp *.webp)")
        if path:
            self.image_choice.addItem(Path(path).name, path)
            self.image_choice.setCurrentIndex(self.image_choice.count() - 1)

    def update_preview(self) -> None:
        path = self.image_choice.currentData()
        if self.run_id is None or not path:
            return
        run_id, arch, settings, store = self.run_id, self.arch, self.settings, self.store
        if self.result is not None and self.result.get("arch") != arch:
            self.latency = None  # measured for another sub-network

        def job() -> dict[str, Any]:
            from engine.inspect import RunModels, preview

            models = RunModels.open(store, settings, run_id)
            return preview(models, models.load_input(Path(path)), arch)

        self.readout.setText("computing preview…")
        self._jobs[self.worker.submit(job)] = "preview"

    def measure_latency(self) -> None:
        if self.run_id is None:
            return
        run_id, arch, settings, store = self.run_id, self.arch, self.settings, self.store
        device, backend = self.device.currentText(), self.backend.currentText()

        def job() -> dict[str, float]:
            from engine.inspect import RunModels, latency

            return latency(RunModels.open(store, settings, run_id), arch, device, backend)

        self.measure_button.setEnabled(False)
        self.readout.setText(self.readout.text() + f"\nmeasuring latency on {device} ({backend})…")
        self._jobs[self.worker.submit(job)] = f"latency:{device}:{backend}"

    def _job_done(self, job_id: int, result: Any) -> None:
        kind = self._jobs.pop(job_id, "")
        if kind == "preview":
            self.result = result
            self._show()
        elif kind.startswith("latency"):
            self.latency = result
            self.measure_button.setEnabled(True)
        self._update_readout()

    def _job_failed(self, job_id: int, message: str) -> None:
        self._jobs.pop(job_id, None)
        self.measure_button.setEnabled(True)
        self.readout.setText(f"could not compute: {message}")

    def _show(self) -> None:
        if not self.result:
            return
        for name in PANELS:
            array = self.result[name]
            if name == "student" and self.wipe.isChecked():
                cut = int(array.shape[1] * self.wipe_slider.value() / 100)
                array = np.concatenate([self.result["teacher"][:, :cut], array[:, cut:]], axis=1)
            self.views[name].set_pixmap(to_pixmap(array))

    def _update_readout(self) -> None:
        if not self.result:
            return
        t, s = self.result["teacher_profile"], self.result["student_profile"]
        lines = [f"student {self.result['arch']}: {s['macs'] / 1e6:.2f}M MACs ({t['macs'] / s['macs']:.1f}x fewer "
                 f"than the teacher's {t['macs'] / 1e6:.2f}M), {s['params'] / 1e6:.4f}M params "
                 f"(teacher {t['params'] / 1e6:.3f}M)"]
        if self.latency:
            lines.append(f"latency, {describe_latency(self.latency)}")
        self.readout.setText("\n".join(lines))
