"""The views' Qt-free state."""

import random

from engine.events import CandidateScored, Message, StageFailed, StageStarted, StepProgress
from workbench.state import Point, RunMonitor, pareto_front


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

    from workbench.state import ParetoFront, front_rows

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
