"""Pareto, compare, new-run, export and settings views, against recorded events and a real finished run."""

import csv
import dataclasses
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from engine.api import SAMPLE_PRESETS, TeacherReference
from engine.events import CandidateScored
from engine.families.capabilities import export_input_names
from tests.patience import REAL_WORK_MS
from workbench.views.compare_view import CompareView
from workbench.session.compare_state import Asked
from workbench.dialogs.export_dialog import ExportDialog
from workbench.dialogs.new_run_dialog import NewRunDialog
from workbench.views.pareto_view import X_AXES, ParetoView, _tip
from workbench.dialogs.settings_dialog import SettingsDialog
from workbench.session.state import Point, pareto_front


def _recorded_candidates(run_id):
    archs = [("8_8_8_8_8_8_8_8", 900, 30.0), ("4_4_4_4_4_4_4_4", 200, 20.0), ("8_4_8_4_8_4_8_4", 500, 27.0),
             ("4_8_4_8_4_8_4_8", 600, 25.0), ("8_8_4_4_8_8_4_4", 700, 29.0)]
    return [CandidateScored(run_id=run_id, arch=a, macs=m * 1000, params=m, metrics={"psnr": v}) for a, m, v in archs]


def _drawn(view, run_id):
    return sum(len(chunk.data) for chunk in view.layers[run_id].chunks)


def _shown(qtbot, view):
    view.resize(900, 600)
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: not view.is_loading(), timeout=10_000)


def _click(qtbot, view, macs, value):
    from PySide6.QtCore import QPoint
    from PySide6.QtTest import QTest

    at = view.plot.mapFromScene(view.view_to_scene(macs, value))
    QTest.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(at.x(), at.y()))


def test_pareto_points_arrive_live_and_the_front_follows(qtbot, store, tmp_path):
    run_id = store.create_run(name="r", family="pix2pix", dataset="d", config={}, stages=["search"])
    view = ParetoView(store)
    qtbot.addWidget(view)
    view.set_run(run_id, budget=800_000)
    _shown(qtbot, view)
    events = _recorded_candidates(run_id)
    for count, event in enumerate(events, 1):
        view.handle_event(event)
        assert view.count(run_id) == count
    qtbot.waitUntil(lambda: _drawn(view, run_id) == 5, timeout=5000)  # drawn by the coalescing timer
    assert view.metric_name() == "psnr" and "dB" in view.plot.getAxis("left").labelText
    xs, ys = view.front.getData()
    points = [Point(run_id, e.arch, e.macs, e.params, e.metrics) for e in events]
    expected = pareto_front(points, "psnr", True)
    assert list(xs) == [p.macs / 1e6 for p in expected] and list(ys) == [p.metrics["psnr"] for p in expected]
    assert [p.arch for p in expected] == ["4_4_4_4_4_4_4_4", "8_4_8_4_8_4_8_4", "8_8_4_4_8_8_4_4", "8_8_8_8_8_8_8_8"]
    assert len(view.layers[run_id].front_marks.data) == 4  # front points marked apart
    assert view.budget_line.isVisible() and view.budget_line.value() == pytest.approx(0.8)
    # Off the front: PSNR's front rises to the right, so the legend sits top left, where no candidate can be.
    view.grab()
    legend, plot_area = view.legend.sceneBoundingRect(), view.plot.getViewBox().sceneBoundingRect()
    assert legend.left() < plot_area.center().x() and legend.top() < plot_area.center().y()
    row = view.nearest(view.view_to_scene(500_000, 27.0))
    tip = _tip(row)
    assert "8_4_8_4_8_4_8_4" in tip and "0.50M MACs" in tip and "psnr 27" in tip
    # Hovering shows the details beside the point, for as long as the pointer rests there (no tooltip timeout).
    view._hovered((view.view_to_scene(500_000, 27.0),))
    assert view.hover_label.isVisible() and view.hover_label.textItem.toPlainText() == tip
    assert (view.hover_label.pos().x(), view.hover_label.pos().y()) == (0.5, 27.0)
    view._hovered((view.view_to_scene(50_000, 35.0),))  # nowhere near a candidate
    assert not view.hover_label.isVisible()

    view.include_dominated.setChecked(False)
    assert not any(chunk.isVisible() for chunk in view.layers[run_id].chunks)
    assert view.nearest(view.view_to_scene(600_000, 25.0)) is None  # a dominated point, hidden: not picked
    with qtbot.waitSignal(view.candidate_selected) as selected:
        _click(qtbot, view, 200_000, 20.0)
    assert selected.args == [run_id, "4_4_4_4_4_4_4_4"]
    assert list(view.highlight.data["x"]) == [0.2]

    view.export_to(view.export_png, tmp_path / "pareto.png")
    assert view.export_note.text() == "saved pareto.png"  # said: the save dialog closes without a word
    view.export_to(view.export_csv, tmp_path / "points.csv")
    assert view.export_note.text() == "saved points.csv"
    view.export_to(view.export_csv, tmp_path / "missing" / "points.csv")
    assert view.export_note.text().startswith("not saved: ")
    assert (tmp_path / "pareto.png").stat().st_size > 1000
    rows = list(csv.DictReader((tmp_path / "points.csv").open()))
    assert len(rows) == 5 and sum(r["on_front"] == "True" for r in rows) == 4


def test_a_large_run_is_read_off_the_gui_thread_and_new_points_only_touch_the_last_chunk(qtbot, store):
    import numpy as np

    from engine.store import CandidateRecord
    from workbench.views.pareto_view import CHUNK
    from workbench.session.state import front_rows

    run_id = store.create_run(name="big", family="pix2pix", dataset="d", config={}, stages=["search"])
    rng = np.random.default_rng(1)
    macs, fid = rng.integers(1_000_000, 90_000_000, 3 * CHUNK + 10), rng.random(3 * CHUNK + 10) * 100
    store.add_candidates(run_id, [CandidateRecord(f"a{i}", int(m), 1, {"fid": float(f)})
                                  for i, (m, f) in enumerate(zip(macs, fid))])
    view = ParetoView(store)
    qtbot.addWidget(view)
    view.set_run(run_id)
    assert view.is_loading() and _drawn(view, run_id) == 0  # the read runs in the background
    _shown(qtbot, view)
    assert _drawn(view, run_id) == len(macs) and len(view.layers[run_id].chunks) == 4
    expected = front_rows(macs.astype(float), fid)
    assert view.layers[run_id].front.rows == list(expected)

    chunks = view.layers[run_id].chunks
    untouched = [chunk.data.copy() for chunk in chunks[:3]]
    set_calls = []
    for chunk in chunks[:3]:
        chunk.setData = lambda *a, **k: set_calls.append(1)
    view.handle_event(CandidateScored(run_id=run_id, arch="new", macs=500_000, params=1, metrics={"fid": -1.0}))
    view.flush()
    assert set_calls == [] and all((c.data == u).all() for c, u in zip(chunks[:3], untouched))
    assert view.layers[run_id].front.rows == [len(macs)]  # fewest MACs and best FID: the whole front now
    assert view.front_points()[0]["arch"] == "new"


def test_several_runs_can_be_overlaid(qtbot, store):
    first = store.create_run(name="a", family="pix2pix", dataset="d", config={}, stages=["search"])
    second = store.create_run(name="b", family="pix2pix", dataset="d", config={}, stages=["search"])
    for event in _recorded_candidates(second):
        store.add_candidate(second, arch=event.arch, macs=event.macs, params=event.params, metrics=event.metrics)
    view = ParetoView(store)
    qtbot.addWidget(view)
    view.set_runs([(first, "a"), (second, "b")], {first: 64, second: 128})
    view.set_run(first)
    _shown(qtbot, view)
    assert set(view.layers) == {first}
    assert view.overlays.item(0).isHidden() and not view.overlays.item(1).isHidden()  # not offered over itself
    assert view.overlays.item(1).text() == f"{second}: b (128 px)" and view.overlay_note.isHidden()
    view.overlays.item(1).setCheckState(Qt.CheckState.Checked)
    assert view.overlay_note.text() == (f"At another image size: run {second} (128 px); their MACs are for that "
                                        f"size, not comparable with run {first}'s (64 px).")
    qtbot.waitUntil(lambda: not view.is_loading(), timeout=10_000)
    assert set(view.layers) == {first, second} and _drawn(view, second) == 5
    view.set_run(second)
    view.overlays.item(1).setCheckState(Qt.CheckState.Unchecked)
    assert set(view.layers) == {second}


