"""A small real filesystem to fill (a tmpfs): what a full disk does, not a simulation of it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path


def mount(folder: Path, size: str) -> str | None:
    """Mount a tmpfs of ``size`` on ``folder``; None, or why it could not be."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run mount: {exc}"
    return None if done.returncode == 0 else (done.stderr.strip() or f"mount exited with {done.returncode}")


class SmallDisk:
    def __init__(self, folder: Path):
        self.folder = folder

    def resize(self, size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.folder)], check=True, timeout=30)

    def fill(self, leave_bytes: int) -> Path:
        """A file that leaves about ``leave_bytes`` free."""
        filler = self.folder / "filler"
        free = shutil.disk_usage(self.folder).free
        with filler.open("wb") as handle:
            handle.write(b"\0" * max(0, free - leave_bytes))
        return filler


@cache
def cannot_mount() -> str | None:
    """Why no tmpfs can be mounted here (None: one can), tried once per session."""
    with tempfile.TemporaryDirectory() as folder:
        why = mount(Path(folder), "1m")
        if why is None:
            subprocess.run(["umount", "-l", folder], timeout=30)
        return why
