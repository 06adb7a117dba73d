"""The new-run dialog's state without its widgets: a form in, the pre-flight asked for and its answers applied
(an answer for a form since changed dropped), the teacher profiled once, and every message computed from the
state, never left over; no QApplication."""

from engine.api import Preflight, Problem
from workbench.session.new_run_form import NewRunForm
from workbench.session.new_run_state import FIX_MARKED, CheckAnswer, NewRunState


def _preflight(problems=(), complete=True) -> CheckAnswer:
    """An answer of the check (the form's files and the engine's pre-flight), as it would come back from the
    worker."""
    return CheckAnswer(preflight=_engine_preflight(problems, complete))


def _engine_preflight(problems=(), complete=True) -> Preflight:
    return Preflight(device="cpu", teacher_macs=1_000_000_000 if complete else 0, budget_macs=1e8,
                     latency_budget_ms=None, latency_on="cpu, pytorch", smallest="4_4", smallest_macs=50_000_000,
                     largest="16_16", largest_macs=900_000_000, complete=complete, problems=tuple(problems))


def test_start_waits_for_the_preflight_of_the_form_as_it_is_now_and_an_older_answer_is_dropped():
    state = NewRunState(taken_names={"pix2pix-sample"})
    form = NewRunForm.from_preset("pix2pix-sample", state.taken_names)
    state.validate(form)
    assert state.checking and state.config is None and state.problems == []
    first = state.next_check()
    assert first is not None and first.config.name == "pix2pix-sample-2" and state.next_check() is None
    state.check_started(7)
    state.validate(form.with_(ratio=7.0))  # changed while the first check is in flight
    assert state.next_check() is None  # never two in flight
    assert state.is_check(7) and state.checked(_preflight()) is None
    assert state.config is None and state.preflight is None and state.checking  # the old answer: dropped
    second = state.next_check()
    assert second is not None and second.config.search.target_ratio == 7
    state.check_started(8)
    state.checked(_preflight())
    assert not state.checking and state.config == second.config and state.preflight is not None
    assert state.budget_words.startswith("teacher 1G MACs") and "100M (10.0x fewer)" in state.budget_words


def test_the_forms_and_the_preflights_problems_are_said_beside_their_fields_and_nothing_is_left_over():
    state = NewRunState(taken_names={"pix2pix-sample"})
    form = NewRunForm.from_preset("pix2pix-sample").with_(name="pix2pix-sample")
    state.validate(form)
    placed, general = state.messages({"name", "search.target_ratio"})
    assert [field for field, _ in placed] == ["name"] and general == [FIX_MARKED]
    state.next_check()
    state.check_started(1)
    state.checked(_preflight([Problem("search.target_ratio", "too much"), Problem("", "no GPU here")]))
    assert state.config is None  # a problem holds Start back
    placed, general = state.messages({"name", "search.target_ratio"})
    assert placed == [("name", placed[0][1]), ("search.target_ratio", "too much")]
    assert general == ["no GPU here", FIX_MARKED]
    state.validate(form.with_(name="mine"))  # mended: what was said of the old name goes
    assert state.messages({"name"}) == ([], [])
    # A refused keystroke is shown under its field, but does not point at the marked fields (it holds nothing).
    assert state.messages({"batch_size"}, [("batch_size", "not a number")]) == ([("batch_size", "not a number")], [])


def test_a_teacher_is_profiled_once_and_a_profile_that_failed_is_said():
    state = NewRunState()
    form = NewRunForm.from_preset("cyclegan-sample")
    state.validate(form)
    state.next_check()
    state.check_started(1)
    to_profile = state.checked(_preflight(complete=False))
    assert to_profile is not None and state.budget_words == "teacher: measuring its MACs…"
    state.profile_started(2, to_profile)
    assert state.profiling_teacher
    state.validate(form.with_(ratio=6.0))  # the same teacher: not profiled twice
    state.next_check()
    state.check_started(3)
    assert state.checked(_preflight(complete=False)) is None
    state.profile_failed(2, "out of memory")
    assert not state.profiling_teacher
    state.validate(form)
    state.next_check()
    state.check_started(4)
    assert state.checked(_preflight(complete=False)) is None
    assert state.budget_words == "teacher MACs unknown: out of memory"


def test_a_preflight_that_failed_is_said_at_the_bottom_and_checking_is_said_only_while_it_is_true():
    state = NewRunState()
    state.validate(NewRunForm.from_preset("cyclegan-sample"))
    number = state.checks.latest
    assert state.still_checking(number) and state.budget_words == "checking the budget…"
    state.next_check()
    state.check_started(1)
    assert state.check_failed("boom")
    assert state.budget_words == "" and state.config is None
    assert state.messages(set()) == ([], ["the pre-flight check failed: boom"])
    assert not state.still_checking(number)  # answered: nothing is being checked


def test_the_dataset_folder_and_the_teacher_file_are_read_by_the_check_off_the_gui_thread(tmp_path, monkeypatch):
    import workbench.session.new_run_form as new_run_form
    from workbench.session.new_run_state import run_check

    def no_disk(path):
        raise AssertionError("the folder was read while the form was validated")

    state = NewRunState()
    form = NewRunForm.from_preset("cyclegan-sample").with_(sample=None, folder=str(tmp_path / "missing"),
                                                           teacher_checkpoint=str(tmp_path / "G.pth"))
    monkeypatch.setattr(new_run_form, "detect_layout", no_disk)
    state.validate(form)  # what the GUI thread does at every change: no listing, no stat
    assert state.problems == [] and state.layout_words == "" and state.checking and state.config is None
    request = state.next_check()
    monkeypatch.undo()
    state.check_started(1)
    state.checked(run_check(request, None))  # what the worker does, applied when it comes back
    assert [(p.field, p.message) for p in state.problems] == [
        ("dataset.path", f"dataset folder not found: {tmp_path / 'missing'}"),
        ("teacher.checkpoint", f"teacher checkpoint not found: {tmp_path / 'G.pth'}")]
    assert state.config is None and not state.checking
    (tmp_path / "d" / "trainA").mkdir(parents=True)
    (tmp_path / "d" / "trainB").mkdir()
    from PIL import Image
    for side in ("A", "B"):
        Image.new("RGB", (8, 8)).save(tmp_path / "d" / f"train{side}" / "x.png")
    state.validate(form.with_(folder=str(tmp_path / "d"), teacher_checkpoint=None))
    request = state.next_check()
    state.check_started(2)
    answer = run_check(request, None)
    assert answer.layout == "unaligned" and answer.file_problems == () and answer.preflight is not None
    state.checked(answer)
    assert state.layout_words == "layout: unaligned"
