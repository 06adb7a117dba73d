"""A latency budget decided on measurement: each candidate timed interleaved with a fixed reference network
(the per-round ratio kept, so a machine that slows down slows both sides), busy readings repeated, one
measurement per sub-network kept and reused on resume, and a budget given as a speed-up over the teacher.
Every clock here is fake: no test depends on this machine's speed."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.arch import Arch
from engine.config import load_config, merge
from engine.errors import ConfigError
from engine.latency import measure
from engine.measured_budget import Baseline, MeasuredBudget
from engine.preflight import speedup_problem
from engine.stages.latency_budget import MEASURED_FILE, measured_budget, read_measurements
from engine.search import NothingFits, SearchProblem, exhaustive_search


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def pair_timer(clock: FakeClock, candidate_ms: dict[str, float], reference_ms: float = 10.0, load=None):
    """A timer that 'runs' the reference and a candidate by advancing the fake clock; ``load(round)`` slows both
    alike (a busy machine), or only one side on some rounds (noise)."""
    calls = []

    def timer(arch: Arch):
        calls.append(str(arch))
        runs = itertools.count()

        def factor() -> float:  # one load per round: both models of a round run under it
            return load(next(runs) // 2) if load else 1.0

        def reference():
            clock.now += reference_ms * factor() / 1000

        def candidate():
            clock.now += candidate_ms[str(arch)] * factor() / 1000

        return measure({"reference": reference, "candidate": candidate}, clock=clock, min_rounds=10, max_rounds=40,
                       time_cap_s=1e9, warmup=0)

    timer.calls = calls
    return timer


def test_a_machine_that_slows_down_slows_both_sides_and_the_ratio_holds():
    clock = FakeClock()
    # Rounds get up to 3x slower as the machine fills: the candidate's own median would be far off; its ratio is not.
    timer = pair_timer(clock, {"8_8": 5.0}, load=lambda r: 1.0 + 2.0 * (r % 7) / 6)
    budget = MeasuredBudget(timer, Baseline(reference_ms=10.0, teacher_over_reference=None), budget_ms=6.0)
    measurement = budget.measure(Arch((8, 8)))
    assert measurement.ms == pytest.approx(5.0) and measurement.speedup_over_reference == pytest.approx(2.0)
    assert measurement.attempts == 1 and not measurement.busy
    assert budget.fits(Arch((8, 8)))


def test_busy_readings_are_repeated_and_the_steadiest_kept():
    clock = FakeClock()
    attempts = {"n": 0}
    noisy = pair_timer(clock, {"8_8": 5.0}, load=None)

    def timer(arch):
        attempts["n"] += 1
        if attempts["n"] == 1:  # the first reading: the candidate's rounds disturbed alone (wide ratio spread)
            spikes = itertools.cycle([1.0, 1.0, 2.5])
            return measure({"reference": lambda: setattr(clock, "now", clock.now + 0.010),
                            "candidate": lambda: setattr(clock, "now", clock.now + 0.005 * next(spikes))},
                           clock=clock, min_rounds=10, max_rounds=30, time_cap_s=1e9, warmup=0)
        return noisy(arch)

    budget = MeasuredBudget(timer, Baseline(10.0, None), budget_ms=6.0)
    measurement = budget.measure(Arch((8, 8)))
    assert measurement.attempts == 2 and not measurement.busy and measurement.ms == pytest.approx(5.0)

    always_busy = MeasuredBudget(lambda arch: timer(arch) if attempts.update(n=0) is None else None,
                                 Baseline(10.0, None), budget_ms=6.0, attempts=1)
    busy = always_busy.measure(Arch((4, 4)))
    assert busy.busy and busy.attempts == 1 and "less certain" in busy.how()


def test_one_measurement_per_sub_network_and_the_table_only_pre_filters():
    clock = FakeClock()
    widths = {"8_8": 9.0, "8_4": 6.0, "4_8": 4.5, "4_4": 3.0}
    timer = pair_timer(clock, widths)
    # The table is 30% optimistic for everything: "8_8" (predicted 6.3) is measured and refused; beyond the
    # margin, nothing is measured.
    predicted = {key: value * 0.7 for key, value in widths.items()}
    predicted["8_8"] = 20.0
    budget = MeasuredBudget(timer, Baseline(10.0, None), budget_ms=5.0, margin=0.5,
                            predicted=lambda arch: predicted[str(arch)])
    problem = SearchProblem(space=[(8, 4), (8, 4)], macs=lambda arch: 0, score=lambda arch: sum(arch.values),
                            budget=None, higher_is_better=True, measured=budget.fits, measured_limit=budget.describe())
    best, value = exhaustive_search(problem)
    assert str(best) == "4_8" and value == 12  # 8_4 (measured 6 ms) is over 5 ms, though predicted 4.2
    assert sorted(timer.calls) == ["4_4", "4_8", "8_4"] and budget.refused_on_prediction >= 1
    problem.fits(Arch((4, 8)))
    assert sorted(timer.calls) == ["4_4", "4_8", "8_4"]  # measured once, whatever asks again


def test_nothing_measured_within_the_budget_is_said():
    clock = FakeClock()
    budget = MeasuredBudget(pair_timer(clock, {"4": 30.0, "8": 40.0}), Baseline(10.0, None), budget_ms=5.0)
    problem = SearchProblem(space=[(8, 4)], macs=lambda arch: 0, score=lambda arch: 0.0, budget=None,
                            measured=budget.fits, measured_limit=budget.describe())
    with pytest.raises(NothingFits, match="5 ms measured end to end"):
        exhaustive_search(problem)


def test_a_speedup_budget_is_the_teachers_measured_latency_over_the_speedup():
    clock = FakeClock()
    # The teacher is 12x the reference (120 ms); 10x faster than it means at most 12 ms.
    budget = MeasuredBudget(pair_timer(clock, {"8": 14.0, "4": 11.0}), Baseline(10.0, teacher_over_reference=12.0),
                            speedup=10.0)
    assert budget.limit_ms() == pytest.approx(12.0)
    assert not budget.fits(Arch((8,))) and budget.fits(Arch((4,)))
    assert budget.speedup_of(Arch((4,))) == pytest.approx(120 / 11)
    both = MeasuredBudget(budget.timer, budget.baseline, speedup=10.0, budget_ms=11.5)
    assert both.limit_ms() == pytest.approx(11.5)
    with pytest.raises(ValueError, match="teacher measured"):
        MeasuredBudget(budget.timer, Baseline(10.0, None), speedup=10.0)


def _config(**search):
    return load_config(overrides=merge({"name": "m", "family": "pix2pix", "dataset": {"sample": "edges2photos"},
                                        "image_size": 32, "model": {"ngf": 8, "n_blocks": 3},
                                        "supernet": {"search_space": [[8, 4]] * 8}}, {"search": search}))


def test_the_speedup_budget_resolves_and_its_preflight_check_refuses_what_cannot_be_met():
    config = _config(speedup_budget=10)
    spec = config.search
    assert spec.limits_latency and spec.measures_latency and spec.predicts_latency and not spec.limits_macs
    problem = speedup_problem(config, Arch((4,) * 8), 6.2, "openvino on cpu, 2 threads, batch 1, 32x32")
    assert problem.field == "search.speedup_budget"
    assert "lower it to at most 6.2" in problem.sentence and "6.2x faster than the teacher" in problem.sentence
    assert speedup_problem(config, Arch((4,) * 8), 10.5, "x") is None
    with pytest.raises(ConfigError, match="needs search.latency_decision: measured"):
        _config(speedup_budget=10, latency_decision="predicted")


class FakeTimer:
    reference_arch = Arch((4,) * 8)

    def __init__(self, clock, widths):
        self.inner = pair_timer(clock, widths)
        self.baselines = 0

    def baseline(self, with_teacher):
        self.baselines += 1
        return Baseline(10.0, 12.0 if with_teacher else None), "pytorch on cpu, 1 thread, batch 1, 32x32"

    def __call__(self, arch):
        return self.inner(arch)


def test_a_resumed_search_reuses_the_measurements_and_a_torn_last_line_is_skipped(tmp_path: Path):
    clock = FakeClock()
    widths = {"8_8_8_8_8_8_8_8": 9.0, "4_4_4_4_4_4_4_4": 3.0}
    ctx = SimpleNamespace(stage_dir=tmp_path, config=_config(latency_budget_ms=5.0), messages=[])
    ctx.message = lambda text, level="info": ctx.messages.append(text)
    timer = FakeTimer(clock, widths)
    first = measured_budget(ctx, None, timer)
    assert first.fits(Arch.parse("4_4_4_4_4_4_4_4", 8)) and not first.fits(Arch.parse("8_8_8_8_8_8_8_8", 8))
    with (tmp_path / MEASURED_FILE).open("a") as handle:
        handle.write('{"arch": "8_4_8')  # a process killed while appending
    baseline, stored = read_measurements(tmp_path / MEASURED_FILE)
    assert baseline["baseline"]["reference_ms"] == 10.0 and set(stored) == set(widths)

    again = FakeTimer(clock, widths)
    resumed = measured_budget(ctx, None, again)
    assert resumed.fits(Arch.parse("4_4_4_4_4_4_4_4", 8))
    assert again.baselines == 0 and again.inner.calls == [] and resumed.measured == 0
    assert "2 measurements of an earlier search reused" in ctx.messages[-2]


def test_the_pre_filter_follows_the_machine_as_the_reference_is_measured_now():
    """A table is fitted once; a shared host may run twice as slow an hour later. Its predictions are put on the
    reference's measured time, so that the pre-filter does not send every candidate to be measured (or none)."""
    from engine.measured_budget import on_reference

    def table(arch: Arch) -> float:  # fitted when the machine ran the reference (1, 1) in 2 ms
        return float(sum(arch.values))

    now, scale = on_reference(table, Arch((1, 1)), 4.0)  # it takes 4 ms now
    assert scale == 2.0 and now(Arch((2, 3))) == 10.0
    timed = []

    def timer(arch):
        timed.append(arch)
        raise AssertionError("not measured: refused on the prediction")

    budget = MeasuredBudget(timer, Baseline(4.0, None), budget_ms=6.0, predicted=now, margin=0.5)
    assert budget.fits(Arch((2, 3))) is False and budget.refused_on_prediction == 1 and timed == []
    assert MeasuredBudget(timer, Baseline(4.0, None), budget_ms=6.0, predicted=table, margin=0.5).worth_measuring(
        Arch((2, 3)))  # the stale table would have measured it


