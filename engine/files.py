"""Writing a run's files so that a failure (a full disk, a killed process) never leaves a half-written
file in place of a good one, and says plainly which disk and file it was."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from engine.errors import UserError

#: errno values that mean "the disk refused the write", not a bug.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def disk_error(exc: OSError, path: Path) -> UserError | OSError:
    """A clear message for a write that the disk refused (full, over quota, read-only); other errors as
    they are."""
    path = Path(path)
    if exc.errno in DISK_FULL:
        folder = next((p for p in (path.parent, *path.parents) if p.exists()), path.parent)
        free = shutil.disk_usage(folder).free if folder.exists() else 0
        return UserError(f"the disk holding {folder} is full ({free / 1e6:.0f} MB free) while writing {path}; "
                         "free some space there (or move the workspace), then resume the run")
    if exc.errno in NOT_WRITABLE:
        return UserError(f"cannot write {path}: {exc.strerror}; make the folder writable (or choose another "
                         "workspace), then resume the run")
    return exc


def write_atomic(path: Path, write: Callable[[Path], None], previous: Path | None = None) -> Path:
    """Replace ``path`` with what ``write(tmp)`` writes to a temporary file beside it, so a failed or killed
    write never leaves a half-written file in its place; the temporary file is removed again on failure
    (a full disk is a ``UserError`` naming the disk and file). With ``previous``, the file replaced is kept
    there."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        if previous is not None and path.is_file():
            os.replace(path, previous)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise disk_error(exc, path) from None
        raise
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text))


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
