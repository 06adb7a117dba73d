"""What the new-run dialog knows besides its fields, Qt-free: the names already taken, the form's problems, the
engine's pre-flight of the form as it is now (one in flight, the latest waiting, an older answer dropped), the
teachers being profiled for their MACs and why one could not be, the budget and layout in words, and the
configuration Start would run. The dialog draws its fields into a ``NewRunForm``, hands it to ``validate``, runs
the checks this asks for on its worker and reports their answers back; every message it shows comes from here."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from engine.api import Preflight, Problem, RunConfig, preflight
from engine.settings import Settings
from workbench.session.latest_only import LatestOnly
from workbench.session.new_run_form import NewRunForm
from workbench.session.numbers import format_count

#: Said at the bottom while a problem beside a field holds Start back.
FIX_MARKED = "Fix the fields marked in red above."


@dataclass(frozen=True)
class CheckRequest:
    """One check to run off the GUI thread: the form (its dataset folder and teacher checkpoint are read from the
    disk), its configuration's pre-flight (None: the configuration itself was refused), how many processes on how
    many machines, and the problems found without the disk (shown with the check's own when it comes back)."""

    form: NewRunForm
    config: RunConfig | None
    processes: int
    machines: int
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class CheckAnswer:
    """What a check found: the problems of the form's files, the dataset folder's layout as detected (None:
    unknown), and the engine's pre-flight (None where there was no configuration to check)."""

    file_problems: tuple[Problem, ...] = ()
    layout: str | None = None
    preflight: Preflight | None = None


def run_check(request: CheckRequest, settings: Settings | None,
              run_preflight: Callable[..., Preflight] = preflight) -> CheckAnswer:
    """The check ``request`` asks for: run it on a worker, never on the GUI thread (a directory listing, a stat and
    the engine's pre-flight, ``run_preflight``, which the first call of a family takes about a second for)."""
    checked = None if request.config is None else run_preflight(request.config, settings, request.processes,
                                                                 request.machines, profile_teacher=False)
    return CheckAnswer(tuple(request.form.file_problems()), request.form.dataset_layout(), checked)


def teacher_key(config: RunConfig) -> str:
    """What the teacher's MACs depend on: one profile per family, model options and image size."""
    return config.model_dump_json(include={"family", "model", "image_size"})


def budget_words(config: RunConfig, checked: Preflight) -> str:
    """The pre-flight's budget in words (the teacher's MACs known)."""
    text = f"teacher {format_count(checked.teacher_macs)} MACs at {config.image_size} px → search budget "
    limits = []
    if checked.budget_macs is not None:
        limits.append(f"{format_count(checked.budget_macs)} ({checked.teacher_macs / checked.budget_macs:.1f}x fewer)")
    if checked.latency_budget_ms is not None:
        limits.append(f"{checked.latency_budget_ms:g} ms per image, predicted on {checked.latency_on}")
    text += " and ".join(limits) + f"; the smallest sub-network has {format_count(checked.smallest_macs)} " \
                                   f"(at most {checked.largest_ratio:.1f}x)"
    if checked.latency_budget_ms is None:
        return text
    if checked.smallest_ms is None:
        return text + ("; the latency table for these conditions is measured before the supernet trains (minutes "
                       "at 256 px; then cached), and a budget no sub-network meets is refused then")
    return text + (f"; predicted here: the smallest sub-network {checked.smallest_ms:.3g} ms, the largest "
                   f"{checked.largest_ms:.3g} ms")


class NewRunState:
    def __init__(self, taken_names: Iterable[str] = ()) -> None:
        self.taken_names = set(taken_names)
        self.config: RunConfig | None = None  # the form as it is now, once its pre-flight came back clean
        self.preflight: Preflight | None = None  # the engine's pre-flight of the form as it is now
        self.problems: list[Problem] = []
        self.layout_words = ""  # the dataset's layout, as detected
        self.budget_words = ""  # the search budget as the last answered pre-flight resolved it
        self.checks: LatestOnly[CheckRequest] = LatestOnly()
        self.check_job: int | None = None  # the worker's job of the pre-flight in flight
        self.profiling: dict[int, str] = {}  # teacher profiles in flight, by job: the teacher's key
        self.profile_errors: dict[str, str] = {}  # by teacher's key: why it could not be profiled

    # --- the form ---------------------------------------------------------------------------------
    def validate(self, form: NewRunForm) -> None:
        """A new state of the form: its own rules and the configuration's now, the pre-flight asked for (run what
        ``next_check`` hands out). Until that answers, Start is held back (``config`` None)."""
        problems = form.name_problems(self.taken_names)
        # A sample's layout is known without the disk; a folder's comes back with the check.
        layout = form.dataset_layout() if form.sample is not None else None
        self.layout_words = f"layout: {layout}" if layout else ""
        self.config = self.preflight = None
        config, config_problems = form.config()
        problems += config_problems
        self.checks.request(CheckRequest(form, config, form.processes, form.machines, tuple(problems)))
        self.problems = problems

    @property
    def checking(self) -> bool:
        """Whether the pre-flight of the form as it is now has not come back yet."""
        return self.checks.pending

    # --- the pre-flight, off the GUI thread ---------------------------------------------------------
    def next_check(self) -> CheckRequest | None:
        """The waiting form's pre-flight to start now, once the one in flight has come back (never a queue of
        stale checks); None: nothing to start. Report its job with ``check_started``."""
        started = self.checks.start()
        return None if started is None else started[1]

    def check_started(self, job: int) -> None:
        self.check_job = job

    def is_check(self, job: int) -> bool:
        return job == self.check_job

    def still_checking(self, number: int) -> bool:
        """Whether the check numbered ``number`` (``checks.latest`` when it was asked) is the newest and still
        unanswered: then the budget says it is being checked."""
        if number == self.checks.latest and self.checks.pending:
            self.budget_words = "checking the budget…"
            return True
        return False

    def _answered(self) -> CheckRequest | None:
        """The request the pre-flight in flight answered, when it is the form as it is now (else None: dropped)."""
        self.check_job = None
        request, current = self.checks.answered()
        return request if current else None

    def checked(self, answer: CheckAnswer) -> RunConfig | None:
        """The check came back (``run_check``). Returns a configuration whose teacher must be profiled for its MACs
        (run ``teacher_macs`` on it and report with ``profile_started``), or None."""
        request = self._answered()
        if request is None:
            return None
        checked = self.preflight = answer.preflight
        self.layout_words = f"layout: {answer.layout}" if answer.layout else ""
        problems = [*request.problems, *answer.file_problems, *(checked.problems if checked is not None else ())]
        self.config = None if problems or checked is None else request.config
        self.problems = problems
        if checked is None or request.config is None:
            return None
        key = teacher_key(request.config)
        if checked.complete:
            self.budget_words = budget_words(request.config, checked)
        elif key in self.profile_errors:
            self.budget_words = f"teacher MACs unknown: {self.profile_errors[key]}"
        else:
            self.budget_words = "teacher: measuring its MACs…"
            if key not in self.profiling.values():
                return request.config
        return None

    def check_failed(self, message: str) -> bool:
        """The pre-flight raised: said at the bottom, Start held back. False: it answered an older form."""
        request = self._answered()
        if request is None:
            return False
        self.budget_words = ""
        self.problems = [*request.problems, Problem("", f"the pre-flight check failed: {message}")]
        return True

    # --- the teacher's MACs, profiled once per teacher ----------------------------------------------------
    def profile_started(self, job: int, config: RunConfig) -> None:
        self.profiling[job] = teacher_key(config)

    def profile_done(self, job: int) -> None:
        """Its MACs are known to the engine now: validate the form again."""
        self.profiling.pop(job)

    def profile_failed(self, job: int, message: str) -> None:
        self.profile_errors[self.profiling.pop(job)] = message

    @property
    def profiling_teacher(self) -> bool:
        return bool(self.profiling)

    # --- what is said --------------------------------------------------------------------------------
    def messages(self, fields: set[str], refusals: Iterable[tuple[str, str]] = ()) -> tuple[
            list[tuple[str, str]], list[str]]:
        """Each problem and each refused input (``(field, words)`` of a number box) as (field, message) for the
        ``fields`` the dialog has a line under, in order; the rest, and a pointer to the marked fields while a
        problem (not only a refused keystroke) is beside one, for the bottom."""
        placed: list[tuple[str, str]] = []
        general: list[str] = []
        marked = False
        for field, message, problem in ([(p.field, p.message, True) for p in self.problems]
                                        + [(f, m, False) for f, m in refusals]):
            if field in fields:
                placed.append((field, message))
                marked = marked or problem
            else:
                general.append(message)
        if marked:
            general.append(FIX_MARKED)
        return placed, general

    def problems_text(self) -> str:
        """Every problem, beside a field or not, one per line."""
        return "\n".join(problem.message for problem in self.problems)
