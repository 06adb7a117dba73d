"""Writing a run's files so that a failure (a full disk, a killed process) never leaves a half-written
file in place of a good one, and says plainly which disk and file it was."""

from __future__ import annotations

import errno
import gc
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import UserError

#: errno values that mean "the disk refused the write", not a bug.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


#: Free space below which a failed write is taken for a full disk, whatever the writer raised: torch's zip
#: writer turns the disk's refusal into ``RuntimeError("... unexpected pos ...")``, not ``OSError(ENOSPC)``.
FULL_BELOW_BYTES = 1 << 20


def _megabytes(size: float) -> str:
    return f"{size / 1e6:.1f} MB" if size < 10e6 else f"{size / 1e6:.0f} MB"


def _nearest_folder(path: Path) -> Path:
    """The folder that holds ``path`` or, where it is not made yet, its nearest parent that exists."""
    return next((p for p in (path.parent, *path.parents) if p.exists()), path.parent)


def full_disk(path: Path, free: int, needs: int | None = None) -> UserError:
    """The message for a write to ``path`` that a full disk refused: the disk (the folder it holds), the space
    free, what needed it and how much."""
    path = Path(path)
    folder = _nearest_folder(path)
    wanted = f" (about {_megabytes(needs)})" if needs else ""
    return UserError(f"the disk holding {folder} is full ({_megabytes(free)} free) while writing {path}{wanted}; "
                     "free some space there (or move the workspace), then resume the run")


def free_bytes(path: Path) -> int:
    """Free bytes on the disk that holds (or would hold) ``path``."""
    try:
        return shutil.disk_usage(_nearest_folder(Path(path))).free
    except OSError:
        return 0


def disk_error(exc: OSError, path: Path, needs: int | None = None) -> UserError | OSError:
    """A clear message for a write that the disk refused (full, over quota, read-only); other errors as
    they are."""
    path = Path(path)
    if exc.errno in DISK_FULL:
        return full_disk(path, free_bytes(path), needs)
    if exc.errno in NOT_WRITABLE:
        return UserError(f"cannot write {path}: {exc.strerror}; make the folder writable (or choose another "
                         "workspace), then resume the run")
    return exc


def write_atomic(path: Path, write: Callable[[Path], None], previous: Path | None = None,
                 needs: int | None = None) -> Path:
    """Replace ``path`` with what ``write(tmp)`` writes to a temporary file beside it, so a failed or killed
    write never leaves a half-written file in its place; the temporary file is removed again on failure
    (a full disk is a ``UserError`` naming the disk, its free space, the file and ``needs``, the bytes it needs
    where the caller knows them). With ``previous``, the file replaced is kept there."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    original: BaseException | None = None
    try:
        write(tmp)
        if previous is not None and path.is_file():
            os.replace(path, previous)
        os.replace(tmp, path)
        return path
    except BaseException as exc:
        original = exc
    written = tmp.stat().st_size if tmp.exists() else 0
    refused = isinstance(original, OSError) and original.errno in DISK_FULL
    full = refused or (isinstance(original, Exception) and free_bytes(path) < FULL_BELOW_BYTES)
    if not full:
        tmp.unlink(missing_ok=True)
        error = disk_error(original, path) if isinstance(original, OSError) else original
        if error is original:
            raise original
        raise error from None
    # The failed writer's frames (held by the exception) keep the temporary file open, and an unlinked file that
    # is still open keeps its space: released first, so that what comes next (recording the failure in a store
    # on the same disk) finds the space again.
    original = None
    gc.collect()
    tmp.unlink(missing_ok=True)
    raise full_disk(path, free_bytes(path), max(needs or 0, written) or None)


def write_text_atomic(path: Path, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def missing(path: Path, what: str) -> str:
    """Words for ``path``, which is not the kind ``what`` names ("dataset folder", "config file"): not found, or
    found as the other kind (said so, instead of "not found")."""
    path = Path(path)
    if path.is_dir():
        return f"{what} {path} is a folder, not a file: give the file itself"
    if path.exists():
        return f"{what} {path} is a file, not a folder: give the folder that holds it"
    return f"{what} not found: {path}"


def output_folder(path: Path, option: str) -> Path:
    """A folder the user named for output (``option``: where it was named), made if needed and checked writable
    before any work is done: an existing file or an unwritable place is refused with what to give instead."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path} is a file; give a folder (it will hold the exported files), e.g. "
                        f"{path.with_suffix('')}-export")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".gcw-write-check"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise disk_error(exc, path) from None
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        reason = f"{blocker} is a file" if blocker is not None else (exc.strerror or str(exc))
        raise UserError(f"{option} {path} cannot be written ({reason}); give a folder you can write to") from None
    return path


#: Keys of a stage's result that name files of the run (its weights, its exports; ``path`` inside a variant).
RUN_FILE_KEYS = frozenset({"weights", "onnx_path", "model_card_path", "grid_path", "path"})
_IN_A_RUN = re.compile(r"(?:^|/)runs/\d{5}/(.+)$")


def in_run(path: Path | str, run_dir: Path) -> str:
    """How a run records one of its files: relative to the run's folder, so that a workspace moved or copied
    elsewhere keeps working; a file outside the folder (an export to a folder of the user's) as it is."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(Path(run_dir).resolve()).as_posix()
    except ValueError:
        return str(resolved)


def from_run(text: str, run_dir: Path) -> Path:
    """Where a file a run recorded is now: a relative path under the run's folder; an absolute one (as earlier
    versions recorded every file) where it still is, else, for a file of a run folder, at the same place under
    this run's folder (the workspace was moved)."""
    path = Path(text)
    if not path.is_absolute():
        return Path(run_dir) / path
    if path.exists():
        return path
    moved = _IN_A_RUN.search(path.as_posix())
    return Path(run_dir) / moved.group(1) if moved else path


def _map_run_files(value: Any, convert: Callable[[str], str]) -> Any:
    if isinstance(value, dict):
        return {k: convert(v) if k in RUN_FILE_KEYS and isinstance(v, str) else _map_run_files(v, convert)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_map_run_files(v, convert) for v in value]
    return value


def result_as_recorded(result: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """A stage's result with the run's files relative to its folder (how ``result.json`` holds them)."""
    return _map_run_files(result, lambda text: in_run(text, run_dir))


def result_as_located(result: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """A stage's result as read from ``result.json``, with the run's files where they are now."""
    return _map_run_files(result, lambda text: str(from_run(text, run_dir)))
