import io
import json

import pytest

from engine.events import (ArtifactWritten, CandidateScored, Fanout, JsonLinesRenderer, Message, RunFinished,
                           StageFailed, StageFinished, StageStarted, StepProgress, TerminalRenderer, event_from_dict)


def test_json_lines_round_trip_every_event_kind():
    events = [
        StageStarted(run_id=1, stage="supernet", total_steps=10),
        StepProgress(run_id=1, stage="supernet", step=3, total_steps=10, losses={"G_gan": 0.5}),
        CandidateScored(run_id=1, arch="16_16_24_16_32_64_16_24", macs=2_640_000_000, params=355_235,
                        metrics={"fid": 65.2}, latency_ms=3.1),
        ArtifactWritten(run_id=1, stage="export", path="/x/student.onnx", artifact_kind="onnx"),
        StageFinished(run_id=1, stage="supernet", seconds=12.5),
        StageFailed(run_id=1, stage="search", error="boom"),
        RunFinished(run_id=1, summary={"macs_ratio": 21.5}),
        Message(level="warning", text="no Inception weights"),
    ]
    stream = io.StringIO()
    sink = JsonLinesRenderer(stream)
    for event in events:
        sink(event)
    lines = stream.getvalue().splitlines()
    assert len(lines) == len(events)
    assert [event_from_dict(json.loads(line)) for line in lines] == events


def test_unknown_event_kind_is_rejected():
    with pytest.raises(ValueError, match="not an engine event"):
        event_from_dict({"event": "nonsense"})


def test_terminal_renderer_on_a_pipe_writes_progress_lines_every_tenth():
    stream = io.StringIO()
    render = TerminalRenderer(stream)
    render(StageStarted(stage="teacher", total_steps=100, time=0.0))
    for step in range(1, 101):
        render(StepProgress(stage="teacher", step=step, total_steps=100, losses={"loss": 1 / step}, time=step * 0.1))
    render(StageFinished(stage="teacher", seconds=10.0))
    lines = stream.getvalue().splitlines()
    progress = [line for line in lines if "|" in line]
    assert lines[0] == "[teacher] started"
    assert 10 <= len(progress) <= 11
    assert "100/100" in progress[-1] and "it/s" in progress[-1] and "loss=" in progress[-1]
    assert lines[-1] == "[teacher] finished in 0:10"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_renderer_redraws_one_bar_on_a_tty():
    stream = _Tty()
    render = TerminalRenderer(stream, min_interval_s=0.0)
    render(StageStarted(stage="search", total_steps=4, time=0.0))
    for step in range(1, 5):
        render(StepProgress(stage="search", step=step, total_steps=4, time=float(step)))
    render(Message(text="done"))
    text = stream.getvalue()
    last = text.split("\r")[-1]  # the bar as it was left: redrawn in place, then the next line below it
    assert last.startswith("[search] 100%|") and " 4/4 [" in last and "step/s" in last
    assert text.endswith("\ndone\n") and text.count("\n") == 3  # started, the bar, done


def test_fanout_sends_to_every_sink():
    seen_a, seen_b = [], []
    sink = Fanout(seen_a.append, seen_b.append)
    event = Message(text="hello")
    sink(event)
    assert seen_a == seen_b == [event]


def test_the_log_lines_of_events_are_worded_once_for_the_store_and_the_views():
    from engine.events import (ArtifactWritten, Message, RunFinished, StageFailed, StageFinished, StageStarted,
                               StepProgress, format_log_line, log_line)

    assert log_line(StageStarted(run_id=1, stage="teacher")) == ("info", "[teacher] started")
    assert log_line(StageFinished(run_id=1, stage="teacher", seconds=2.04)) == ("info", "[teacher] finished in 2.0 s")
    assert log_line(StageFailed(run_id=1, stage="search", error="boom")) == ("error", "[search] failed: boom")
    assert log_line(RunFinished(run_id=1)) == ("info", "run finished")
    assert log_line(StepProgress(run_id=1, stage="teacher", step=1)) is None
    assert log_line(ArtifactWritten(run_id=1, path="x", artifact_kind="onnx")) is None
    assert format_log_line(*log_line(Message(run_id=1, level="warning", text="careful"))) == "WARNING: careful"
    assert format_log_line("info", "plain") == "plain"