def _kept_and_drawn(space, true_ms, score, budget_ms, predicted, margin=0.5):
    """The same budget searched twice: measuring every candidate drawn, and only those the search would keep."""
    runs = {}
    for how in ("drawn", "kept"):
        timer = pair_timer(FakeClock(), true_ms)
        budget = MeasuredBudget(timer, Baseline(10.0, None), budget_ms=budget_ms, margin=margin, predicted=predicted)
        problem = SearchProblem(space=space, macs=lambda arch: 0, score=score, budget=None, higher_is_better=True,
                                measured=budget.fits, measured_limit=budget.describe(),
                                prefilter=budget.drawable if how == "kept" else None)
        runs[how] = (problem, timer, budget)
    return runs


def test_measuring_only_what_the_search_keeps_keeps_the_same_student_with_fewer_measurements():
    """Exhaustive: every sub-network the pre-filter passes is scored, then measured in order of score until one is
    within the budget: the same student as when every one is measured first, and only the candidates that score
    better than it are measured besides it."""
    space = [(16, 12, 8, 4)] * 3
    archs = [Arch(v) for v in itertools.product(*space)]
    true_ms = {str(a): 0.5 * sum(a.values) + 0.03 * a.values[0] for a in archs}
    predicted = {key: 0.9 * ms for key, ms in true_ms.items()}  # an optimistic table
    score = lambda arch: sum(arch.values) + 1e-7 * int("".join(f"{v:02d}" for v in arch.values))  # noqa: E731 - no ties
    runs = _kept_and_drawn(space, true_ms, score, 14.0, lambda a: predicted[str(a)], margin=0.2)
    results = {how: exhaustive_search(problem) for how, (problem, _, _) in runs.items()}
    assert results["kept"] == results["drawn"]
    best = results["kept"][0]
    assert true_ms[str(best)] <= 14.0
    assert max(score(a) for a in archs if true_ms[str(a)] <= 14.0) == score(best)
    drawn = set(runs["drawn"][1].calls) - {"4_4_4"}  # the smallest: measured first by both, to refuse early
    kept = set(runs["kept"][1].calls) - {"4_4_4"}
    passed = {str(a) for a in archs if predicted[str(a)] <= 14.0 * 1.2} - {"4_4_4"}
    assert drawn == passed
    assert kept == {a for a in passed if score(Arch.parse(a, 3)) >= score(best)} and len(kept) < len(drawn)


