"""The compare view's Qt-free state: which answers count, what the budget slider and the readout say."""

from types import SimpleNamespace

from workbench.session.compare_state import CompareState

FRONT = [(1_000_000, "4_4", {"psnr": 18.0}), (2_500_000, "8_4", {"psnr": 20.0})]


def _preview(arch: str) -> SimpleNamespace:
    profile = SimpleNamespace(macs=2_000_000, params=50_000)
    return SimpleNamespace(arch=arch, weights="supernet weights", teacher_profile=SimpleNamespace(macs=8_000_000,
                           params=400_000), student_profile=profile, scores={"psnr": 20.0}, measured_latency="")


def test_an_answer_to_a_choice_since_replaced_is_dropped_and_a_new_image_is_said():
    state = CompareState()
    state.set_run(3)
    state.asked_preview(1, "a.png", 0)
    state.asked_preview(2, "a.png", 0)
    state.arch = "8_4"  # another student chosen before either came back
    assert state.preview_arrived(1, _preview("x"), "a.png", 0) is None and state.result is None
    state.asked_preview(3, "a.png", 0)
    assert state.preview_arrived(3, _preview("8_4"), "a.png", 0) is True  # the first image shown: fit it
    state.asked_preview(4, "a.png", 1)
    assert state.preview_arrived(4, _preview("8_4"), "a.png", 1) is False  # the same image, another seed
    assert state.preview_arrived(2, _preview("x"), "a.png", 1) is None  # asked for the final student
    assert not state.busy
    assert state.set_run(5) and state.result is None and state.arch is None and not state.set_run(5)


def test_a_run_without_a_final_student_shows_its_best_candidate_once_its_front_is_read():
    state = CompareState()
    state.set_run(3)
    state.asked_preview(1, "a.png", 0)
    assert state.failed(1, "no finetune checkpoint yet") == "say"  # its front not read yet
    assert state.waits_for_best_candidate is False and state.no_final_student
    assert not state.front_read(4, FRONT) and state.candidates == []  # another run's front
    assert state.front_read(3, FRONT) and state.waits_for_best_candidate
    assert state.show_best_candidate() == "8_4" and state.budget_words() == "budget: 2.50M MACs"
    state.asked_preview(2, "a.png", 0)
    state.asked_preview(3, "a.png", 0)
    assert state.failed(2, "anything") == "ignore"  # replaced by job 3
    assert state.failed(3, "the model file is corrupt") == "say"


def test_the_budget_words_follow_the_chosen_student():
    state = CompareState()
    assert state.budget_words() == "budget: -"
    state.set_run(1)
    state.front_read(1, FRONT)
    assert state.budget_words() == "final student" and state.budget_position() is None
    state.arch = "4_4"
    assert state.budget_position() == 0 and state.budget_words() == "budget: 1.00M MACs"
    state.arch = "6_6"
    assert state.budget_words() == "off the front"


def test_the_readout_says_whose_latency_reading_it_shows():
    from engine.latency import measure

    clock = [0.0]
    tick = lambda ms: lambda: clock.__setitem__(0, clock[0] + ms / 1000)  # noqa: E731 - a fake clock's step
    reading = measure({"teacher": tick(4.0), "student": tick(1.0)}, clock=lambda: clock[0], min_rounds=10,
                      max_rounds=20, time_cap_s=1e9, warmup=0)
    state = CompareState()
    assert state.readout_lines() == []
    state.set_run(1)
    state.arch = "4_4"
    state.asked_latency(7)
    state.arch = "8_4"  # another student chosen while the reading was taken
    state.latency_arrived(7, reading)
    state.asked_preview(8, "a.png", 0)
    state.preview_arrived(8, _preview("8_4"), "a.png", 0)
    lines = state.readout_lines()
    assert lines[0].startswith("student 8_4, supernet weights: 2.00M MACs (4.0x fewer")
    assert "psnr 20" in lines[1]
    assert lines[-1].startswith("latency of the student shown before (4_4)")
    state.arch = "4_4"
    state.asked_preview(9, "a.png", 0)
    state.preview_arrived(9, _preview("4_4"), "a.png", 0)
    assert state.readout_lines()[-1].startswith("latency, ")
