"""The one latency protocol: interleaved rounds, medians with spread, per-round ratios, a busy flag."""

import pytest
import torch

from engine.latency import LatencyReading, describe, faster, measure, speedup


class FakeMachine:
    """A clock that only the models move: each run takes its next duration (seconds)."""

    def __init__(self):
        self.now, self.calls = 0.0, []

    def clock(self):
        return self.now

    def model(self, name, durations):
        durations = iter(durations)

        def run():
            self.calls.append(name)
            self.now += next(durations)
        return run


def test_models_are_timed_in_interleaved_rounds_and_the_ratio_is_per_round():
    machine = FakeMachine()
    # The machine gets twice as slow half-way: both sides of each round's ratio slow down alike.
    teacher = machine.model("teacher", [0.010] * 21 + [0.020] * 20)
    student = machine.model("student", [0.002] * 21 + [0.004] * 20)
    reading = measure({"teacher": teacher, "student": student}, warmup=1, min_rounds=40, max_rounds=40,
                      clock=machine.clock, size=(32, 32), time_cap_s=1e9)
    # One warm-up each, then round 1 teacher first, round 2 student first, and so on.
    assert machine.calls[:6] == ["teacher", "student", "teacher", "student", "student", "teacher"]
    assert reading.timings["teacher"].runs == reading.timings["student"].runs == 40
    teacher_timing = reading.timings["teacher"]
    assert (teacher_timing.p10_ms, teacher_timing.p90_ms) == pytest.approx((10.0, 20.0))
    ratio = reading.ratios["teacher/student"]
    assert (ratio.median_ms, ratio.p10_ms, ratio.p90_ms) == pytest.approx((5.0, 5.0, 5.0))  # each timing spread 2x


def test_a_reading_says_when_the_machine_was_busy_and_round_trips():
    machine = FakeMachine()
    steady = measure({"a": machine.model("a", [0.001] * 20)}, warmup=0, min_rounds=20, max_rounds=20,
                     clock=machine.clock, time_cap_s=1e9)
    assert not steady.busy and steady.timings["a"].spread == pytest.approx(0, abs=1e-9)
    noisy = measure({"a": machine.model("a", [0.001, 0.003] * 10)}, warmup=0, min_rounds=20, max_rounds=20,
                    clock=machine.clock, time_cap_s=1e9)
    assert noisy.busy and "machine busy" in noisy.conditions()
    again = LatencyReading.from_dict(noisy.as_dict())
    assert again.timings == noisy.timings and again.busy


def test_rounds_stop_once_the_medians_settle_or_at_the_time_cap():
    machine = FakeMachine()
    settled = measure({"a": machine.model("a", [0.002] * 500), "b": machine.model("b", [0.001] * 500)},
                      warmup=0, min_rounds=10, max_rounds=500, clock=machine.clock, time_cap_s=1e9)
    assert settled.timings["a"].runs == 10
    drifting = [0.001 * (1.05 ** i) for i in range(500)]  # never settles
    capped = measure({"a": machine.model("a", drifting)}, warmup=0, min_rounds=10, max_rounds=500,
                     clock=machine.clock, time_cap_s=0.1)
    assert 10 <= capped.timings["a"].runs < 60 and capped.seconds >= 0.1


def test_a_real_measurement_of_two_models_with_its_conditions():
    from engine.export import measure_models

    big, small = torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.Conv2d(3, 4, 3, padding=1)
    reading = measure_models({"teacher": big, "student": small}, (torch.rand(1, 3, 32, 32),), "pytorch",
                             min_rounds=5, time_cap_s=2).as_dict()
    assert reading["size"] == [32, 32] and reading["batch"] == 1 and reading["backend"] == "pytorch"
    assert speedup(reading) > 0  # no claim on its value: the machine may be loaded
    assert describe(reading).startswith("pytorch on cpu, ")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here: the synchronised GPU path is "
                    "checked where one is available")
def test_on_cuda_every_timed_run_is_synchronised(monkeypatch):
    import engine.latency

    synchronised = []
    real = engine.latency._synchronize
    monkeypatch.setattr(engine.latency, "_synchronize", lambda device: synchronised.append(device) or real(device))
    net = torch.nn.Conv2d(3, 64, 3, padding=1).cuda()
    x = torch.rand(1, 3, 256, 256, device="cuda")
    reading = measure({"net": lambda: net(x)}, device="cuda", warmup=2, min_rounds=10, max_rounds=10)
    assert len(synchronised) == 1 + 2 * 10 and all(d.type == "cuda" for d in synchronised)
    assert reading.device.startswith("cuda") and reading.timings["net"].median_ms > 0


def test_a_speed_ratio_below_one_is_said_as_slower():
    assert faster(2.5) == "2.50x faster" and faster(1.0) == "1.00x faster"
    assert faster(0.5) == "2.00x slower"