def test_an_evolution_measuring_only_what_it_keeps_keeps_its_best_within_the_budget():
    """The evolution draws and scores on the pre-filter; its parents and its result are the best members measured
    within the budget: nothing it keeps is over it, and no member it scored and left beats it within the budget."""
    import random

    from engine.search import evolutionary_search

    space = [(16, 12, 8, 4)] * 4
    archs = [Arch(v) for v in itertools.product(*space)]
    true_ms = {str(a): 0.4 * sum(a.values) + 0.05 * a.values[2] for a in archs}
    predicted = {key: 0.9 * ms for key, ms in true_ms.items()}  # an optimistic table
    score = lambda arch: sum(arch.values) + 0.01 * arch.values[3]  # noqa: E731
    runs = _kept_and_drawn(space, true_ms, score, 14.0, lambda a: predicted[str(a)], margin=0.2)
    found = {}
    for how, (problem, timer, _) in runs.items():
        visited: list[str] = []
        problem.score = lambda arch, visited=visited: visited.append(str(arch)) or score(arch)
        best, _ = evolutionary_search(problem, population=12, generations=4, parent_ratio=0.25, mutation_ratio=0.5,
                                      mutation_prob=0.2, rng=random.Random(3))
        assert true_ms[str(best)] <= 14.0 and str(best) in timer.calls
        assert all(score(Arch.parse(a, 4)) <= score(best) for a in visited if true_ms[a] <= 14.0)
        found[how] = (len(timer.calls), len(visited))
    # Drawn: every child measured before it is scored, those over the budget redrawn; kept: members scored on the
    # pre-filter's word, and measured only when ranked among the parents or the best.
    assert found["kept"][0] < found["drawn"][0] / 2 and found["kept"][0] < found["kept"][1]