def _shown_compare_view(qtbot, finished, width: int, height: int) -> CompareView:
    """A compare view of the finished run, shown at this size, with its first preview drawn."""
    settings, store, run_id, _ = finished
    view = CompareView(store, settings)
    qtbot.addWidget(view)
    view.resize(width, height)
    view.show()
    view.set_run(run_id)
    qtbot.waitUntil(lambda: view.result is not None, timeout=REAL_WORK_MS)
    return view


def test_the_wipe_divider_is_dragged_on_the_image(qtbot, finished):
    from PySide6.QtCore import QEvent, QPointF
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    view = _shown_compare_view(qtbot, finished, 1400, 600)
    view.wipe.setChecked(True)
    student = view.views["student"]
    assert student.divider_x == 16  # half of the 32 px image

    def send(kind, x_image: float, button=Qt.MouseButton.LeftButton) -> None:
        at = QPointF(student.mapFromScene(x_image, 16))
        buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else Qt.MouseButton.LeftButton
        QApplication.sendEvent(student.viewport(), QMouseEvent(kind, at, student.viewport().mapToGlobal(at), button,
                                                               buttons, Qt.KeyboardModifier.NoModifier))

    send(QEvent.Type.MouseButtonPress, 16)
    send(QEvent.Type.MouseMove, 8, Qt.MouseButton.NoButton)
    send(QEvent.Type.MouseButtonRelease, 8)
    assert abs(view.wipe_slider.value() - 25) <= 2 and abs(student.divider_x - 8) <= 1
    send(QEvent.Type.MouseButtonPress, 28)  # away from the divider: a pan, the divider stays
    send(QEvent.Type.MouseButtonRelease, 30)
    assert abs(view.wipe_slider.value() - 25) <= 2


def test_compare_previews_any_candidate_and_measures_latency(qtbot, finished):
    settings, store, run_id, summary = finished
    view = CompareView(store, settings)
    qtbot.addWidget(view)
    view.set_run(run_id)
    qtbot.waitUntil(lambda: view.image_choice.count() > 0, timeout=10_000)  # the run's own test images
    qtbot.waitUntil(lambda: view.result is not None, timeout=REAL_WORK_MS)
    assert view.result.arch == summary["student"]["arch"]  # no candidate chosen: the final student
    final_text = view.readout.text()
    assert f"student {summary['student']['arch']}, final student (" in final_text and "search split" not in final_text
    # The run is paired (pix2pix on A|B test images): the ground truth has its column.
    shown = [name for name in view.views if view.views[name].isVisibleTo(view)]
    assert shown == ["input", "ground truth", "teacher", "student", "difference"]
    assert {name: view.views[name].item.pixmap().width() for name in shown} == dict.fromkeys(shown, 32)
    candidate = store.candidates(run_id)[0].arch
    view.select_candidate(run_id, candidate)
    qtbot.waitUntil(lambda: view.result.arch == candidate, timeout=REAL_WORK_MS)
    # The same label never stands over two networks: a candidate is the supernet's sub-network, with its scores.
    assert f"student {candidate}, supernet sub-network (shared weights, not fine-tuned)" in view.readout.text()
    scores = store.candidate(run_id, candidate)["metrics"]
    assert f"this candidate's scores in the search (search split): psnr {scores['psnr']:.4g}" in view.readout.text()
    view.select_candidate(run_id, summary["student"]["arch"])  # the final arch, as the supernet has it
    qtbot.waitUntil(lambda: view.result.arch == summary["student"]["arch"] and not view.result.final,
                    timeout=REAL_WORK_MS)
    assert "supernet sub-network" in view.readout.text()
    view.final_button.click()
    qtbot.waitUntil(lambda: view.result.final, timeout=REAL_WORK_MS)
    assert view.readout.text() == final_text
    view.select_candidate(run_id, candidate)
    qtbot.waitUntil(lambda: view.result.arch == candidate, timeout=REAL_WORK_MS)
    view.budget.setValue(0)  # the smallest budget: the cheapest candidate
    cheapest = min(store.candidates(run_id), key=lambda c: c.macs)
    qtbot.waitUntil(lambda: view.result.arch == cheapest.arch, timeout=REAL_WORK_MS)
    view.measure_latency()
    qtbot.waitUntil(lambda: view.latency is not None, timeout=REAL_WORK_MS)
    timings = view.latency.timings
    assert timings["teacher"].median_ms > 0 and timings["student"].median_ms > 0
    assert view.latency.ratios["teacher/student"].runs == timings["teacher"].runs  # measured together
    text = view.readout.text()
    assert ("x faster (ratio p10-p90" in text or "x slower (ratio p10-p90" in text) and "MACs" in text and "batch 1, 32x32" in text and "pytorch on cpu" in text
    # Another candidate: the reading stays, said to be the previous student's, until this one is measured.
    view.show_final_student()
    qtbot.waitUntil(lambda: view.result.final, timeout=REAL_WORK_MS)
    assert f"latency of the student shown before ({cheapest.arch})" in view.readout.text()
    assert "Measure latency for this one" in view.readout.text()
    view.wipe.setChecked(True)
    assert view.divider.isVisible() and view.divider.line().x1() == 16  # at the slider's 50%
    view.wipe_slider.setValue(25)
    assert view.divider.line().x1() == 8
    view.views["input"].scale(2, 2)
    view.views["input"]._emit()
    assert view.views["teacher"].transform().m11() == view.views["input"].transform().m11()


@pytest.mark.slow
def test_compare_redraws_teacher_and_student_with_one_style_code_per_seed(qtbot, finished_munit, tmp_path):
    settings, store, run_id, summary = finished_munit
    view = CompareView(store, settings)
    qtbot.addWidget(view)
    view.set_run(run_id)
    qtbot.waitUntil(lambda: view.image_choice.count() > 0, timeout=10_000)
    qtbot.waitUntil(lambda: view.result is not None, timeout=REAL_WORK_MS)
    shown = [name for name in view.views if view.views[name].isVisibleTo(view)]
    assert shown == ["input", "conditioning", "teacher", "student", "difference"]
    assert view.style_seed.isVisibleTo(view) and view.headers["conditioning"].text() == "Style (seed 0)"
    assert view.headers["input"].text() == "Content"
    first = {name: view.result.images[name].copy() for name in ("conditioning", "teacher", "student")}
    view.style_seed.setValue(7)
    qtbot.waitUntil(lambda: view.result.conditioning_seed == 7, timeout=REAL_WORK_MS)
    assert view.headers["conditioning"].text() == "Style (seed 7)"
    for name in ("conditioning", "teacher", "student"):  # another code: both models re-drawn with it
        assert (view.result.images[name] != first[name]).any(), name
    view.resize(1100, 420)
    view.grab().save(str(tmp_path / "compare_munit.png"))


def test_compare_fits_zooms_colours_the_difference_and_never_shows_another_runs_images(qtbot, finished, store, tmp_path):
    import numpy as np

    from engine.panels import COLOUR_TABLE, colour_map, scale_top

    view = _shown_compare_view(qtbot, finished, 1200, 500)
    run_id = finished[2]
    teacher = view.views["teacher"]
    # 32 px images in panes some 200 px wide: fitted, magnified pixel for pixel.
    assert teacher.fitting and teacher.zoom() > 3 and "fit" in view.zoom_label.text()
    assert teacher.item.transformationMode() == Qt.TransformationMode.FastTransformation
    view.set_zoom(1.0)
    assert all(v.zoom() == 1.0 for v in view.views.values()) and view.zoom_label.text() == "zoom: 100%"
    view.fit()
    assert teacher.zoom() > 3
    # The difference on a colour scale with its numbers.
    levels = view.result.difference_levels
    top = scale_top(levels)
    assert (colour_map(levels, top)[levels >= top] == COLOUR_TABLE[255]).all()
    assert view.scale_high.text() == f"{top:.0f} levels or more (of 255)"
    assert f"the largest here is {float(levels.max()):.0f}" in view.scale_high.toolTip()
    assert colour_map(np.zeros((2, 2)), 8.0).tolist() == [[COLOUR_TABLE[0].tolist()] * 2] * 2
    qtbot.wait(50)
    view.grab().save(str(tmp_path / "compare.png"))
    # Another run: its panes are cleared at once, and a preview asked for before is never shown.
    other = run_id
    while other == run_id:  # another store: a run with another id
        other = store.create_run(name="other", family="pix2pix", dataset="d", config={}, stages=["teacher"])
    stale, stale_path = view.result, view.state.shown_path
    view.store = store
    view.set_run(other)
    assert view.result is None and all(v.item.pixmap().isNull() for v in view.views.values())
    view.state.jobs[999] = Asked("preview", run_id, None, stale_path, 0)  # asked for the run shown before
    view._job_done(999, stale)
    assert view.result is None and all(v.item.pixmap().isNull() for v in view.views.values())


