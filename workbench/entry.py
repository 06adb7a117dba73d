"""The program's entry points: ``gcw`` (the command line, ``gui`` among its commands; the window when
given no command) and ``gcw-gui`` (the window, without a console on desktops). ``python main.py`` in a
checkout and the bundled executable of ``packaging/`` run the same ``main``."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def _run_gui(args, settings) -> int:
    from workbench.app import run_app

    return run_app(settings, check=getattr(args, "check", False))


def main(argv: Sequence[str] | None = None) -> int:
    from engine import cli

    parser, commands = cli.build_parser()
    gui = commands.add_parser("gui", help="open the workbench window (the default with no command)")
    gui.add_argument("--check", action="store_true",
                     help="open the window, print what was opened and quit (a start-up check for installs)")
    gui.set_defaults(handler=_run_gui)
    args = parser.parse_args(argv)
    if args.command is None:
        args.handler = _run_gui
    elif getattr(args, "handler", None) is None:
        parser.print_help()
        return 1
    return cli.run(args)


def gui_main() -> int:
    """``gcw-gui [--check]``: the window (its options after the program name)."""
    return main(["gui", *sys.argv[1:]])


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


if __name__ == "__main__":
    sys.exit(main())
