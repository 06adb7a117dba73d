"""A job for the model process that holds it until a file appears (importable by name: the child process imports
it), so that a test can keep real work queued behind it for as long as it needs, without timing anything."""

import os
import time
from pathlib import Path


def held_until(path: str, timeout_s: float = 600.0) -> int:
    deadline = time.monotonic() + timeout_s
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getpid()
