"""The command line with one fault injected: the process kills itself (SIGKILL, nothing cleaned up) at the
Nth point a stage reports, as a crash or an out-of-memory kill would.

    python -m tests.faults.kill_at STAGE N compress --config run.yaml ...

A stage's points, counted together: each finished training step (``progress``, after its losses reach the
store and before its checkpoint), each scored candidate (sent out, maybe not yet written to the store) and
each artifact written.
"""

from __future__ import annotations

import os
import signal
import sys

from engine.stages import search
from engine.stages.context import StageContext


def install(stage: str, point: int) -> None:
    seen = {"count": 0}

    def count(ctx: StageContext) -> None:
        if ctx.stage == stage:
            seen["count"] += 1
            if seen["count"] == point:
                os.kill(os.getpid(), signal.SIGKILL)

    def wrap(original, context_of):
        def wrapper(self, *args, **kwargs):
            result = original(self, *args, **kwargs)
            count(context_of(self))
            return result
        return wrapper

    StageContext.progress = wrap(StageContext.progress, lambda ctx: ctx)
    StageContext.artifact = wrap(StageContext.artifact, lambda ctx: ctx)
    search.report_candidate = wrap(search.report_candidate, lambda ctx: ctx)


if __name__ == "__main__":
    install(sys.argv[1], int(sys.argv[2]))
    import main

    sys.exit(main.main(sys.argv[3:]))
