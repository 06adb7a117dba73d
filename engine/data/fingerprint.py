"""What a dataset held when a stage read it: per folder of the dataset (``train``, ``trainA``, ``test``,
``train_label``...), how many image files and a digest of their names, sizes and modification times. A resume
compares it with the folder as it is now and says what changed, instead of trusting that nothing did."""

from __future__ import annotations

import hashlib
from pathlib import Path

from engine.data.images import is_image_file

Fingerprint = dict[str, dict[str, object]]


def dataset_fingerprint(root: Path) -> Fingerprint:
    """``{folder: {"files": n, "digest": sha256}}`` of the image files under ``root`` (files directly in it
    count under "."); reading directory entries only, so it costs milliseconds for thousands of files."""
    root = Path(root)
    folders: dict[str, list[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and is_image_file(p)):
        relative = path.relative_to(root)
        folder = relative.parts[0] if len(relative.parts) > 1 else "."
        stat = path.stat()
        folders.setdefault(folder, []).append(f"{relative.as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}")
    return {folder: {"files": len(entries), "digest": hashlib.sha256("\n".join(entries).encode()).hexdigest()}
            for folder, entries in folders.items()}


def describe_changes(before: Fingerprint, now: Fingerprint) -> list[str]:
    """What changed between two fingerprints, a phrase per folder (empty: nothing)."""
    changes = []
    for folder in sorted(set(before) | set(now)):
        was, is_ = before.get(folder), now.get(folder)
        if was == is_:
            continue
        if is_ is None:
            changes.append(f"{folder}/ is gone ({was['files']} files before)")  # type: ignore[index]
        elif was is None:
            changes.append(f"{folder}/ is new ({is_['files']} files)")
        elif was["files"] != is_["files"]:
            changes.append(f"{folder}/ has {is_['files']} files ({was['files']} before)")
        else:
            changes.append(f"{folder}/ has files changed or replaced ({is_['files']} files, as before)")
    return changes