def test_the_export_dialog_suggests_a_folder_in_the_workspace_exports_named_after_the_candidate(qtbot, finished):
    settings, store, run_id, _ = finished
    arch = store.candidates(run_id)[0].arch
    dialog = ExportDialog(store, settings, run_id)
    qtbot.addWidget(dialog)
    dialog.candidate.addItem(arch, arch)
    assert dialog.out_dir.text() == str(settings.exports_dir / f"run-{run_id}-student")
    dialog.candidate.setCurrentIndex(dialog.candidate.findData(arch))
    assert dialog.out_dir.text() == str(settings.exports_dir / f"run-{run_id}-{arch}")
    dialog.out_dir.setText("/somewhere/else")  # edited by the user: it stays
    dialog.candidate.setCurrentIndex(0)
    assert dialog.out_dir.text() == "/somewhere/else"


def test_export_dialog_exports_a_candidate_and_shows_the_parity_check(qtbot, finished, tmp_path):
    settings, store, run_id, _ = finished
    arch = store.candidates(run_id)[-1].arch
    dialog = ExportDialog(store, settings, run_id, arch)
    qtbot.addWidget(dialog)
    dialog.out_dir.setText(str(tmp_path / "out"))
    assert "supernet's shared weights, not fine-tuned" in dialog.weights_note.text()  # a candidate, not the final
    assert not dialog.open_button.isEnabled()
    with qtbot.waitSignal(dialog.process.finished, timeout=REAL_WORK_MS):
        dialog.start()
    assert dialog.export_result is not None and dialog.export_result.arch == arch
    assert dialog.export_result.max_abs_diff <= 1e-3
    assert "parity with PyTorch" in dialog.result_label.text()
    assert Path(dialog.export_result.onnx_path).is_file() and Path(dialog.export_result.model_card_path).is_file()
    # Every line reachable: the result scrolls in its own area, with the full paths, and the folder opens from here.
    assert dialog.result_area.widget() is dialog.result_label
    assert dialog.export_result.onnx_path in dialog.result_label.text()
    assert dialog.export_result.model_card_path in dialog.result_label.text()
    assert dialog.open_button.isEnabled() and dialog._exported_folder() == tmp_path / "out"
    dialog.candidate.setCurrentIndex(0)
    assert dialog.weights_note.text().startswith("The run's final student")



def settled(qtbot, dialog) -> None:
    """Until the new-run dialog's pre-flight of the form as it is now has come back (it runs off the GUI thread):
    what a user sees a moment after a change."""
    qtbot.waitUntil(lambda: not dialog.checking(), timeout=REAL_WORK_MS)


def budget_known(dialog) -> bool:
    """The teacher profiled and the pre-flight with its MACs back: the budget in full."""
    return not dialog.preview_pending() and not dialog.checking() and dialog.preflight is not None \
        and dialog.preflight.complete


def test_new_run_dialog_validates_inline(qtbot, tmp_path):
    dialog = NewRunDialog(preset="pix2pix-sample")
    qtbot.addWidget(dialog)
    settled(qtbot, dialog)
    assert dialog.config is not None and dialog.start_button.isEnabled()
    assert dialog.config.family == "pix2pix" and dialog.config.dataset.sample == "noisy2clean"
    # The preset ships its teacher: the checkpoint is filled in.
    assert dialog.import_teacher.isChecked() and dialog.teacher_path.text().endswith("pix2pix-noisy2clean.pt")
    dialog.use_folder.setChecked(True)
    settled(qtbot, dialog)
    assert not dialog.start_button.isEnabled() and "choose a dataset folder" in dialog.field_error("dataset.path")
    dialog.folder.setText(str(tmp_path / "missing"))
    settled(qtbot, dialog)
    assert "dataset folder not found" in dialog.field_error("dataset.path")
    (tmp_path / "d" / "trainA").mkdir(parents=True)
    (tmp_path / "d" / "trainB").mkdir()
    from PIL import Image
    Image.new("RGB", (8, 8)).save(tmp_path / "d" / "trainA" / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "d" / "trainB" / "b.png")
    dialog.folder.setText(str(tmp_path / "d"))
    settled(qtbot, dialog)
    assert "layout: unaligned" in dialog.layout_label.text()
    assert "pix2pix needs an aligned dataset" in dialog.field_error("dataset.path")
    dialog.family.setCurrentText("cyclegan")
    settled(qtbot, dialog)
    # Only the metrics the family can report are offered (no ground truth: no psnr).
    assert [dialog.metric_choice.itemText(i) for i in range(dialog.metric_choice.count())] == ["fid", "rfid"]
    assert dialog.error.text() == "" and dialog.start_button.isEnabled()
    assert dialog.config.metric == "fid"
    assert dialog.config.dataset.path == tmp_path / "d"
    dialog.teacher_path.setText("")
    settled(qtbot, dialog)
    assert "choose the teacher checkpoint" in dialog.field_error("teacher.checkpoint")
    dialog.image_size.setText("30")
    dialog.train_teacher.setChecked(True)
    settled(qtbot, dialog)
    assert "image_size" in dialog.field_error("image_size")  # beside the field it names, which is marked
    dialog.image_size.setText("96x64")
    settled(qtbot, dialog)
    assert dialog.config is not None and dialog.config.size_hw == (64, 96)


def test_new_run_dialog_runs_its_pre_flight_off_the_gui_thread_and_applies_only_the_latest(qtbot, monkeypatch):
    import threading

    import workbench.dialogs.new_run_dialog as module

    real, gate, seen = module.preflight, threading.Event(), []

    def slow(config, *args, **kwargs):  # a pre-flight that takes as long as the test says
        seen.append((threading.current_thread() is threading.main_thread(), config.search.target_ratio))
        gate.wait(REAL_WORK_MS / 1000)
        return real(config, *args, **kwargs)

    monkeypatch.setattr(module, "preflight", slow)
    dialog = NewRunDialog(preset="pix2pix-sample")
    qtbot.addWidget(dialog)
    dialog.ratio.setValue(5)
    dialog.ratio.setValue(6)
    dialog.ratio.setValue(7)
    # The form answered at once, without a verdict yet: nothing to start while its check is out.
    assert dialog.checking() and dialog.config is None and not dialog.start_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.budget_label.text() == "checking the budget…", timeout=5_000)
    gate.set()
    settled(qtbot, dialog)
    assert dialog.config is not None and dialog.config.search.target_ratio == 7 and dialog.start_button.isEnabled()
    # Never on the GUI thread; one in flight at a time, so the forms typed meanwhile were not each checked.
    assert not any(on_gui for on_gui, _ in seen)
    assert seen[-1][1] == 7 and len(seen) <= 3


