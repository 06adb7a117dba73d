"""The summary of a finished run: teacher vs student with every number labelled, the grid, the links."""

from engine.store import RunSummary
from engine.api import RunResult
from workbench.views.summary_view import SummaryView, summary_rows


def _listed(store, run_id) -> RunSummary:
    return next(run for run in store.list_runs() if run.id == run_id)


def test_the_summary_table_holds_the_runs_numbers_each_labelled(finished):
    settings, store, run_id, summary = finished
    rows = {row[0]: row[1:] for row in summary_rows(RunResult.from_dict(summary))}
    assert rows["MACs"][2] == f"{summary['macs_ratio']:.1f}x fewer"
    psnr = rows["psnr (test split, dB, primary)"]
    assert psnr[:2] == (f"{summary['teacher']['metrics']['psnr']:.4g}", f"{summary['student']['metrics']['psnr']:.4g}")
    assert "than the teacher" in psnr[2]
    assert rows["psnr_to_teacher (test split, dB)"][0] == "-"
    latency = [label for label in rows if label.startswith("Latency, PyTorch")]
    assert len(latency) == 1 and "cpu" in latency[0] and "batch 1" in latency[0]
    assert rows[latency[0]][2].split(" (")[0].endswith(("x faster", "x slower"))
    assert "p10-p90" in rows[latency[0]][0]
    assert any(label.startswith("Latency, ONNX Runtime (") for label in rows)
    assert any("int8 variant" in label for label in rows)
    assert not any(label.startswith("Predicted latency") for label in rows)  # its search predicted none
    predicted = {"ms": 1.9, "device": "cpu", "backend": "pytorch", "threads": 2, "size": [32, 48],
                 "measured_ms": 2.0, "error": -0.05}
    rows = {row[0]: row[1:] for row in summary_rows(RunResult.from_dict({**summary, "predicted_latency": predicted}))}
    assert rows["Predicted latency, PyTorch (cpu, 2 threads, batch 1, 48x32; latency table)"] == \
        ("", "1.9 ms", "measured 2 ms (-5.0%)")
    # A search whose latency budget was decided on measurement: the kept student's reading and how it was taken.
    how = "measured end to end (OpenVINO, cpu, 2 threads), interleaved with the reference network over 1 reading"
    search = {"latency_measured": {"arch": "a", "ms": 2.5, "how": how, "speedup_over_teacher": 10.4},
              "measurements": {"teacher_ms": 26.0}}
    rows = {row[0]: row[1:] for row in summary_rows(RunResult.from_dict({**summary, "search": search}))}
    assert rows["Latency in the search's budget (measured end to end)"] == \
        ("26 ms", "2.5 ms", f"10.4x faster than the teacher; {how}")


def test_the_view_shows_the_grid_the_arch_and_links_and_waits_for_unfinished_runs(qtbot, finished, tmp_path):
    settings, store, run_id, summary = finished
    view = SummaryView()
    qtbot.addWidget(view)
    view.resize(1000, 800)
    view.show()
    view.show_summary(_listed(store, run_id), RunResult.from_dict(summary), settings.runs_dir / f"{run_id:05d}")
    assert summary["student"]["arch"] in view.details.text()
    assert "model_card.json" in view.details.text() and "student.onnx" in view.details.text()
    assert view.table.rowCount() == len(summary_rows(RunResult.from_dict(summary)))
    assert not view.grid.pixmap().isNull() and "input | ground truth | teacher | student" in view.grid_caption.text()
    qtbot.wait(50)
    view.grab().save(str(tmp_path / "summary.png"))

    pending = store.create_run(name="later", family="pix2pix", dataset="d", config={}, stages=["teacher"])
    view.show_summary(_listed(store, pending), None)
    assert "when the run has finished" in view.details.text() and view.table.rowCount() == 0
    assert view.grid.pixmap().isNull()


def test_the_words_agree_with_the_other_views_and_the_latency_row_adds_up(qtbot, finished):
    from engine.api import PRESETS
    from workbench.dialogs.new_run_dialog import NewRunDialog
    from workbench.platform.resources import preset_descriptions

    settings, store, run_id, summary = finished
    view = SummaryView()
    qtbot.addWidget(view)
    listed = _listed(store, run_id)
    view.show_summary(listed, RunResult.from_dict(summary), settings.runs_dir / f"{run_id:05d}")
    # The title names the family and the dataset, as the monitor's does.
    assert f"({listed.family}, {listed.dataset})" in view.title.text()
    # The speed-up is the median of per-round ratios; the ratio of the two medians shown is said beside it.
    rows = {row[0]: row[1:] for row in summary_rows(RunResult.from_dict(summary))}
    from engine.api import LatencyReading

    latency = next(label for label in rows if label.startswith("Latency, PyTorch"))
    timings = LatencyReading.from_dict(summary["latency"]["pytorch"]).timings
    of_medians = timings["teacher"].median_ms / timings["student"].median_ms
    assert f"ratio of the medians {of_medians:.2f}x" in rows[latency][2]
    # Exports are ONNX and OpenVINO, in every preset's words; "1 generation", not "1 generations".
    assert all("ONNX and OpenVINO" in text for text in preset_descriptions().values() if "exported" in text)
    dialog = NewRunDialog(preset=sorted(PRESETS)[0])
    qtbot.addWidget(dialog)
    dialog.generations.setValue(1)
    assert dialog.generations.text() == "1 generation"
    dialog.generations.setValue(3)
    assert dialog.generations.text() == "3 generations"
