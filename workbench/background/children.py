"""The commands the window starts its children with (runs, exports, checks): this same installation's ``gcw``,
as a Python module in a checkout or a wheel, or the bundled executable itself."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def can_start_processes() -> bool:
    """Whether this installation can start a run on several processes (torchrun runs Python modules: a
    bundled executable has no Python beside it)."""
    return not getattr(sys, "frozen", False)


def child_command(arguments: Sequence[str], processes: int = 1) -> tuple[str, list[str]]:
    """The program and arguments that run ``gcw ARGUMENTS`` in a child process with this same
    installation: the bundled executable itself when frozen (there is no Python beside it), else this
    interpreter with this module; with ``processes`` > 1, under torchrun on this machine."""
    if getattr(sys, "frozen", False):
        if processes > 1:
            raise RuntimeError("the bundled application runs one process; install the wheel to use several")
        return sys.executable, list(arguments)
    if processes > 1:
        return sys.executable, ["-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                                "--nproc_per_node", str(processes), "-m", "workbench.entry", *arguments]
    return sys.executable, ["-m", "workbench.entry", *arguments]
