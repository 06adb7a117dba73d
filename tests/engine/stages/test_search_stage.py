"""The search stage's candidate recorder: every candidate out as an event at once, into the store in batches."""

from types import SimpleNamespace

from engine.events import CandidateScored
from engine.stages.search import CandidateRecorder
from engine.store import CandidateRecord, open_store


def test_candidates_go_out_at_once_and_into_the_store_in_batches(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    run_id = store.create_run(name="r", family="pix2pix", dataset="d", config={}, stages=["search"])
    events, writes = [], []
    original = store.add_candidates
    store.add_candidates = lambda *a, **k: (writes.append(len(a[1])), original(*a, **k))
    ctx = SimpleNamespace(run_id=run_id, store=store, events=events.append)
    recorder = CandidateRecorder(ctx, "psnr", batch=4, max_wait_s=3600)
    for i in range(10):
        recorder.add(CandidateRecord(f"a{i}", 100 - i, 1, {"psnr": float(i)}))
        assert len(events) == i + 1 and isinstance(events[-1], CandidateScored)
    assert writes == [4, 4] and store.list_runs()[0].candidates == 8
    recorder.flush()  # as the stage does when it ends or is stopped
    assert writes == [4, 4, 2]
    summary = store.list_runs()[0]
    assert (summary.candidates, summary.best_arch) == (10, "a9")

    timed = CandidateRecorder(ctx, "psnr", batch=1000, max_wait_s=0.0)  # a slow search: written at once
    timed.add(CandidateRecord("b", 1, 1, {"psnr": 1.0}))
    assert writes[-1] == 1
    store.close()