def test_new_run_dialog_shows_the_budget_before_start_and_explains_every_field(qtbot, tmp_path):
    from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QLineEdit, QRadioButton

    from engine.config import load_config
    from engine.devices import available_devices
    from engine.profile import profile_model

    dialog = NewRunDialog(preset="pix2pix-sample", taken_names={"pix2pix-sample", "pix2pix-sample-2"})
    qtbot.addWidget(dialog)
    settled(qtbot, dialog)
    assert dialog.name.text() == "pix2pix-sample-3"  # a unique default
    qtbot.waitUntil(lambda: budget_known(dialog), timeout=REAL_WORK_MS)
    config = load_config("pix2pix-sample")
    family = config.family_impl
    teacher = profile_model(family.build_teacher(config.options), family.example_inputs(config.options, config.size_hw)).macs
    settled(qtbot, dialog)
    assert dialog.preflight.teacher_macs == teacher
    text = dialog.budget_label.text()
    settled(qtbot, dialog)
    assert f"teacher {teacher / 1e9:.3g}G MACs" in text and "search budget" in text and "10.0x fewer" in text
    # A ratio the search space cannot meet is refused here, before any training, under the ratio's field.
    dialog.ratio.setValue(dialog.preflight.largest_ratio * 1.5)
    settled(qtbot, dialog)
    assert not dialog.start_button.isEnabled() and "choose a ratio of at most" in dialog.field_error("search.target_ratio")
    assert "marked in red" in dialog.error.text()
    dialog.ratio.setValue(5)
    settled(qtbot, dialog)
    assert dialog.field_error("search.target_ratio") == "" and dialog.error.text() == ""
    assert dialog.start_button.isEnabled() and "5.0x fewer" in dialog.budget_label.text()
    assert not dialog.preview_pending()  # a new ratio needs no new profile of the teacher
    # Unselected options are greyed out; units are shown.
    assert dialog.ratio.isEnabled() and not dialog.macs.isEnabled()
    dialog.by_macs.setChecked(True)
    settled(qtbot, dialog)
    assert dialog.macs.isEnabled() and not dialog.ratio.isEnabled()
    assert not dialog.folder.isEnabled() and dialog.sample.isEnabled()
    assert dialog.supernet_steps.suffix() == " steps" and dialog.macs.suffix() == " M MACs"
    # A name is required, and a taken one refused.
    dialog.name.setText("")
    settled(qtbot, dialog)
    assert "give the run a name" in dialog.field_error("name") and not dialog.start_button.isEnabled()
    dialog.name.setText("pix2pix-sample")
    settled(qtbot, dialog)
    assert "pix2pix-sample-3" in dialog.field_error("name")
    dialog.name.setText("mine")
    # Only this machine's devices; a tooltip on every field.
    assert [dialog.device.itemText(i) for i in range(dialog.device.count())] == ["auto", *available_devices()]
    fields = [w for kind in (QLineEdit, QComboBox, QAbstractSpinBox, QRadioButton) for w in dialog.findChildren(kind)
              if not isinstance(w.parent(), QAbstractSpinBox) and not isinstance(w.parent(), QComboBox)]
    settled(qtbot, dialog)
    assert fields and [w for w in fields if not w.toolTip()] == []
    dialog.show()
    qtbot.wait(50)
    dialog.grab().save(str(tmp_path / "new_run.png"))


def test_new_run_dialog_grows_to_fit_texts_that_arrive_after_it_is_shown(qtbot):
    from PySide6.QtWidgets import QGroupBox

    dialog = NewRunDialog(preset="cyclegan-sample")
    qtbot.addWidget(dialog)
    dialog.show()

    def fitted():
        return dialog.height() == min(dialog.needed_height(), dialog.height_limit())

    # The budget's text arrives from a background profile, after the window took its size.
    qtbot.waitUntil(lambda: budget_known(dialog), timeout=REAL_WORK_MS)
    qtbot.waitUntil(fitted, timeout=5_000)
    squeezed = [box.title() for box in dialog.findChildren(QGroupBox)
                if box.height() < box.minimumSizeHint().height()]
    settled(qtbot, dialog)
    assert squeezed == []
    # Another preset with more fields, then one with fewer: the dialog follows (it no longer only grows).
    dialog.preset.setCurrentText("munit-sample")
    qtbot.waitUntil(fitted, timeout=5_000)
    tall = dialog.height()
    dialog.preset.setCurrentText("pix2pix-sample")
    qtbot.waitUntil(lambda: dialog.height() < tall, timeout=5_000)
    qtbot.waitUntil(fitted, timeout=5_000)


@pytest.mark.parametrize("preset", SAMPLE_PRESETS)
def test_new_run_dialog_fits_a_1366x768_laptop_with_start_in_view(qtbot, preset):
    """A 1366x768 screen less a panel and a title bar: the fields scroll, Start and Cancel stay on screen, and
    messages that come and go grow the dialog within that and shrink it back."""
    from workbench.dialogs.new_run_dialog import LAPTOP_HEIGHT

    dialog = NewRunDialog(preset=preset)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: not dialog.preview_pending(), timeout=REAL_WORK_MS)

    def start_in_view():
        corner = dialog.start_button.mapTo(dialog, dialog.start_button.rect().bottomRight())
        return dialog.rect().contains(corner) and dialog.start_button.isVisible()

    qtbot.waitUntil(lambda: dialog.height() == min(dialog.needed_height(), dialog.height_limit()), timeout=5_000)
    settled(qtbot, dialog)
    assert LAPTOP_HEIGHT + 40 + 32 == 768 and dialog.height() <= LAPTOP_HEIGHT and start_in_view()
    before = dialog.height()
    dialog.name.setText("")  # a message under the name, and one at the bottom
    dialog.folder.setText("/no/such/folder")
    dialog.use_folder.setChecked(True)
    qtbot.waitUntil(lambda: dialog.error.text() != "", timeout=5_000)
    qtbot.wait(50)
    settled(qtbot, dialog)
    assert dialog.height() <= LAPTOP_HEIGHT and start_in_view()
    dialog.name.setText("mine")
    dialog.use_sample.setChecked(True)
    qtbot.waitUntil(lambda: dialog.error.text() == "" and dialog.height() == before, timeout=5_000)


def test_a_paper_preset_in_the_dialog_says_what_it_reproduces_and_which_script_makes_its_data(qtbot):
    dialog = NewRunDialog(preset="paper-pix2pix-map2sat")
    qtbot.addWidget(dialog)
    settled(qtbot, dialog)
    assert "Should land near: FID 48.02 at 4.68G MACs" in dialog.preset_description.text()
    # The folder is the reference's own (database/maps): not here, so the pre-flight names the script that makes it.
    qtbot.waitUntil(lambda: "download_pix2pix_dataset.sh maps" in " ".join(label.text() for label in
                                                                         dialog.findChildren(QLabel)),
                    timeout=REAL_WORK_MS)


def test_new_run_dialog_shows_the_familys_model_options(qtbot):
    dialog = NewRunDialog(preset="pix2pix-sample")
    qtbot.addWidget(dialog)
    form = dialog.model_form
    settled(qtbot, dialog)
    assert set(form.widgets) == set(dialog.config.family_impl.options_model.model_fields)
    assert form.widgets["ngf"].value() == 32 and form.widgets["ngf"].toolTip()
    form.widgets["ngf"].setValue(16)
    form.widgets["norm"].setCurrentText("batch")
    settled(qtbot, dialog)
    assert dialog.config.options.ngf == 16 and dialog.config.options.norm == "batch"
    form.widgets["n_blocks"].setValue(form.widgets["n_blocks"].minimum())
    settled(qtbot, dialog)
    assert dialog.config.options.n_blocks == 3


def test_new_run_dialog_sets_the_search_size_and_the_training_crop_and_shows_units(qtbot):
    dialog = NewRunDialog(preset="cyclegan-sample")
    qtbot.addWidget(dialog)
    settled(qtbot, dialog)
    assert dialog.train_crop.value() == 64 and dialog.population.value() == dialog.config.search.population
    dialog.search_method.setCurrentText("evolution")
    dialog.population.setValue(30)
    dialog.generations.setValue(7)
    dialog.exhaustive_limit.setValue(500)
    dialog.train_crop.setValue(0)  # whole images
    settled(qtbot, dialog)
    search = dialog.config.search
    assert (search.method, search.population, search.generations, search.exhaustive_limit) == ("evolution", 30, 7, 500)
    assert dialog.config.train_crop is None and dialog.train_crop.text() == "whole images"
    assert search.seed is None and dialog.search_seed.text() == "the run's seed"
    dialog.search_seed.setValue(11)  # the evolution's draws on their own seed
    settled(qtbot, dialog)
    assert dialog.config.search.seed == 11 and "another first population" in dialog.search_seed.toolTip()
    dialog.train_crop.setValue(200)  # larger than the 128 px images: refused, and said
    settled(qtbot, dialog)
    assert dialog.config is None and "train_crop" in dialog.error.text()
    form = dialog.model_form
    settled(qtbot, dialog)
    assert form.widgets["ngf"].suffix() == " channels" and form.widgets["n_blocks"].suffix() == " blocks"
    assert form.widgets["norm"].toolTip() != "norm"


