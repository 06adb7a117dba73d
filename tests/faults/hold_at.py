"""The command line held at one point until it is asked to stop: at the Nth step a stage reports, the process
waits for its cancel flag (SIGTERM, SIGINT) before it goes on, so that a cancel lands at that step however
slowly the machine runs the test that sends it (without the hold, a loaded machine could finish the stage
before the cancel arrived).

    python -m tests.faults.hold_at STAGE N compress --config run.yaml ...
"""

from __future__ import annotations

import sys
import time

from engine.stages.context import StageContext
from tests.patience import REAL_WORK_S


def install(stage: str, point: int) -> None:
    seen = {"count": 0}
    original = StageContext.progress

    def progress(self: StageContext, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.stage == stage:
            seen["count"] += 1
            if seen["count"] == point:
                deadline = time.monotonic() + REAL_WORK_S  # a guard against a test that never cancels
                while not self.cancel_requested() and time.monotonic() < deadline:
                    time.sleep(0.01)

    StageContext.progress = progress


if __name__ == "__main__":
    install(sys.argv[1], int(sys.argv[2]))
    import main

    sys.exit(main.main(sys.argv[3:]))
