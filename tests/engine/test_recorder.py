"""The store's consumer of the event stream: what a run records, recorded from the events it sends."""

from engine.events import (ArtifactWritten, CandidateScored, Message, RunFinished, StageCancelled, StageFailed,
                           StageFinished, StageStarted, StepProgress)
from engine.recorder import StoreRecorder
from engine.store import Status

STAGES = ["teacher", "supernet", "search", "finetune", "export"]


def _run(store):
    return store.create_run(name="r", family="pix2pix", dataset="d", config={}, stages=STAGES)


def _candidate(run_id, i):
    return CandidateScored(run_id=run_id, arch=f"a{i}", macs=100 - i, params=1, metrics={"psnr": float(i)},
                           metric="psnr")


def test_steps_and_losses_are_recorded_every_log_every_steps_and_at_the_end(store):
    run_id = _run(store)
    record = StoreRecorder(store, run_id, STAGES, log_every=5)
    record(StageStarted(run_id=run_id, stage="teacher"))
    record(StepProgress(run_id=run_id, stage="teacher", step=0, total_steps=12))  # ctx.begin
    for step in range(1, 13):
        record(StepProgress(run_id=run_id, stage="teacher", step=step, total_steps=12, losses={"G": float(step)}))
    stage = store.get_run(run_id).stages[0]
    assert (stage.status, stage.step, stage.total_steps) == (Status.running, 12, 12)
    assert store.metric_series(run_id, "teacher", "G") == [(5, 5.0), (10, 10.0), (12, 12.0)]
    record(StageFinished(run_id=run_id, stage="teacher", seconds=1.0))
    assert store.get_run(run_id).stages[0].status is Status.finished
    assert [text for *_, text in store.log_lines(run_id)] == ["[teacher] started", "[teacher] finished in 1.0 s"]


def test_candidates_are_written_in_batches_and_whenever_a_stage_ends_or_stops(store):
    run_id = _run(store)
    writes = []
    original = store.add_candidates
    store.add_candidates = lambda *a, **k: (writes.append(len(a[1])), original(*a, **k))
    record = StoreRecorder(store, run_id, STAGES, log_every=1, batch=4, max_wait_s=3600)
    for i in range(10):
        record(_candidate(run_id, i))
    assert writes == [4, 4] and store.list_runs()[0].candidates == 8
    record(StageFinished(run_id=run_id, stage="search", seconds=1.0))
    assert writes == [4, 4, 2]
    summary = store.list_runs()[0]
    assert (summary.candidates, summary.best_arch) == (10, "a9")
    record(_candidate(run_id, 10))
    record(StageCancelled(run_id=run_id, stage="finetune", reason="stopped; resume with ..."))
    assert store.list_runs()[0].candidates == 11  # a stopped search keeps every score
    run = store.get_run(run_id)
    assert run.status is Status.cancelled and run.stages[3].status is Status.cancelled
    assert store.log_lines(run_id)[-1][2:] == ("warning", "stopped; resume with ...")
    timed = StoreRecorder(store, run_id, STAGES, log_every=1, batch=1000, max_wait_s=0.0)  # a slow search
    timed(_candidate(run_id, 11))
    assert writes[-1] == 1


def test_artifacts_outcome_and_failures_are_recorded(store, tmp_path):
    run_id = _run(store)
    record = StoreRecorder(store, run_id, STAGES, log_every=1)
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"weights")
    record(ArtifactWritten(run_id=run_id, stage="teacher", path=str(weights), artifact_kind="teacher_weights"))
    artifact = store.stage_artifacts(run_id, "teacher")[0]
    assert (artifact.kind, artifact.size_bytes) == ("teacher_weights", 7)
    summary = {"metric": "psnr", "metrics_split": "test", "macs_ratio": 10.0,
               "student": {"arch": "8_8", "metrics": {"psnr": 20.0}}, "teacher": {"metrics": {"psnr": 22.0}}}
    record(RunFinished(run_id=run_id, summary=summary))
    run = store.get_run(run_id)
    assert run.status is Status.finished and run.result["student"] == {"psnr": 20.0}
    # A failure is recorded, and a store that cannot take it does not hide the failure from the caller.
    record(StageFailed(run_id=run_id, stage="export", error="disk full"))
    assert store.get_run(run_id).status is Status.failed and store.get_run(run_id).stages[4].error == "disk full"
    store.mark_run = store.update_stage = lambda *a, **k: (_ for _ in ()).throw(OSError("no space"))
    record(StageFailed(run_id=run_id, stage="export", error="again"))  # logged, not raised
    record(Message(run_id=run_id, text="still logged"))
    assert store.log_lines(run_id)[-1][3] == "still logged"