def test_new_run_dialog_refuses_illegal_numbers_with_a_message_beside_the_field(qtbot):
    from PySide6.QtTest import QTest

    dialog = NewRunDialog(preset="pix2pix-sample")
    qtbot.addWidget(dialog)
    dialog.show()
    steps = dialog.supernet_steps
    before = steps.value()
    steps.setFocus()
    steps.lineEdit().selectAll()
    QTest.keyClick(steps, Qt.Key.Key_Minus)  # a key Qt drops without a word
    settled(qtbot, dialog)
    assert steps.value() == before
    said = dialog.field_error("supernet.steps")
    settled(qtbot, dialog)
    assert "Supernet steps: '-' is not allowed (whole numbers from 1 to 10000000, in steps)" in said
    # A refused key holds nothing back: no claim of fields to fix while Start is enabled.
    assert dialog.start_button.isEnabled() and "Fix the fields" not in dialog.error.text()
    steps.lineEdit().selectAll()
    QTest.keyClick(steps, Qt.Key.Key_0)
    QTest.keyClick(steps, Qt.Key.Key_Return)  # 0 is below the least: Qt puts the previous value back
    settled(qtbot, dialog)
    assert steps.value() == before
    assert f"'0' is outside whole numbers from 1 to 10000000, in steps; it was put back to {before} steps" in \
        dialog.field_error("supernet.steps")
    steps.lineEdit().selectAll()
    QTest.keyClicks(steps, "42")  # an accepted value clears the message
    settled(qtbot, dialog)
    assert steps.value() == 42 and dialog.field_error("supernet.steps") == ""
    ngf = dialog.model_form.widgets["ngf"]
    ngf.setFocus()
    ngf.lineEdit().selectAll()
    QTest.keyClick(ngf, Qt.Key.Key_Minus)
    settled(qtbot, dialog)
    assert "Model ngf: '-' is not allowed" in dialog.field_error("model")

    # "-5": the minus refused, the 5 taken; once the field is left it says what it now holds.
    steps.setFocus()
    steps.lineEdit().selectAll()
    QTest.keyClicks(steps, "-5")
    QTest.keyClick(steps, Qt.Key.Key_Return)
    settled(qtbot, dialog)
    assert steps.value() == 5
    assert dialog.field_error("supernet.steps") == ("Supernet steps: '-' was not allowed (whole numbers from 1 to "
                                                    "10000000, in steps); the field holds 5 steps")
    # Refused keys of one edit add up: "abc" is said whole.
    steps.lineEdit().selectAll()
    QTest.keyClicks(steps, "abc")
    settled(qtbot, dialog)
    assert "Supernet steps: 'abc' is not allowed" in dialog.field_error("supernet.steps")
    QTest.keyClick(steps, Qt.Key.Key_Return)
    # A value set otherwise (the arrow keys, a preset) ends the message: the field is what it shows.
    QTest.keyClick(steps, Qt.Key.Key_Up)
    settled(qtbot, dialog)
    assert steps.value() == 5 + steps.singleStep() and dialog.field_error("supernet.steps") == ""
    assert dialog.error.text() == "" and dialog.start_button.isEnabled()


def test_new_run_dialog_says_a_configuration_error_beside_its_field_and_forgets_it_when_fixed(qtbot):
    dialog = NewRunDialog(preset="cyclegan-sample")
    qtbot.addWidget(dialog)
    dialog.image_size.setText("250")
    settled(qtbot, dialog)
    assert "image sides must be multiples of 4" in dialog.field_error("image_size")
    assert "Fix the fields marked in red above." in dialog.error.text() and not dialog.start_button.isEnabled()
    dialog.image_size.setText("abc")
    settled(qtbot, dialog)
    assert "an image size is N or WxH" in dialog.field_error("image_size")
    dialog.image_size.setText("128")
    settled(qtbot, dialog)
    assert dialog.field_error("image_size") == "" and dialog.error.text() == "" and dialog.start_button.isEnabled()


def test_new_run_dialog_shows_the_resolved_configuration_with_sources(qtbot, tmp_path):
    from PySide6.QtWidgets import QPlainTextEdit

    dialog = NewRunDialog(preset="gaugan-sample")
    qtbot.addWidget(dialog)
    dialog.batch_size.setValue(dialog.batch_size.value() + 2)
    settled(qtbot, dialog)
    assert dialog.config is not None and dialog.show_config_button.isEnabled()
    lines = {line.split()[0]: line for line in dialog.configuration_text().splitlines()}
    settled(qtbot, dialog)
    assert lines["batch_size"].endswith("(override)") and " 6 " in lines["batch_size"]
    assert lines["image_size"].endswith("(preset gaugan-sample)")  # unchanged fields keep their source
    assert lines["recipe.weight_strategy"].split()[1:] == ["geometric", "(family", "default)"]
    assert lines["seed"].endswith("(default)")
    dialog.show_config_button.click()
    shown = dialog.configuration_dialog.findChild(QPlainTextEdit).toPlainText()
    settled(qtbot, dialog)
    assert shown == dialog.configuration_text()
    dialog.configuration_dialog.grab().save(str(tmp_path / "configuration.png"))


def test_new_run_dialog_offers_gaugan_with_its_fields_samples_and_the_miou_condition(qtbot, tmp_path):
    dialog = NewRunDialog(preset="gaugan-sample")
    qtbot.addWidget(dialog)
    settled(qtbot, dialog)
    assert dialog.family.currentText() == "gaugan"
    assert [dialog.sample.itemText(i) for i in range(dialog.sample.count())] == ["labels2photos"]
    assert {"classes", "instance_edges", "upsampling"} <= set(dialog.model_form.widgets)
    assert dialog.model_form.widgets["classes"].value() == 8
    assert dialog.segmentation_form.isRowVisible(dialog.segmentation_row)
    items = [dialog.metric_choice.itemText(i) for i in range(dialog.metric_choice.count())]
    settled(qtbot, dialog)
    assert items == ["fid", "rfid", "miou (needs a segmentation network)"]
    miou = dialog.metric_choice.model().item(2)
    settled(qtbot, dialog)
    assert not miou.isEnabled() and "segmentation network" in dialog.metric_choice.itemData(2, Qt.ItemDataRole.ToolTipRole)
    dialog.segmentation.setText(str(tmp_path / "drn.onnx"))
    settled(qtbot, dialog)
    assert dialog.metric_choice.model().item(2).isEnabled() and dialog.metric_choice.itemText(2) == "miou"
    dialog.metric_choice.setCurrentText("miou")
    settled(qtbot, dialog)
    assert dialog.config.metric == "miou" and dialog.config.segmentation.onnx.endswith("drn.onnx")
    dialog.model_form.widgets["instance_edges"].setChecked(True)
    settled(qtbot, dialog)
    assert dialog.config.options.label_channels == 9
    dialog.grab().save(str(tmp_path / "new_run_gaugan.png"))
    dialog.family.setCurrentText("pix2pix")  # another family: its own samples, no segmentation row
    settled(qtbot, dialog)
    assert "labels2photos" not in [dialog.sample.itemText(i) for i in range(dialog.sample.count())]
    assert not dialog.segmentation_form.isRowVisible(dialog.segmentation_row)


def test_new_run_dialog_offers_munit_with_its_style_fields_and_unpaired_samples(qtbot, tmp_path):
    dialog = NewRunDialog(preset="munit-sample")
    qtbot.addWidget(dialog)
    settled(qtbot, dialog)
    assert dialog.family.currentText() == "munit"
    samples = [dialog.sample.itemText(i) for i in range(dialog.sample.count())]
    settled(qtbot, dialog)
    assert "gray2tints" in samples and "edges2photos" not in samples  # unpaired data only
    assert {"ngf", "style_dim", "mlp_dim", "student_mlp_dim", "style_encoder"} <= set(dialog.model_form.widgets)
    assert dialog.model_form.widgets["ngf"].value() == 16
    dialog.model_form.widgets["style_encoder"].setChecked(False)
    settled(qtbot, dialog)
    config = dialog.config
    assert config.family == "munit" and config.options.style_encoder is False
    assert export_input_names(config.family_impl, config.options) == ("input", "style")
    dialog.grab().save(str(tmp_path / "new_run_munit.png"))


