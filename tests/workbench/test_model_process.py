"""The views' model work runs in a child process (loading models and creating ONNX Runtime sessions held the GIL
and froze the window for 1-2 s on a thread): results and errors come back as signals, a dead child is said and
replaced."""

import os
import signal

from workbench.background.model_process import ModelProcess


def _wait(qtbot, process, outcomes, count):
    qtbot.waitUntil(lambda: len(outcomes) >= count, timeout=120_000)


def test_jobs_run_in_another_process_and_their_errors_come_back_as_messages(qtbot):
    process = ModelProcess()
    outcomes = []
    process.done.connect(lambda job, result: outcomes.append(("done", job, result)))
    process.failed.connect(lambda job, message: outcomes.append(("failed", job, message)))
    first = process.submit(os.getpid)
    second = process.submit(int, "not a number")
    _wait(qtbot, process, outcomes, 2)
    assert ("done", first) == outcomes[0][:2] and outcomes[0][2] != os.getpid()
    assert outcomes[1][:2] == ("failed", second) and "invalid literal for int()" in outcomes[1][2]
    assert not process.busy()


def test_a_child_that_dies_is_said_and_the_next_job_gets_a_new_one(qtbot):
    process = ModelProcess()
    outcomes = []
    process.done.connect(lambda job, result: outcomes.append(("done", result)))
    process.failed.connect(lambda job, message: outcomes.append(("failed", message)))
    process.submit(os.getpid)
    _wait(qtbot, process, outcomes, 1)
    child = outcomes[0][1]
    process.submit(os.kill, child, signal.SIGKILL)  # as the out-of-memory killer would
    _wait(qtbot, process, outcomes, 2)
    assert outcomes[1][0] == "failed" and "ended unexpectedly" in outcomes[1][1]
    process.submit(os.getpid)
    _wait(qtbot, process, outcomes, 3)
    assert outcomes[2][0] == "done" and outcomes[2][1] not in (child, os.getpid())
