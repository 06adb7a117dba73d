"""The views' Qt-free state."""

import random

from engine.api import TeacherReference
from engine.events import CandidateScored, Message, StageFailed, StageStarted, StepProgress
from workbench.session.state import ParetoFront, Point, RunMonitor, RunPoints, pareto_front, write_candidates_csv


def _brute_front(points, metric, higher):
    def dominated(p):
        return any((q.macs <= p.macs and (q.metrics[metric] >= p.metrics[metric] if higher else q.metrics[metric] <= p.metrics[metric]))
                   and (q.macs, q.metrics[metric]) != (p.macs, p.metrics[metric]) for q in points)
    return sorted((p for p in points if not dominated(p)), key=lambda p: p.macs)


def test_pareto_front_matches_brute_force():
    rng = random.Random(0)
    points = [Point(1, f"a{i}", rng.randrange(1, 50), 0, {"fid": rng.random(), "psnr": rng.random()}) for i in range(300)]
    for metric, higher in (("fid", False), ("psnr", True)):
        assert [p.arch for p in pareto_front(points, metric, higher)] == [p.arch for p in _brute_front(points, metric, higher)]


def test_monitor_follows_progress_and_failures_of_the_stages():
    monitor = RunMonitor()
    changes = []
    monitor.subscribe(lambda: changes.append(1))
    monitor.handle(StageStarted(run_id=4, stage="supernet", total_steps=10, time=100.0))
    monitor.handle(StepProgress(run_id=4, stage="supernet", step=5, total_steps=10, losses={"G_gan": 0.5}, time=110.0))
    stage = monitor.stages["supernet"]
    assert (monitor.run_id, stage.step, stage.total) == (4, 5, 10)
    assert stage.eta_seconds() == 10.0
    monitor.handle(CandidateScored(run_id=4, arch="8_8", macs=10, params=2, metrics={"psnr": 20.0}))
    monitor.handle(Message(run_id=4, level="warning", text="careful"))
    monitor.handle(StageFailed(run_id=4, stage="supernet", error="out of memory"))
    assert monitor.error == "out of memory" and stage.status == "failed"
    assert len(changes) == 5


def test_the_incremental_front_equals_the_front_of_all_points_at_every_arrival():
    import numpy as np

    from workbench.session.state import ParetoFront, front_rows

    rng = np.random.default_rng(0)
    macs = rng.integers(1, 60, 2000).astype(float)
    scores = np.round(rng.random(2000), 2)  # ties in both coordinates on purpose
    scores[::97] = np.nan  # candidates without the metric
    front = ParetoFront(macs[:500], scores[:500])
    assert front.rows == list(front_rows(macs[:500], scores[:500]))
    for row in range(500, 2000):
        front.add(macs[row], scores[row], row)
        if row % 150 == 0 or row == 1999:
            expected = front_rows(macs[:row + 1], scores[:row + 1])
            assert [(macs[r], scores[r]) for r in front.rows] == [(macs[r], scores[r]) for r in expected]
    assert all(a > b for a, b in zip(front.scores, front.scores[1:]))


def test_one_selection_tells_its_listeners_of_each_change_and_names_it():
    from workbench.session.state import Selection

    selection, heard = Selection(), []
    selection.subscribe(lambda: heard.append(selection.current))
    selection.select_run(3)
    selection.select(3, "8_8", "pareto")
    selection.select(3, "8_8", "compare")  # the same choice from another view: no echo
    assert [(s.run_id, s.arch, s.source) for s in heard] == [(3, None, "runs"), (3, "8_8", "pareto")]
    assert selection.describe() == "selected 8_8 of run 3" and selection.candidate_of(3) == "8_8"
    assert selection.candidate_of(4) is None
    selection.select(3, None, "compare")
    assert selection.describe() == "showing the final student of run 3" and len(heard) == 3
    # A run still at work has no final student to show yet: said as it is.
    assert selection.describe("running", "supernet") == "showing run 3 (running in its supernet stage: no final " \
                                                        "student yet)"
    assert selection.describe("finished", "export") == "showing the final student of run 3"
    selection.select_run(4)
    assert selection.current.arch is None and selection.candidate_of(4) is None


def test_run_references_keep_what_is_known_and_say_when_something_changed():
    from workbench.session.state import RunReferences

    references = RunReferences()
    assert references.update(1, budget=5e6) and not references.knows_teacher(1)
    assert not references.update(1)  # nothing new: nothing to redraw
    assert references.update(1, teacher=TeacherReference(5e7, {"fid": 3.0}))
    assert references.knows_teacher(1) and references.budgets[1] == 5e6
    assert not references.update(1, budget=5e6) and references.update(2, latency_budget=(3.0, "cpu, pytorch"))


def _scored(run_id: int, arch: str, macs: int, **metrics: float) -> CandidateScored:
    return CandidateScored(run_id=run_id, arch=arch, macs=macs, params=1, metrics=metrics)


def test_a_runs_points_merge_the_events_that_arrived_while_its_read_ran():
    from engine.api import CandidateTable

    points = RunPoints(3)
    points.receive(_scored(3, "b", 20, fid=40.0))  # scored while the store was being read
    assert points.count() == 1 and not points.loaded and points.metric_names() == {"fid"}
    stored = CandidateTable.from_rows(3, [1, 2], ["a", "b"], [10, 20], [1, 1], [None, None],
                                      [{"fid": 50.0}, {"fid": 45.0}])
    assert points.load(stored) == 1  # "b" was in the store already: its later score replaces it
    assert points.loaded and points.count() == 2 and points.pending == []
    assert list(points.table.archs) == ["a", "b"] and points.table.metrics["fid"].tolist() == [50.0, 40.0]


def test_the_csv_has_every_runs_candidates_and_a_column_per_metric_any_run_has(tmp_path):
    import csv

    pix2pix, cyclegan = RunPoints(1), RunPoints(2)
    pix2pix.load(table_of([_scored(1, "x", 10, psnr=20.0), _scored(1, "y", 30, psnr=22.0)]))
    cyclegan.load(table_of([_scored(2, "z", 15, fid=60.0)]))
    pix2pix.front = ParetoFront(pix2pix.table.macs.astype(float), -pix2pix.table.metrics["psnr"])
    path = tmp_path / "points.csv"
    write_candidates_csv(path, [pix2pix, cyclegan])
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["run_id", "arch", "macs", "params", "fid", "psnr", "latency_ms", "measured_ms", "on_front"]
    assert [(r["run_id"], r["arch"], r["fid"], r["psnr"], r["on_front"]) for r in rows] == [
        ("1", "x", "", "20.0", "True"), ("1", "y", "", "22.0", "True"), ("2", "z", "60.0", "", "False")]


def table_of(events):
    from workbench.session.state import table_of_events

    return table_of_events(events[0].run_id, events)


def test_the_session_tells_whoever_follows_it_of_new_settings_and_a_new_store():
    """The window's settings and store have one home: views follow it instead of being handed a store."""
    from workbench.session.state import Session

    session = Session("settings", "store")
    seen = []
    session.subscribe(lambda: seen.append((session.settings, session.store)))
    session.use("new settings")
    session.use("other settings", "other store")
    assert seen == [("new settings", "store"), ("other settings", "other store")]