def test_work_outside_the_runs_stages_is_not_its_record_but_a_failure_there_is(store):
    run_id = _run(store)
    record = StoreRecorder(store, run_id, STAGES, log_every=1)
    record(StepProgress(run_id=run_id, stage="sample:edges2photos", step=3, total_steps=10))
    assert all(stage.step == 0 for stage in store.get_run(run_id).stages)
    record(StageFailed(run_id=run_id, stage="data", error="dataset folder not found"))
    run = store.get_run(run_id)
    assert run.status is Status.failed and run.error == "dataset folder not found"


def test_a_live_runs_heartbeat_is_written_on_a_timer_and_it_is_found_stale_only_after_the_timer_stops(store):
    """Deterministic, not timed: the heartbeat must change with no event at all (a long phase without
    progress), and staleness is judged at a given instant."""
    import time
    from datetime import timedelta, timezone

    from engine.pipeline import STALE_AFTER, fail_dead_runs
    from engine.recorder import Heartbeat
    from engine.store import Status
    from engine.store.models import Run
    from tests.patience import REAL_WORK_S

    run_id = store.create_run(name="remote", family="pix2pix", dataset="d", config={}, stages=["teacher"])
    store.claim_run(run_id)
    with store.session() as session:  # as seen from another machine: only the heartbeat tells it is alive
        session.get(Run, run_id).host = "another-host"

    def beat():
        stamp = store.get_run(run_id).heartbeat_at
        return stamp.replace(tzinfo=timezone.utc) if stamp.tzinfo is None else stamp

    first = beat()
    with Heartbeat(store, run_id, interval_s=0.01):
        deadline = time.monotonic() + REAL_WORK_S  # a hang guard
        while beat() == first:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert fail_dead_runs(store) == []  # written by the timer alone: alive
    last = beat()
    time.sleep(0.1)
    assert beat() == last  # the timer stopped with the run
    assert fail_dead_runs(store, now=last + STALE_AFTER - timedelta(seconds=1)) == []
    assert store.get_run(run_id).status is Status.running
    assert fail_dead_runs(store, now=last + STALE_AFTER + timedelta(seconds=1)) == [run_id]
    assert store.get_run(run_id).status is Status.failed


def test_a_run_survives_the_death_of_its_renderer(settings, store):
    """The pipe to a window that closed or crashed: the renderer raises from then on; the run finishes, recorded."""
    from engine.pipeline import create_run, execute
    from engine.store import Status
    from tests.engine.stages.tiny import tiny_config

    run_id = create_run(tiny_config("pix2pix", supernet={"steps": 2}, finetune={"steps": 0}), store, settings)
    seen = []

    def renderer(event):
        seen.append(event)
        if len(seen) > 5:
            raise BrokenPipeError(32, "Broken pipe")

    summary = execute(run_id, settings, store, renderer)
    assert len(seen) == 6  # served until it failed, then no longer
    assert summary["run_id"] == run_id and store.get_run(run_id).status is Status.finished
    assert any(text == "run finished" for *_, text in store.log_lines(run_id))


def test_a_stage_stopped_or_failed_between_logging_steps_records_the_step_it_reached(store):
    # The runs list reads the store, the monitor the live events: both say the same step after a stop.
    for ending, status in ((StageCancelled, Status.cancelled), (StageFailed, Status.failed)):
        run_id = _run(store)
        record = StoreRecorder(store, run_id, STAGES, log_every=10)
        record(StageStarted(run_id=run_id, stage="supernet"))
        for step in range(0, 8):
            record(StepProgress(run_id=run_id, stage="supernet", step=step, total_steps=100))
        assert store.get_run(run_id).stages[1].step == 0  # only every 10th step while it runs
        words = {"reason": "stopped"} if ending is StageCancelled else {"error": "broke"}
        record(ending(run_id=run_id, stage="supernet", **words))
        stage = store.get_run(run_id).stages[1]
        assert (stage.status, stage.step, stage.total_steps) == (status, 7, 100)