def test_settings_dialog_shows_whether_the_inception_weights_are_there(qtbot, settings, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    assert dialog.inception_status.text().startswith("not found")
    weights = tmp_path / "pt_inception.pth"
    weights.write_bytes(b"x")
    dialog.inception.setText(str(weights))
    assert dialog.inception_status.text().startswith("found")
    dialog.threads.setValue(3)
    dialog._accept()
    assert dialog.result_settings.threads == 3 and dialog.result_settings.inception_weights == weights


def test_screenshots_script_saves_every_view(finished, tmp_path):
    from workbench.screenshots import capture

    settings, _, run_id, _ = finished
    shots = capture(tmp_path / "shots", settings, run_id)
    assert {p.stem for p in shots} == {"summary", "monitor", "pareto", "compare", "new_run", "export", "settings"}
    assert all(p.stat().st_size > 5000 for p in shots)


def test_the_screenshots_script_says_when_a_workspace_has_no_run_to_show(tmp_path, capsys):
    from workbench.screenshots import main

    with pytest.raises(SystemExit):
        main([str(tmp_path / "shots"), "--workspace", str(tmp_path / "empty")])
    assert "has no runs to show" in capsys.readouterr().err and not (tmp_path / "empty").exists()


def test_the_monitor_reads_long_curves_downsampled_and_zoomed_in_detail(qtbot, store):
    from workbench.views.monitor_view import MAX_PLOT_POINTS, MonitorView

    run_id = store.create_run(name="long", family="pix2pix", dataset="d", config={},
                              stages=["teacher", "supernet", "search", "finetune", "export"])
    for step in range(1, 6001):
        store.record_metrics(run_id, "supernet", step, {"G_gan": float(step), "G_distill": 1.0})
    view = MonitorView(store)
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.show()
    view.set_run(run_id)
    qtbot.waitUntil(lambda: set(view.curves) == {"G_gan", "G_distill"} and not view.reader.busy(), timeout=10_000)
    steps, _ = view.curves["G_gan"].getData()
    assert view.state.curve_width == 16 and len(steps) <= MAX_PLOT_POINTS  # 6000 steps: rollups of 16 steps
    view.plot.getViewBox().setXRange(1000, 1500, padding=0)  # the user zooms in
    qtbot.waitUntil(lambda: view.state.curve_width == 1 and not view.reader.busy(), timeout=10_000)
    steps, values = view.curves["G_gan"].getData()
    assert steps[0] >= 999 and steps[-1] <= 1501 and list(values[:3]) == list(steps[:3])  # every recorded point


def test_pareto_shows_the_teacher_as_reference_and_keeps_its_axes_while_points_arrive(qtbot, store, tmp_path):
    run_id = store.create_run(name="r", family="pix2pix", dataset="d", config={}, stages=["search"])
    view = ParetoView(store)
    qtbot.addWidget(view)
    view.state.export_dir = tmp_path / "exports"
    teacher = TeacherReference(56_800_000_000, {"psnr": 31.5}, "search")
    view.set_run(run_id, budget=800_000, teacher=teacher)
    _shown(qtbot, view)
    events = _recorded_candidates(run_id)
    for event in events[:3]:
        view.handle_event(event)
    view.flush()
    assert view.teacher_line.isVisible() and view.teacher_line.value() == 31.5
    label = view.teacher_line.label.toPlainText()
    assert "teacher psnr 31.5" in label and "56.8G MACs" in label and "search split" in label
    (x0, x1), (y0, y1) = view.plot.getViewBox().viewRange()
    assert x0 == 0 and x1 >= 0.9 and y0 < 20.0 and y1 > 31.5  # every point, the budget and the teacher
    view.handle_event(events[3])  # inside the range: the axes stay as they are
    view.flush()
    assert view.plot.getViewBox().viewRange() == [[x0, x1], [y0, y1]]
    view.handle_event(CandidateScored(run_id=run_id, arch="big", macs=5_000_000, params=1, metrics={"psnr": 33.0}))
    view.flush()
    (_, grown_x1), (_, grown_y1) = view.plot.getViewBox().viewRange()
    assert grown_x1 > 5.0 and grown_y1 > 33.0  # outside: it grows to hold it
    view.plot.getViewBox().sigRangeChangedManually.emit([True, True])  # the user zoomed: the axes are theirs
    view.plot.getViewBox().setRange(xRange=(0, 1), yRange=(20, 30), padding=0)
    view.handle_event(CandidateScored(run_id=run_id, arch="bigger", macs=9_000_000, params=1, metrics={"psnr": 34.0}))
    view.flush()
    assert view.plot.getViewBox().viewRange()[0] == [0, 1]
    view.fit_axes()
    assert view.plot.getViewBox().viewRange()[0][1] > 9.0
    assert view.suggested_path("png") == str(tmp_path / "exports" / f"run-{run_id}-pareto-psnr.png")
    # Another metric fits its own range, even after the user zoomed; its values are shown unscaled.
    view.handle_event(CandidateScored(run_id=run_id, arch="8_8_8_4_4_4_4_4", macs=400_000, params=1,
                                      metrics={"psnr": 26.0, "ssim": 0.59}))
    view.flush()
    view.plot.getViewBox().sigRangeChangedManually.emit([True, True])
    view.plot.getViewBox().setRange(xRange=(0, 1), yRange=(18.5, 22.5), padding=0)
    view.metric_choice.setCurrentText("ssim")
    (_, _), (y0, y1) = view.plot.getViewBox().viewRange()
    assert y0 < 0.59 < y1 and y1 - y0 < 1.0
    assert view.plot.getAxis("left").autoSIPrefixScale == 1.0


def test_pareto_plots_the_metric_against_predicted_latency_with_its_budget(qtbot, store):
    run_id = store.create_run(name="r", family="pix2pix", dataset="d", config={}, stages=["search"])
    view = ParetoView(store)
    qtbot.addWidget(view)
    view.set_run(run_id, budget=None, latency_budget=(4.0, "cpu, pytorch"))
    _shown(qtbot, view)
    assert view.x_column() == "latency_ms" and "latency (ms)" in view.plot.getAxis("bottom").labelText
    # Latency ranks these otherwise than MACs do: the widest-first arch is the slow one.
    latencies = {"8_8_8_8_8_8_8_8": 3.9, "4_4_4_4_4_4_4_4": 1.0, "8_4_8_4_8_4_8_4": 2.0, "4_8_4_8_4_8_4_8": 1.5,
                 "8_8_4_4_8_8_4_4": None}
    events = _recorded_candidates(run_id)
    for event in events:
        view.handle_event(dataclasses.replace(event, latency_ms=latencies[event.arch]))
    qtbot.waitUntil(lambda: _drawn(view, run_id) == 4, timeout=5000)  # the one without a prediction is not drawn
    assert [row["arch"] for row in view.front_points()] == ["4_4_4_4_4_4_4_4", "4_8_4_8_4_8_4_8", "8_4_8_4_8_4_8_4",
                                                           "8_8_8_8_8_8_8_8"]
    xs, _ = view.front.getData()
    assert list(xs) == [1.0, 1.5, 2.0, 3.9]
    assert view.budget_line.isVisible() and view.budget_line.value() == 4.0
    assert "1 without a predicted latency" in view.status.text()
    row = view.nearest(view.view_to_scene(1.5, 25.0))
    assert row["arch"] == "4_8_4_8_4_8_4_8" and "predicted latency 1.5 ms" in _tip(row)
    view.x_choice.setCurrentText("MACs")
    qtbot.waitUntil(lambda: _drawn(view, run_id) == 5, timeout=5000)
    assert not view.budget_line.isVisible()  # this run has no MACs budget
    assert len(view.front_points()) == 4 and "without a predicted latency" not in view.status.text()
    # A run without predictions is not offered the latency axis (it would plot nothing).
    plain = store.create_run(name="p", family="pix2pix", dataset="d", config={}, stages=["search"])
    view.x_choice.setCurrentText("Predicted latency")
    view.set_run(plain, budget=800_000)
    qtbot.waitUntil(lambda: not view.is_loading(), timeout=10_000)
    latency_item = view.x_choice.model().item(1)
    assert view.x_column() == "macs" and not latency_item.isEnabled() and "no predicted latencies" in latency_item.toolTip()
    view.set_run(run_id)
    qtbot.waitUntil(lambda: not view.is_loading(), timeout=10_000)
    assert latency_item.isEnabled()


def test_pareto_plots_the_metric_against_measured_latency_with_the_budget_decided_on_it(qtbot, store):
    """A search whose latency budget was decided on measurement: its candidates against their measured latency,
    the budget on that axis only (a measured limit is not a predicted one), each point's two latencies in its
    tip."""
    run_id = store.create_run(name="r", family="pix2pix", dataset="d", config={}, stages=["search"])
    view = ParetoView(store)
    qtbot.addWidget(view)
    view.set_run(run_id, budget=None, latency_budget=(3.0, "cpu, openvino, measured end to end"), measured=True)
    _shown(qtbot, view)
    assert view.x_column() == "measured_ms" and "measured latency (ms)" in view.plot.getAxis("bottom").labelText
    measured = {"8_8_8_8_8_8_8_8": 2.9, "4_4_4_4_4_4_4_4": 1.0, "8_4_8_4_8_4_8_4": 2.5, "4_8_4_8_4_8_4_8": 1.2,
                "8_8_4_4_8_8_4_4": 2.0}
    for event in _recorded_candidates(run_id):
        view.handle_event(dataclasses.replace(event, measured_ms=measured[event.arch],
                                              latency_ms=2 * measured[event.arch]))
    qtbot.waitUntil(lambda: _drawn(view, run_id) == 5, timeout=5000)
    xs, _ = view.front.getData()
    assert list(xs) == [1.0, 1.2, 2.0, 2.9]  # 8_4_8_4 (2.5 ms, psnr 27) is dominated by 8_8_4_4 (2.0 ms, 29)
    assert view.budget_line.isVisible() and view.budget_line.value() == 3.0
    assert "measured end to end" in view.budget_line.label.format
    row = view.nearest(view.view_to_scene(1.2, 25.0))
    assert "measured latency 1.2 ms" in _tip(row) and "predicted latency 2.4 ms" in _tip(row)
    view.x_choice.setCurrentText("Predicted latency")  # the table's view of the same candidates: no budget line
    qtbot.waitUntil(lambda: list(view.front.getData()[0]) == [2.0, 2.4, 4.0, 5.8], timeout=5000)
    assert not view.budget_line.isVisible()
    # A run searched without measuring is not offered the measured axis.
    plain = store.create_run(name="p", family="pix2pix", dataset="d", config={}, stages=["search"])
    view.set_run(plain, budget=None, latency_budget=(4.0, "cpu, pytorch"))
    qtbot.waitUntil(lambda: not view.is_loading(), timeout=10_000)
    measured_item = view.x_choice.model().item(list(X_AXES).index("Measured latency"))
    assert not measured_item.isEnabled() and "no measured latencies" in measured_item.toolTip()


def test_new_run_dialog_offers_a_latency_budget_and_shows_what_this_machine_measured(qtbot, settings):
    import torch

    from engine.arch import Arch
    from engine.config import load_config
    from engine.latency_table import LatencyTable, build_on_meta, layer_key, layer_shapes, table_path
    from engine.stages.latency_budget import table_folder

    dialog = NewRunDialog(preset="pix2pix-sample", settings=settings)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: budget_known(dialog), timeout=REAL_WORK_MS)
    settled(qtbot, dialog)
    assert not dialog.latency.isEnabled()
    dialog.by_latency.setChecked(True)
    settled(qtbot, dialog)
    assert dialog.latency.isEnabled() and dialog.latency_device.isEnabled() and not dialog.ratio.isEnabled()
    dialog.latency.setValue(3)
    settled(qtbot, dialog)
    search = dialog.config.search
    assert search.latency_budget_ms == 3 and search.target_ratio is None and not search.limits_macs
    assert "measured before the supernet trains" in dialog.budget_label.text() and dialog.start_button.isEnabled()
    # Once a run has measured the table for these conditions, the smallest and largest sub-network's predicted
    # times show: predicted as the engine predicts them (the table's fit over its layers), not as measured.
    config = load_config("pix2pix-sample", overrides={"search": {"latency_budget_ms": 3}})
    space = config.search_space()
    family, options = config.family_impl, config.options
    example = family.example_inputs(options, config.size_hw)
    table = LatencyTable("pix2pix", options.model_dump_json(), "cpu", "pytorch", torch.get_num_threads(),
                         config.size_hw, scale=1.0, offset_ms=0.5)
    predicted = []
    for arch in (Arch.smallest(space), Arch.largest(space)):
        net = build_on_meta(lambda a: family.build_student(options, a), arch)
        for module, shape in layer_shapes(net, example):
            table.layers[layer_key(module, shape)] = 0.01 * (1 + shape[1] // 8)  # made-up times: no timing here
        predicted.append(table.predict(net, example))
    path = table_path(table_folder(settings), "pix2pix", options.model_dump_json(), "cpu",
                      torch.get_num_threads(), config.size_hw)
    path.parent.mkdir(parents=True)
    table.save(path)
    # A budget is decided on measurement (search.latency_decision: measured), so the table refuses only beyond the
    # margin within which candidates are measured (50%): below the smallest's prediction / 1.5.
    dialog.latency.setValue(predicted[0] / 1.6)
    settled(qtbot, dialog)
    assert f"the smallest sub-network {predicted[0]:.3g} ms, the largest {predicted[1]:.3g} ms" in dialog.budget_label.text()
    assert f"predicted {predicted[0]:.3g} ms" in dialog.field_error("search.latency_budget_ms")
    assert not dialog.start_button.isEnabled()
    dialog.latency.setValue(predicted[0] * 1.1)
    settled(qtbot, dialog)
    assert dialog.start_button.isEnabled() and dialog.field_error("search.latency_budget_ms") == ""


def test_new_run_dialog_runs_on_several_processes_and_writes_launch_files(qtbot, settings, tmp_path):
    import subprocess
    from datetime import datetime, timezone

    from engine.store import RunSummary
    from workbench.views.runs_model import RunsTableModel

    dialog = NewRunDialog(preset="pix2pix-sample", settings=settings)
    qtbot.addWidget(dialog)
    dialog.batch_size.setValue(4)
    dialog.processes.setValue(3)
    settled(qtbot, dialog)
    assert "must be a multiple of their number" in dialog.field_error("batch_size")
    assert "the global batch of the 3 processes" in dialog.problems_text() and not dialog.start_button.isEnabled()
    dialog.processes.setValue(2)
    dialog.machines.setValue(2)
    settled(qtbot, dialog)
    assert dialog.start_button.isEnabled() and dialog.launch().processes == 4
    paths = dialog.write_launch_files(tmp_path / "launch")
    settled(qtbot, dialog)
    assert [p.suffix for p in paths] == [".yaml", ".sh", ".slurm"] and "wrote" in dialog.launch_label.text()
    slurm = paths[2].read_text()
    settled(qtbot, dialog)
    assert "#SBATCH --nodes=2" in slurm and "--nproc_per_node 2" in slurm and "--rdzv_endpoint \"$HEAD:29500\"" in slurm
    assert f"--config {paths[0]}" in slurm and f"GCW_WORKSPACE={settings.workspace}" in slurm
    if Path("/bin/bash").is_file():
        for path in paths[1:]:
            assert subprocess.run(["/bin/bash", "-n", str(path)]).returncode == 0  # bash reads them
    dialog.machines.setValue(3)  # 6 processes for a global batch of 4: the pre-flight counts every machine's
    settled(qtbot, dialog)
    assert "the global batch of the 6 processes" in dialog.field_error("batch_size")
    assert not dialog.launch_button.isEnabled() and not dialog.start_button.isEnabled()

    model = RunsTableModel()
    run = RunSummary(id=1, name="r", family="pix2pix", dataset="d", status="running", stage="supernet", step=1,
                     total_steps=2, best_macs=None, best_metric=None, created_at=datetime.now(timezone.utc),
                     started_at=None, error=None, processes=8, hosts=["gpu1", "gpu2"], host="gpu1", pid=7,
                     heartbeat_at=datetime.now(timezone.utc))  # alive: its heartbeat is fresh
    model.set_runs([run])
    settled(qtbot, dialog)
    assert model.index(0, 2).data() == "running · 8 processes, 2 machines"
    assert model.index(0, 2).data(Qt.ItemDataRole.ToolTipRole) == "8 processes (torchrun) on gpu1, gpu2"


def test_pareto_catches_up_with_a_run_that_reports_only_to_the_store(qtbot, store):
    from engine.store import CandidateRecord

    run_id = store.create_run(name="elsewhere", family="pix2pix", dataset="d", config={}, stages=["search"])
    events = _recorded_candidates(run_id)

    def record(chosen):
        store.add_candidates(run_id, [CandidateRecord(e.arch, e.macs, e.params, e.metrics) for e in chosen],
                             metric="psnr")

    record(events[:2])
    view = ParetoView(store)
    qtbot.addWidget(view)
    view.set_run(run_id)
    _shown(qtbot, view)
    assert view.count(run_id) == 2
    record(events[2:])  # scored by processes on another machine: no events reach this window
    view.catch_up(run_id, stored=5)
    qtbot.waitUntil(lambda: _drawn(view, run_id) == 5, timeout=5000)
    assert [row["arch"] for row in view.front_points()] == ["4_4_4_4_4_4_4_4", "8_4_8_4_8_4_8_4", "8_8_4_4_8_8_4_4",
                                                           "8_8_8_8_8_8_8_8"]
    view.catch_up(run_id, stored=5)  # nothing new: nothing read
    assert not view.reader.busy() and view.count(run_id) == 5


def test_new_run_dialog_says_beside_the_metric_when_fid_would_fall_back_to_rfid(qtbot, monkeypatch, tmp_path):
    import workbench.dialogs.new_run_dialog as module

    monkeypatch.setattr(module, "find_inception_weights", lambda setting=None: None)
    dialog = NewRunDialog(preset="cyclegan-sample")
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.metric_choice.setCurrentText("fid")
    settled(qtbot, dialog)
    assert dialog.metric_note.isVisible() and "will report rfid" in dialog.metric_note.text()
    dialog.metric_choice.setCurrentText("rfid")
    settled(qtbot, dialog)
    assert not dialog.metric_note.isVisible()
    monkeypatch.setattr(module, "find_inception_weights", lambda setting=None: tmp_path / "weights.pth")
    dialog.metric_choice.setCurrentText("fid")
    settled(qtbot, dialog)
    assert not dialog.metric_note.isVisible()
    # The background profile of the teacher ends before the dialog does.
    qtbot.waitUntil(lambda: not dialog.preview_pending(), timeout=REAL_WORK_MS)


def test_the_latency_backend_choice_greys_out_what_this_machine_cannot_run(qtbot, monkeypatch):
    from engine import openvino_runtime
    from workbench.widgets.backend_choice import backend_combo

    combo = backend_combo("openvino")
    qtbot.addWidget(combo)
    assert [combo.itemText(i) for i in range(combo.count())] == ["pytorch", "onnxruntime", "openvino"]
    assert combo.currentText() == "openvino" and combo.model().item(2).isEnabled()
    monkeypatch.setattr(openvino_runtime, "available", lambda: False)
    without = backend_combo("openvino")
    qtbot.addWidget(without)
    item = without.model().item(2)
    assert not item.isEnabled() and item.toolTip() == openvino_runtime.MISSING
    assert without.currentText() == "pytorch"  # a remembered choice this machine cannot run is not kept


def test_pareto_forgets_a_hover_and_the_previous_runs_axes_and_counts_only_the_shown_run(qtbot, store):
    from engine.store import CandidateRecord

    run_id = store.create_run(name="r", family="pix2pix", dataset="d", config={}, stages=["search"])
    other = store.create_run(name="o", family="pix2pix", dataset="d", config={}, stages=["search"])
    store.add_candidates(other, [CandidateRecord(f"o{i}", 300_000 + i, 1, {"psnr": 20.0 + i})
                                 for i in range(7)], metric="psnr")
    view = ParetoView(store)
    qtbot.addWidget(view)
    view.set_run(run_id, budget=800_000, teacher=TeacherReference(9_000_000, {"psnr": 31.5}, "search"))
    _shown(qtbot, view)
    events = [dataclasses.replace(e, metrics={**e.metrics, "ssim": e.metrics["psnr"] / 40})
              for e in _recorded_candidates(run_id)]
    for event in events:
        view.handle_event(event)
    view.flush()
    view._hovered((view.view_to_scene(500_000, 27.0),))
    assert view.hover_label.isVisible()
    view.metric_choice.setCurrentText("ssim")  # another metric
    assert not view.hover_label.isVisible()  # it named a point by the values drawn before
    view._hovered((view.view_to_scene(500_000, 27.0),))
    view.hide()  # a tab switch
    assert not view.hover_label.isVisible()
    view._hovered((view.view_to_scene(500_000, 27.0),))  # a late move of the hidden plot
    assert not view.hover_label.isVisible()
    view.show()
    # An overlaid run's candidates are counted apart from the shown run's.
    view.set_runs([(other, "o")])
    view.overlays.item(0).setCheckState(Qt.CheckState.Checked)
    qtbot.waitUntil(lambda: not view.is_loading() and view.count(other) == 7, timeout=10_000)
    qtbot.waitUntil(lambda: not view.drawing(), timeout=10_000)
    view._update_status()
    assert view.status.text().startswith(f"run {run_id}: 5 candidates, 4 on its front; 7 more of 1 overlaid run")
    # The teacher's words sit above every run's points, overlays included.
    assert view.teacher_line.zValue() > max(item.zValue() for layer in view.layers.values() for item in layer.items())
    # A new run with no points yet: the previous axes do not linger.
    empty = store.create_run(name="e", family="pix2pix", dataset="d", config={}, stages=["search"])
    view.overlays.item(0).setCheckState(Qt.CheckState.Unchecked)
    view.set_run(empty)
    assert view.plot.getViewBox().viewRange() == [[0, 1], [0, 1]] and not view.hover_label.isVisible()


def test_compare_controls_stay_put_the_budget_follows_the_choice_and_a_run_at_work_shows_its_best(
        qtbot, finished, monkeypatch):
    from engine.errors import UserError
    from workbench.views import compare_view

    from workbench.background.worker import Worker

    settings, store, run_id, summary = finished
    view = CompareView(store, settings, worker=Worker())  # in this process: the test replaces a facade function
    qtbot.addWidget(view)
    view.resize(1366, 700)
    view.show()
    view.set_run(run_id)
    qtbot.waitUntil(lambda: view.result is not None and bool(view.candidates), timeout=REAL_WORK_MS)
    assert view.budget_label.text() == "final student"

    def top(widget):
        return widget.mapTo(view, widget.rect().topLeft()).y()

    where = {w: top(w) for w in (view.measure_button, view.budget, view.final_button)}
    view.readout.setText("\n".join(f"a long readout line {i}" for i in range(6)))
    qtbot.wait(20)
    assert {w: top(w) for w in where} == where  # the controls did not move as the text grew
    view.readout.setText("short")
    qtbot.wait(20)
    assert {w: top(w) for w in where} == where

    # A Pareto click on a front candidate moves the slider and its words; Final student says so.
    macs, arch, _ = view.candidates[0]
    view.select_candidate(run_id, arch)
    assert view.budget.value() == 0 and view.budget_label.text() == f"budget: {macs / 1e6:.2f}M MACs"
    view.show_final_student()
    assert view.budget_label.text() == "final student"
    qtbot.waitUntil(lambda: view.result.final, timeout=REAL_WORK_MS)
    assert view.scale_high.text() != ""

    # Another run: nothing of this one lingers (the colour scale included), nor a late failure of its preview.
    view.update_preview()
    asked_before = view.state.latest_preview
    view.set_run(run_id + 1000)
    view.state.jobs[asked_before] = Asked("preview", run_id, None, "a.png", 0)  # still running: it fails after the switch
    view._job_failed(asked_before, "no finished finetune stage yet")
    assert not view.state.no_final_student and "could not compute" not in view.readout.text()
    assert view.scale_high.text() == "" and view.budget_label.text() == "budget: -"

    # A run still at work (its search over, no fine-tuned student yet): it opens on its best candidate, said so.
    real_preview = compare_view.api.preview

    def no_final_yet(store_, settings_, run, image, arch, seed=0):
        if arch is None:
            raise UserError(f"run {run} has no finished finetune stage yet")
        return real_preview(store_, settings_, run, image, arch, seed)

    monkeypatch.setattr(compare_view.api, "preview", no_final_yet)
    view.set_run(run_id)
    qtbot.waitUntil(lambda: view.result is not None, timeout=REAL_WORK_MS)
    best = view.candidates[-1][1]
    assert view.arch == best and view.result.arch == best
    assert view.readout.text().startswith("no final student yet (the run has not fine-tuned one)")
    assert "could not compute" not in view.readout.text() and view.budget_label.text().startswith("budget: ")


def test_settings_dialog_shows_a_refused_servers_message_whole(qtbot, settings):
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.show()
    # A PostgreSQL server that refuses the connection (nothing listens on this port).
    dialog.store_url.setText("postgresql+psycopg://someone:secret@127.0.0.1:9/gcw")
    dialog._accept()
    qtbot.wait(20)
    text = dialog.error.text()
    assert "current store is kept" in text and dialog.result_settings is None
    label = dialog.error
    assert label.wordWrap() and label.height() >= label.heightForWidth(label.width())  # every wrapped line shown
    assert dialog.rect().contains(label.geometry())
