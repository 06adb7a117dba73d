"""Faults of concurrent use (issue: reliability): processes opening a fresh workspace at once, and two
processes claiming the same run."""

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.errors import RunBusyError
from engine.store import Status, Store, open_store

ROOT = Path(__file__).resolve().parents[2]
# Each process imports first, says it is ready, then waits for the word to go: the opens really overlap however
# long the imports take (a loaded machine took longer than any fixed head start).
OPEN_AND_LIST = """
import pathlib, sys, time
from engine.store import open_store
folder = pathlib.Path(sys.argv[2])
(folder / f"ready-{sys.argv[3]}").touch()
while not (folder / "go").exists():
    time.sleep(0.001)
store = open_store(sys.argv[1])
store.list_runs()
store.close()
"""


def _all_at_once(url: str, folder: Path, count: int = 4) -> list[tuple[int, str]]:
    folder.mkdir(parents=True)
    processes = [subprocess.Popen([sys.executable, "-c", OPEN_AND_LIST, url, str(folder), str(i)], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(count)]
    try:
        deadline = time.monotonic() + 600  # a guard against a hang, not a speed limit
        while len(list(folder.glob("ready-*"))) < count:
            assert all(p.poll() is None for p in processes), [p.stderr.read() for p in processes if p.poll() is not None]
            assert time.monotonic() < deadline, "the processes never became ready"
            time.sleep(0.01)
        (folder / "go").touch()
        return [(p.wait(timeout=600), p.stderr.read()) for p in processes]
    finally:
        for p in processes:
            p.kill()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_processes_opening_a_fresh_store_at_once_all_succeed(tmp_path, request, backend):
    for attempt in range(3):
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / f'ws{attempt}' / 'store.sqlite'}"
        else:
            url = request.getfixturevalue("postgres_server").new_database()
        outcomes = _all_at_once(url, tmp_path / f"barrier{attempt}")
        assert all(code == 0 for code, _ in outcomes), [err for code, err in outcomes if code]
        store = open_store(url)
        assert store.schema_revision() == Store.head_revision()
        store.close()


def test_of_two_claims_of_a_run_at_once_exactly_one_wins_and_the_other_names_the_holder(store_url):
    first, second = open_store(store_url), open_store(store_url)
    for _ in range(10):
        run_id = first.create_run(name="r", family="pix2pix", dataset="d", config={}, stages=["teacher"])
        barrier, outcomes = threading.Barrier(2), []

        def claim(store):
            barrier.wait()
            try:
                store.claim_run(run_id)
                outcomes.append("claimed")
            except RunBusyError as exc:
                outcomes.append(str(exc))

        threads = [threading.Thread(target=claim, args=(s,)) for s in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(outcomes)[0] == "claimed" and outcomes.count("claimed") == 1
        assert "already running (pid" in next(o for o in outcomes if o != "claimed")
        run = first.get_run(run_id)
        assert run.status is Status.running and run.pid is not None
    first.mark_run(run_id, Status.failed, error="killed")
    second.claim_run(run_id)  # a failed run can be claimed again (resume)
    first.close()
    second.close()
