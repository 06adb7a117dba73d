"""What the compare view shows and what it has asked for, Qt-free: the run and student chosen, the preview and
latency reading on screen and whom they are of, the run's Pareto front the budget slider steps along, and the
jobs in flight (an answer to a choice since replaced is dropped). The view draws from it and asks its worker;
it decides which answers count and what the readout says."""

from __future__ import annotations

from dataclasses import dataclass
from engine.api import LatencyReading, Preview, describe_latency

#: (MACs, arch, metrics) of a front candidate, fewest MACs first.
FrontRow = tuple[int, str, dict[str, float]]


@dataclass(frozen=True)
class Asked:
    """One job of the view's: a preview (of an image with a style seed) or a latency reading, of a run's student
    (``arch`` None: the final student)."""

    kind: str  # "preview" or "latency"
    run_id: int | None
    arch: str | None
    path: str | None = None
    seed: int | None = None


class CompareState:
    def __init__(self) -> None:
        self.run_id: int | None = None
        self.arch: str | None = None  # the student chosen (None: the final student)
        self.result: Preview | None = None  # the preview on screen
        self.shown_path: str | None = None  # the image file of the preview on screen
        self.latency: LatencyReading | None = None
        self.latency_arch: str | None = None  # the student the reading is of (None: the final student)
        self.no_final_student = False  # the run has none yet: its best candidate is shown instead
        self.latest_preview = 0  # the job of the preview asked for last
        self.candidates: list[FrontRow] = []
        self.jobs: dict[int, Asked] = {}

    # --- choices ----------------------------------------------------------------------------------
    def set_run(self, run_id: int | None) -> bool:
        """Another run: nothing of the one shown before stays, and no answer asked for it counts. False: the same."""
        if run_id == self.run_id:
            return False
        self.run_id, self.arch, self.result, self.latency, self.shown_path = run_id, None, None, None, None
        self.no_final_student = False
        self.latest_preview = 0  # a preview of the run shown before is not this run's, nor its failure
        self.candidates = []
        return True

    def front_read(self, run_id: int, front: list[FrontRow]) -> bool:
        """The run's front arrived: kept when it is still the run shown."""
        if run_id != self.run_id:
            return False
        self.candidates = front
        return True

    def show_best_candidate(self) -> str:
        """The search's best so far, chosen (a run at work has no final student yet)."""
        self.arch = self.candidates[-1][1]
        return self.arch

    @property
    def waits_for_best_candidate(self) -> bool:
        return self.no_final_student and self.arch is None and bool(self.candidates)

    def budget_position(self) -> int | None:
        """Where the chosen student sits on the front (None: off it, or the final student)."""
        return next((i for i, (_, arch, _) in enumerate(self.candidates) if arch == self.arch), None)

    def budget_words(self) -> str:
        position = self.budget_position()
        if position is not None:
            return f"budget: {self.candidates[position][0] / 1e6:.2f}M MACs"
        if self.arch is None:
            return "final student" if self.candidates or self.result else "budget: -"
        return "off the front"  # a Pareto click on a dominated point

    # --- jobs -------------------------------------------------------------------------------------
    def asked_preview(self, job_id: int, path: str, seed: int) -> None:
        self.latest_preview = job_id
        self.jobs[job_id] = Asked("preview", self.run_id, self.arch, path, seed)

    def asked_latency(self, job_id: int) -> None:
        self.jobs[job_id] = Asked("latency", self.run_id, self.arch)

    @property
    def busy(self) -> bool:
        return bool(self.jobs)

    def preview_arrived(self, job_id: int, result: Preview, path: str | None, seed: int) -> bool | None:
        """A preview came back: None when it answers a choice since replaced (another run, image, style seed or
        student than ``path``, ``seed`` and the chosen one); else it is shown, True when it is of a new image."""
        asked = self.jobs.pop(job_id)
        if (asked.run_id, asked.path, asked.seed, asked.arch) != (self.run_id, path, seed, self.arch):
            return None
        new_image = self.result is None or self.shown_path != asked.path
        self.result, self.shown_path = result, asked.path
        return new_image

    def latency_arrived(self, job_id: int, reading: LatencyReading) -> None:
        asked = self.jobs.pop(job_id)
        self.latency, self.latency_arch = reading, asked.arch

    def failed(self, job_id: int, message: str) -> str:
        """A job failed: ``"ignore"`` (a preview of a choice since replaced), ``"best candidate"`` (no final
        student yet: show the search's best instead; until the front is read, the message is said and the best
        shown once it is) or ``"say"``."""
        asked = self.jobs.pop(job_id, None)
        preview = asked is not None and asked.kind == "preview"
        if preview and job_id != self.latest_preview:
            return "ignore"
        if preview and self.arch is None and self.result is None and "finetune" in message:
            self.no_final_student = True
            return "best candidate" if self.candidates else "say"
        return "say"

    def readout_lines(self) -> list[str]:
        """What the readout says of the preview on screen ([] before one)."""
        if not self.result:
            return []
        result = self.result
        t, s = result.teacher_profile, result.student_profile
        lines = [f"student {result.arch}, {result.weights}: {s.macs / 1e6:.2f}M "
                 f"MACs ({t.macs / s.macs:.1f}x fewer than the teacher's {t.macs / 1e6:.2f}M), "
                 f"{s.params / 1e6:.4f}M params (teacher {t.params / 1e6:.3f}M)"]
        if result.scores:
            scores = ", ".join(f"{name} {value:.4g}" for name, value in result.scores.items())
            lines.append(f"this candidate's scores in the search (search split): {scores}")
        if result.measured_latency:
            lines.append(result.measured_latency)
        if self.latency:
            if self.latency_arch == self.arch:
                lines.append(f"latency, {describe_latency(self.latency)}")
            else:  # kept for comparison, said to be another student's (it used to vanish)
                lines.append(f"latency of the student shown before ({self.latency_arch or 'final student'}), "
                             f"{describe_latency(self.latency)}; Measure latency for this one")
        if self.no_final_student and result.arch == self.arch:
            lines.insert(0, "no final student yet (the run has not fine-tuned one): the search's best candidate so far")
        return lines

