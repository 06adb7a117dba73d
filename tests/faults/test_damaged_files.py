"""Files of a run that are gone or damaged: a finished stage's outputs are checked on resume and the stage
redone (the stages after it only if its output changed); a damaged training checkpoint falls back to the
previous one, or the stage starts again, saying so."""

import json

import pytest
import torch

from engine.events import CandidateScored, Message, StageStarted, StepProgress
from engine.pipeline import create_run, execute
from engine.stages.context import Cancelled
from engine.store import Status
from tests.engine.stages.tiny import tiny_config

pytestmark = pytest.mark.slow

#: Eight sub-networks, not the tiny run's 51 within its budget: these tests are about which stages are redone,
#: and each scores the search once or twice.
FEW = [[8, 4]] * 3 + [[4]] * 5


def _resume(run_id, settings, store, **kwargs):
    events = []
    try:
        execute(run_id, settings, store, events.append, **kwargs)
    except Cancelled:
        assert kwargs.get("stop_after")  # stopped after the stage under test, as asked
    started = [e.stage for e in events if isinstance(e, StageStarted)]
    warnings = [e.text for e in events if isinstance(e, Message) and e.level == "warning"]
    return events, started, warnings


def test_finished_stages_with_missing_or_damaged_files_are_redone(settings, store):
    run_id = create_run(tiny_config("pix2pix", search={"method": "exhaustive"}, supernet={"search_space": FEW}), store, settings)
    execute(run_id, settings, store, lambda e: None)
    folder = settings.runs_dir / f"{run_id:05d}"
    scored = len(store.candidates(run_id))

    teacher = folder / "teacher" / "teacher.pt"
    teacher.unlink()
    _, started, warnings = _resume(run_id, settings, store)
    assert started == ["teacher"]  # retrained to the same bytes: the stages after it still hold
    assert any(str(teacher) in w and "missing" in w for w in warnings)
    assert teacher.is_file() and store.get_run(run_id).status is Status.finished

    supernet = folder / "supernet" / "supernet.pt"
    supernet.write_bytes(supernet.read_bytes()[: supernet.stat().st_size // 2])  # a copy cut short
    _, started, warnings = _resume(run_id, settings, store)
    assert started == ["supernet"]
    assert any(str(supernet) in w and "damaged" in w for w in warnings)

    result = folder / "search" / "result.json"
    result.write_text(result.read_text()[:40])
    events, started, warnings = _resume(run_id, settings, store)
    assert started == ["search"]
    assert any(str(result) in w and "not valid JSON" in w for w in warnings)
    assert not [e for e in events if isinstance(e, CandidateScored)]  # every score reused from the store
    assert json.loads(result.read_text())["reused"] == scored

    events, started, warnings = _resume(run_id, settings, store, redo="finetune")
    assert started == ["finetune", "export"]
    assert store.get_run(run_id).status is Status.finished
    assert len(store.stage_artifacts(run_id, "export")) == len({a.path for a in store.stage_artifacts(run_id, "export")})


def test_a_redone_stage_whose_output_changed_redoes_the_stages_after_it(settings, store):
    run_id = create_run(tiny_config("pix2pix", search={"method": "exhaustive"}, supernet={"search_space": FEW}), store, settings)
    execute(run_id, settings, store, lambda e: None)
    folder = settings.runs_dir / f"{run_id:05d}"
    supernet = folder / "supernet" / "supernet.pt"
    supernet.unlink()
    torch.manual_seed(123)
    config = store.get_run(run_id).config
    # The same run with other supernet steps stands for "a redo that does not give the same bytes".
    config["supernet"]["steps"] += 1
    with store.session() as session:
        from engine.store import Run
        session.get(Run, run_id).config = config
    # The redo is itself interrupted: the next resume still knows what the stage held before.
    sink, cancel = _cancel_after_supernet_steps(2)
    with pytest.raises(Cancelled):
        execute(run_id, settings, store, sink, cancel)
    assert (folder / "supernet" / "before-redo.json").is_file()
    events, started, warnings = _resume(run_id, settings, store)
    assert started == ["supernet", "search", "finetune", "export"]
    assert not (folder / "supernet" / "before-redo.json").exists()
    assert any("supernet was redone and its output differs" in w for w in warnings)
    assert [e for e in events if isinstance(e, CandidateScored)]  # scores of the old supernet are not reused


def _cancel_after_supernet_steps(count):
    seen = []

    def sink(event):
        if isinstance(event, StepProgress) and event.stage == "supernet":
            seen.append(event.step)

    return sink, lambda: len(seen) >= count


@pytest.mark.parametrize("damage", ["cut", "no random state"])
def test_a_damaged_checkpoint_falls_back_to_the_previous_one(settings, store, damage):
    run_id = create_run(tiny_config("pix2pix", supernet={"steps": 12, "search_space": FEW}, checkpoint_interval_s=0.001), store, settings)
    sink, cancel = _cancel_after_supernet_steps(5)
    with pytest.raises(Cancelled):
        execute(run_id, settings, store, sink, cancel)
    latest = settings.runs_dir / f"{run_id:05d}" / "supernet" / "checkpoint.pt"
    previous = latest.with_name("checkpoint.previous.pt")
    assert latest.is_file() and previous.is_file()
    previous_step = torch.load(previous, weights_only=True)["step"]
    if damage == "cut":
        latest.write_bytes(latest.read_bytes()[:1000])
    else:
        state = torch.load(latest, weights_only=True)
        del state["rng"]
        torch.save(state, latest)
    events, started, warnings = _resume(run_id, settings, store, stop_after="supernet")
    assert any(str(latest) in w and "trying an earlier checkpoint" in w for w in warnings)
    assert any(f"resuming supernet from step {previous_step}" in e.text for e in events if isinstance(e, Message))
    steps = [e.step for e in events if isinstance(e, StepProgress) and e.stage == "supernet"]
    assert steps[:2] == [previous_step, previous_step + 1] and steps[-1] == 12  # its start, then on from there
    assert [step for step, _ in store.metric_series(run_id, "supernet", "G_distill")] == list(range(1, 13))
    assert store.stage_status(run_id, "supernet") is Status.finished


def test_with_every_checkpoint_damaged_the_stage_starts_again(settings, store):
    run_id = create_run(tiny_config("pix2pix", supernet={"steps": 12, "search_space": FEW}, checkpoint_interval_s=0.001), store, settings)
    sink, cancel = _cancel_after_supernet_steps(5)
    with pytest.raises(Cancelled):
        execute(run_id, settings, store, sink, cancel)
    folder = settings.runs_dir / f"{run_id:05d}" / "supernet"
    for name in ("checkpoint.pt", "checkpoint.previous.pt"):
        (folder / name).write_bytes(b"PK\x03\x04 not really a zip")
    events, started, warnings = _resume(run_id, settings, store, stop_after="supernet")
    assert any("no usable checkpoint; the stage starts again from step 0" in w for w in warnings)
    steps = [e.step for e in events if isinstance(e, StepProgress) and e.stage == "supernet"]
    assert steps[:2] == [0, 1] and steps[-1] == 12  # started again from step 0
    assert [step for step, _ in store.metric_series(run_id, "supernet", "G_distill")] == list(range(1, 13))
