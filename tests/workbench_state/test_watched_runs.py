"""The runs a window watches, without a window: a started process adopted once it reports its run, a stop said
once the list shows it happened (and only once), what to select and say once the refreshed list is shown, the
summary drawn again only when its row changed; no QApplication."""

from datetime import datetime

from engine.api import RunSummary
from workbench.session.watched_runs import WatchedRuns


class FakeProcess:
    def __init__(self, running: bool = True) -> None:
        self.running = running

    def is_running(self) -> bool:
        return self.running


def _run(run_id: int, status: str) -> RunSummary:
    return RunSummary(id=run_id, name=f"run-{run_id}", family="pix2pix", dataset="s", status=status, stage=None,
                      step=0, total_steps=None, best_macs=None, best_metric=None, created_at=datetime(2026, 1, 1),
                      started_at=None, error=None)


def test_a_started_process_is_adopted_by_its_run_and_selected_once_listed():
    watched: WatchedRuns[FakeProcess] = WatchedRuns()
    process, failed = FakeProcess(), FakeProcess(running=False)
    watched.started(process)
    watched.started(failed)
    assert not watched.identified(process, None)  # an event before the run exists
    assert watched.identified(process, 5) and not watched.identified(process, 5)  # adopted once
    assert watched.processes == {5: process} and watched.is_running(5) and not watched.is_running(6)
    assert watched.to_select(lambda run_id: False) is None  # the list does not hold it yet: still waiting
    assert watched.to_select(lambda run_id: run_id == 5) == 5 and watched.to_select(lambda run_id: True) is None
    watched.ended(failed)  # a bad configuration: it never had a run
    assert watched.all_processes() == [process]
    watched.forget(5)
    assert watched.all_processes() == []


def test_a_stop_is_said_once_the_list_shows_it_and_a_resume_clears_it():
    watched: WatchedRuns[FakeProcess] = WatchedRuns()
    watched.cancel_asked(3)
    watched.cancel_asked(4)
    assert watched.stopped([_run(3, "running"), _run(4, "cancelled")]) == [
        "run 4 is cancelled: Resume continues it from its checkpoint"]
    assert watched.stopped([_run(4, "cancelled")]) == []  # said once
    watched.resumed(3, FakeProcess())
    assert watched.stopped([_run(3, "failed")]) == []  # resumed: the earlier stop is not said of the new process
    watched.say_once_listed("deleted run 7")
    assert watched.words_when_listed() == "deleted run 7" and watched.words_when_listed() == ""


def test_the_summary_is_drawn_again_only_when_the_selected_runs_row_changed():
    watched: WatchedRuns[FakeProcess] = WatchedRuns()
    running, finished = _run(1, "running"), _run(1, "finished")
    assert watched.summary_changed(running) and not watched.summary_changed(_run(1, "running"))
    assert watched.summary_changed(running, reload=True) and watched.summary_changed(finished)
    watched.notified("Run 1 finished", "10x fewer MACs")
    assert watched.notifications == [("Run 1 finished", "10x fewer MACs")]
