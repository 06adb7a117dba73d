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


if __name__ == "__main__":
    sys.exit(main())
