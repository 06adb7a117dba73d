"""Whether a finished stage's files are still whole: its ``result.json`` reads as JSON and every artifact
the store recorded for it has the recorded size and SHA-256. A resume checks this before trusting a
finished stage (a deleted teacher, a supernet cut short by a copy, an edited result)."""

from __future__ import annotations

import json
from pathlib import Path

from engine.files import from_run
from engine.store import Store
from engine.store.store import file_sha256


def stage_problem(store: Store, run_id: int, run_dir: Path, stage: str) -> str | None:
    """What is wrong with a finished stage's files, naming the file, or None when they are whole."""
    result = run_dir / stage / "result.json"
    if not result.is_file():
        return f"its result {result} is missing"
    try:
        json.loads(result.read_text())
    except (ValueError, UnicodeDecodeError):
        return f"its result {result} is damaged (not valid JSON)"
    for artifact in store.stage_artifacts(run_id, stage):
        path = from_run(artifact.path, run_dir)
        what = artifact.kind.replace("_", " ")
        if not path.is_file():
            return f"its {what} {path} is missing"
        size = path.stat().st_size
        if artifact.size_bytes is not None and size != artifact.size_bytes:
            return f"its {what} {path} is damaged ({size} bytes, {artifact.size_bytes} when written)"
        if artifact.sha256 and file_sha256(path) != artifact.sha256:
            return f"its {what} {path} is damaged (its contents changed since it was written)"
    return None


def fingerprint(store: Store, run_id: int, stage: str) -> dict[str, str | None]:
    """The recorded digests of a stage's artifacts by kind: equal before and after a redo means the stages
    after it still hold."""
    return {artifact.kind: artifact.sha256 for artifact in store.stage_artifacts(run_id, stage)}
