"""Compare: input | ground truth (paired data) | teacher | student | difference (on a colour scale) with
synced zoom (fit, 100%, the zoom shown) and pan, pixels magnified as they are, or a wipe between teacher
and student with its divider; MACs, params and measured latency of both (background worker); a budget
slider that previews the best sub-network under that budget at once (weights are shared)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QLineF, QRectF, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap, QTransform, QWheelEvent
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QGraphicsLineItem, QGraphicsPixmapItem,
                               QGraphicsScene, QGraphicsView, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSlider,
                               QSpinBox,
                               QVBoxLayout, QWidget)

from engine import api
from engine.api import (COLOUR_TABLE, CandidateTable, Store, available_devices, colour_map, primary_metric,
                        scale_top)
from engine.settings import Settings
from workbench.widgets.backend_choice import backend_combo
from workbench.background.reader import StoreReader
from workbench.session.compare_state import CompareState
from workbench.session.state import Session, front_rows
from workbench.background.model_process import ModelProcess
from workbench.background.worker import Worker

#: Lines the readout has room for (its height is fixed, so the controls above it stay put).
READOUT_LINES = 8  # the student, its scores, the search's measurement (two), a latency reading (two), a note

PANELS = ("input", "ground truth", "conditioning", "teacher", "student", "difference")
def scale_bar(width: int = 160, height: int = 12) -> QPixmap:
    bar = np.repeat(COLOUR_TABLE[np.linspace(0, 255, width).astype(np.uint8)][None], height, axis=0)
    return to_pixmap(bar)


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
    zoom_changed = Signal()
    #: The wipe's divider dragged to this share of the image's width (0..1).
    divider_dragged = Signal(float)

    def __init__(self, title: str):
        super().__init__()
        self.fitting = True  # the image fits the pane (again on each resize) until the user zooms
        self.setScene(QGraphicsScene(self))
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.TransformationMode.FastTransformation)  # show real pixels
        self.scene().addItem(self.item)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setToolTip(title)
        self._syncing = False
        #: Where the wipe's divider is (image x), or None without a wipe; grabbed within a few pixels of it.
        self.divider_x: float | None = None
        self._dragging_divider = False
        self.horizontalScrollBar().valueChanged.connect(self._emit)
        self.verticalScrollBar().valueChanged.connect(self._emit)

    def set_pixmap(self, pixmap: QPixmap) -> None:
        self.item.setPixmap(pixmap)
        self.scene().setSceneRect(QRectF(pixmap.rect()))
        if self.fitting:
            self.fit()

    def clear(self) -> None:
        self.item.setPixmap(QPixmap())

    def zoom(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        self.fitting = True
        if not self.item.pixmap().isNull():
            self._syncing = True  # every pane fits itself: no pane follows another's fit
            self.fitInView(self.item, Qt.AspectRatioMode.KeepAspectRatio)
            self._syncing = False
        self.zoom_changed.emit()

    def set_zoom(self, factor: float) -> None:
        self.fitting = False
        self.setTransform(QTransform.fromScale(factor, factor))
        self._emit()
        self.zoom_changed.emit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.fitting:
            self.fit()

    def _near_divider(self, event) -> bool:
        if self.divider_x is None or self.item.pixmap().isNull():
            return False
        on_screen = self.mapFromScene(self.divider_x, 0).x()
        return abs(event.position().x() - on_screen) <= 6

    def _divider_share(self, event) -> float:
        width = self.item.pixmap().width()
        return min(1.0, max(0.0, self.mapToScene(event.position().toPoint()).x() / width))

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._near_divider(event):
            self._dragging_divider = True  # the divider moves; the image does not pan
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._dragging_divider:
            self.divider_dragged.emit(self._divider_share(event))
            event.accept()
            return
        self.viewport().setCursor(Qt.CursorShape.SplitHCursor if self._near_divider(event)
                                  else Qt.CursorShape.OpenHandCursor)
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._dragging_divider:
            self._dragging_divider = False
            self.divider_dragged.emit(self._divider_share(event))
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        factor = 1.25 if event.angleDelta().y() > 0 else 0.8
        self.fitting = False
        self.scale(factor, factor)
        self._emit()
        self.zoom_changed.emit()

    def _emit(self, *_: object) -> None:
        if not self._syncing:
            self.view_changed.emit(self.transform(), self.horizontalScrollBar().value(),
                                   self.verticalScrollBar().value())

    def follow(self, transform: QTransform, h: int, v: int) -> None:
        self._syncing = True
        self.fitting = False
        self.setTransform(transform)
        self.horizontalScrollBar().setValue(h)
        self.verticalScrollBar().setValue(v)
        self._syncing = False


class CompareView(QWidget):
    #: The view moved to another candidate itself (its budget slider; None: the final student): run id, arch.
    candidate_changed = Signal(int, object)

    def __init__(self, store: Store, settings: Settings, parent: QWidget | None = None,
                 worker: Worker | ModelProcess | None = None):
        """``worker`` runs the previews and latency readings: by default a process of their own (model loading
        and session creation hold Python's GIL for seconds: on a thread they froze the window)."""
        super().__init__(parent)
        self.store, self.settings = store, settings
        self.worker = worker or ModelProcess(self)
        self.reader = StoreReader(self, threads=1)
        self.worker.done.connect(self._job_done)
        self.worker.failed.connect(self._job_failed)
        self.state = CompareState()  # what is shown and asked for: the view draws from it

        self._make_controls()
        grid, scale_row = self._make_panels()
        self._lay_out(grid, scale_row)

    def _make_controls(self) -> None:
        """The image, style, wipe, budget, latency and zoom controls and the readout."""
        self.image_choice = QComboBox()
        self.image_choice.currentIndexChanged.connect(lambda _: self.update_preview())
        self.open_button = QPushButton("Open image…")
        self.open_button.clicked.connect(self._open_image)
        # Families whose generator takes a style code beside the image: teacher and student are re-drawn with
        # the one code of this seed (shown in the style panel), so a difference is the student's, not the code's.
        self.style_seed_label = QLabel("Style seed")
        self.style_seed = QSpinBox()
        self.style_seed.setRange(0, 999_999)
        self.style_seed.setToolTip("Draws the style code both teacher and student get (same seed, same code)")
        self.style_seed.valueChanged.connect(lambda _: self.update_preview())
        self.style_seed_label.hide()
        self.style_seed.hide()
        self.device = QComboBox()
        self.device.addItems(self._devices())
        remembered = QSettings()
        self.backend = backend_combo(str(remembered.value("compare/backend", "pytorch")))
        self.backend.setToolTip("Where the latency is measured: PyTorch (eager), or the exported ONNX file in ONNX "
                                "Runtime or OpenVINO (CPU)")
        self.device.setCurrentText(str(remembered.value("compare/device", self.device.currentText())))
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
        self.wipe_slider.setToolTip("Where the wipe divides teacher (left) from student (right); or drag the red "
                                    "divider on the image")
        self.budget = QSlider(Qt.Orientation.Horizontal)
        self.budget.valueChanged.connect(self._budget_moved)
        self.budget_label = QLabel("budget: -")
        # The run's result as a position of its own: the fine-tuned student, not the supernet's sub-network of
        # the same arch that the slider and the Pareto plot show.
        self.final_button = QPushButton("Final student")
        self.final_button.setToolTip("Show the run's final student (fine-tuned where that was kept); the budget "
                                     "slider and the Pareto plot show sub-networks of the supernet, not fine-tuned")
        self.final_button.clicked.connect(self.show_final_student)
        self.readout = QLabel("Select a run (and a candidate on the Pareto plot).")
        self.readout.setObjectName("compareReadout")
        self.readout.setWordWrap(True)
        # A fixed height (its longest text: profile, scores, two latency lines): the controls above it never move
        # as its text grows and shrinks, so a click lands where the user aimed.
        self.readout.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.readout.setFixedHeight(self.readout.fontMetrics().lineSpacing() * READOUT_LINES + 4)
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def _make_panels(self) -> tuple[QGridLayout, QHBoxLayout]:
        """The panes (input, teacher, student, difference) with their headers, the wipe's divider, the difference's
        colour scale and the zoom buttons."""
        self.views = {name: SyncedView(name) for name in PANELS}
        self.headers = {name: QLabel(name.capitalize()) for name in PANELS}
        for view in self.views.values():
            view.view_changed.connect(self._sync_from(view))
            view.zoom_changed.connect(self._show_zoom)
        self.headers["difference"].setToolTip("|teacher - student|, mean over the colour channels, in 8-bit steps")
        grid = QGridLayout()
        for column, name in enumerate(PANELS):
            grid.addWidget(self.headers[name], 0, column, alignment=Qt.AlignmentFlag.AlignHCenter)
            grid.addWidget(self.views[name], 1, column)
        # The wipe's divider, on the student's panel (which shows teacher | student in wipe mode).
        self.divider = QGraphicsLineItem()
        pen = QPen(QColor("#ff1744"))
        pen.setCosmetic(True)  # 2 px wide at any zoom
        pen.setWidth(2)
        self.divider.setPen(pen)
        self.divider.setZValue(1)
        self.divider.hide()
        self.views["student"].scene().addItem(self.divider)
        self.views["student"].divider_dragged.connect(lambda share: self.wipe_slider.setValue(round(share * 100)))
        self.scale_image = QLabel()
        self.scale_image.setPixmap(scale_bar())
        self.scale_low, self.scale_high = QLabel("0"), QLabel("")
        scale_row = QHBoxLayout()
        scale_row.addStretch(1)
        scale_row.addWidget(QLabel("difference |teacher - student|, per pixel:"))
        scale_row.addWidget(self.scale_low)
        scale_row.addWidget(self.scale_image)
        scale_row.addWidget(self.scale_high)
        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip("Fit each image to its pane")
        self.fit_button.clicked.connect(self.fit)
        self.actual_button = QPushButton("100%")
        self.actual_button.setToolTip("One image pixel per screen pixel")
        self.actual_button.clicked.connect(lambda: self.set_zoom(1.0))
        self.zoom_label = QLabel("zoom: fit")
        self.zoom_label.setMinimumWidth(90)
        return grid, scale_row

    def _lay_out(self, grid: QGridLayout, scale_row: QHBoxLayout) -> None:
        """Controls above and below the panes, the readout under everything."""
        row1 = QHBoxLayout()
        row1.addWidget(QLabel("Image"))
        row1.addWidget(self.image_choice, 1)
        row1.addWidget(self.open_button)
        row1.addWidget(self.style_seed_label)
        row1.addWidget(self.style_seed)
        row1.addWidget(self.fit_button)
        row1.addWidget(self.actual_button)
        row1.addWidget(self.zoom_label)
        row1.addWidget(self.wipe)
        row1.addWidget(self.wipe_slider)
        row2 = QHBoxLayout()
        row2.addWidget(self.final_button)
        row2.addWidget(self.budget_label)
        row2.addWidget(self.budget, 1)
        row2.addWidget(QLabel("Device"))
        row2.addWidget(self.device)
        row2.addWidget(self.backend)
        row2.addWidget(self.measure_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row1)
        layout.addLayout(grid, 1)
        layout.addLayout(scale_row)
        layout.addLayout(row2)
        layout.addWidget(self.readout)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        warm_up = getattr(self.worker, "warm_up", None)
        if warm_up is not None:
            warm_up()  # the model process starts while the user looks, not at the first preview

    @staticmethod
    def _devices() -> list[str]:
        return sorted(available_devices(), key=lambda d: d == "cpu")  # a GPU first where there is one

    # --- zoom ---------------------------------------------------------------------------------------
    def fit(self) -> None:
        for view in self.views.values():
            view.fit()

    def set_zoom(self, factor: float) -> None:
        self.views["teacher"].set_zoom(factor)  # the others follow

    def _show_zoom(self) -> None:
        view = self.views["teacher"]
        percent = f"{view.zoom() * 100:.0f}%"
        self.zoom_label.setText(f"zoom: fit ({percent})" if view.fitting else f"zoom: {percent}")

    def _sync_from(self, source: SyncedView):
        def sync(transform, h, v):
            for view in self.views.values():
                if view is not source:
                    view.follow(transform, h, v)
        return sync

    # --- selection --------------------------------------------------------------------------------
    def follow(self, session: Session) -> None:
        """Read from the window session's store with its settings, now and whenever they change."""
        def use() -> None:
            self.store, self.settings = session.store, session.settings
        session.subscribe(use)
        use()

    # Read-only views of the state, for the window and tests.
    run_id = property(lambda self: self.state.run_id)
    arch = property(lambda self: self.state.arch)
    result = property(lambda self: self.state.result)
    latency = property(lambda self: self.state.latency)
    candidates = property(lambda self: self.state.candidates)

    def set_run(self, run_id: int | None) -> None:
        if not self.state.set_run(run_id):
            return
        # Nothing of the run shown before stays on screen, and no preview asked for it is shown later.
        for view in self.views.values():
            view.clear()
        self.divider.hide()
        self.scale_high.setText("")
        self.scale_high.setToolTip("")
        self.budget_label.setText("budget: -")
        self.readout.setText("Select a run (and a candidate on the Pareto plot)." if run_id is None
                             else "computing preview…")
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
        return api.sample_images(self.store, self.settings, run_id)

    def reload_candidates(self) -> None:
        """The run's Pareto front (read in the background): the budget slider steps along it, so each of its
        positions is the best candidate within that many MACs."""
        self.state.candidates = []
        self.budget.setEnabled(False)
        if self.run_id is None:
            self.reader.forget("front")
            return
        store, run_id = self.store, self.run_id
        self.reader.read("front", lambda: _front_of(store.candidate_table(run_id)),
                         lambda front, run_id=run_id: self._front_read(run_id, front))

    def _front_read(self, run_id: int, front: list[tuple[int, str, dict[str, float]]]) -> None:
        if not self.state.front_read(run_id, front):
            return
        self.budget.blockSignals(True)
        self.budget.setRange(0, max(0, len(front) - 1))
        self.budget.setValue(max(0, len(front) - 1))
        self.budget.blockSignals(False)
        self.budget.setEnabled(bool(front))
        if self.state.waits_for_best_candidate:
            self._show_best_candidate()
        self._show_budget()

    def _show_budget(self) -> None:
        """The slider and its words follow what is shown, whichever control chose it."""
        position = self.state.budget_position()
        if position is not None:
            self.budget.blockSignals(True)
            self.budget.setValue(position)
            self.budget.blockSignals(False)
        self.budget_label.setText(self.state.budget_words())

    def _show_best_candidate(self) -> None:
        """A run still at work has no final student yet: its search's best so far is shown instead, said so."""
        self.state.show_best_candidate()
        self._show_budget()
        self.candidate_changed.emit(self.run_id, self.arch)
        self.update_preview()

    def select_candidate(self, run_id: int, arch: str | None) -> None:
        if run_id != self.run_id:
            self.set_run(run_id)
        self.state.arch = arch
        self._show_budget()
        self.update_preview()

    def show_final_student(self) -> None:
        if self.run_id is None:
            return
        self.state.arch = None
        self._show_budget()
        self.candidate_changed.emit(self.run_id, None)
        self.update_preview()

    def _budget_moved(self, index: int) -> None:
        if not self.candidates:
            return
        _, arch, _ = self.candidates[index]
        self.state.arch = arch
        self.budget_label.setText(self.state.budget_words())
        self.candidate_changed.emit(self.run_id, arch)
        self.update_preview()

    # --- work -------------------------------------------------------------------------------------
    def _open_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "", "Images (*.png *.jpg *.jpeg *.bmp *.webp)")
        if path:
            self.image_choice.addItem(Path(path).name, path)
            self.image_choice.setCurrentIndex(self.image_choice.count() - 1)

    def retry(self) -> None:
        """Try again what could not be shown (a running run gains its teacher, then its supernet)."""
        if self.run_id is None:
            return
        self.reload_candidates()
        if self.image_choice.count() == 0:
            self._fill_images(self.run_id)  # previews once the images are listed
        else:
            self.update_preview()

    def update_preview(self) -> None:
        path = self.image_choice.currentData()
        if self.run_id is None or not path:
            return
        seed = self.style_seed.value()
        self.readout.setText("computing preview…")
        job_id = self.worker.submit(api.preview_of_run, self.settings, self.run_id, Path(path), self.arch, seed)
        self.state.asked_preview(job_id, path, seed)

    def measure_latency(self) -> None:
        if self.run_id is None:
            return
        device, backend = self.device.currentText(), self.backend.currentText()
        self.measure_button.setEnabled(False)
        self.readout.setText(self.readout.text() + f"\nmeasuring latency on {device} ({backend})…")
        job_id = self.worker.submit(api.latency_of_run, self.settings, self.run_id, self.arch, device, backend)
        self.state.asked_latency(job_id)

    def _job_done(self, job_id: int, result: Any) -> None:
        asked = self.state.jobs.get(job_id)
        if asked is None:
            return  # not a job of this view's
        if asked.kind == "preview":
            new_image = self.state.preview_arrived(job_id, result, self.image_choice.currentData(),
                                                   self.style_seed.value())
            if new_image is None:
                return  # asked for before another run, image, style seed or student was chosen
            self._show()
            if new_image:
                self.fit()
        else:
            self.state.latency_arrived(job_id, result)
            self.measure_button.setEnabled(True)
        self._update_readout()

    def _job_failed(self, job_id: int, message: str) -> None:
        self.measure_button.setEnabled(True)
        outcome = self.state.failed(job_id, message)
        if outcome == "ignore":
            return  # a preview of a choice since replaced: its failure is not the shown one's
        if outcome == "best candidate":  # no final student yet (the run is at work): its search's best so far
            self._show_best_candidate()
            return
        self.readout.setText(f"could not compute: {message}")

    def _show(self) -> None:
        if not self.result:
            return
        top = scale_top(self.result.difference_levels)
        images = {**{name: self.result.images[name] for name in PANELS if name in self.result.images},
                  "difference": colour_map(self.result.difference_levels, top)}
        wipe = self.wipe.isChecked()
        if wipe:
            cut = int(images["student"].shape[1] * self.wipe_slider.value() / 100)
            images["student"] = np.concatenate([images["teacher"][:, :cut], images["student"][:, cut:]], axis=1)
            self.divider.setLine(QLineF(cut, 0, cut, images["student"].shape[0]))
        self.divider.setVisible(wipe)
        self.views["student"].divider_x = cut if wipe else None
        self.headers["student"].setText("Teacher | Student (wipe)" if wipe else "Student")
        titles = self.result.titles
        self.headers["input"].setText(str(titles.get("input", "input")).capitalize())
        conditioned = self.result.conditioning_seed is not None
        self.style_seed_label.setVisible(conditioned)
        self.style_seed.setVisible(conditioned)
        title = str(titles.get("conditioning", "conditioning")).capitalize()
        self.style_seed_label.setText(f"{title} seed")
        self.headers["conditioning"].setText(f"{title} (seed {self.result.conditioning_seed})" if conditioned else title)
        self.headers["conditioning"].setToolTip(self.result.conditioning_tooltip)
        for name in PANELS:
            shown = name in images
            self.views[name].setVisible(shown)
            self.headers[name].setVisible(shown)
            if shown:
                self.views[name].set_pixmap(to_pixmap(images[name]))
        largest = float(self.result.difference_levels.max())
        self.scale_high.setText(f"{top:.0f} levels or more (of 255)")
        self.scale_high.setToolTip(
            f"Each pixel's colour is how far the student's output is from the teacher's there: the mean over the "
            f"colour channels of |teacher - student|, in 8-bit levels (0-255). The scale ends at {top:.0f} so that "
            f"small differences show; the largest here is {largest:.0f}.")

    def _update_readout(self) -> None:
        lines = self.state.readout_lines()
        if lines:
            self.readout.setText("\n".join(lines))
