"""GAN Compression Workbench. ``python main.py`` opens the window; ``python main.py COMMAND`` runs the
engine headless (``python main.py --help`` lists the commands)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def _run_gui(args, settings) -> int:
    from workbench.app import run_app

    return run_app(settings)


def main(argv: Sequence[str] | None = None) -> int:
    from engine import cli

    parser, commands = cli.build_parser()
    gui = commands.add_parser("gui", help="open the workbench window (the default with no command)")
    gui.set_defaults(handler=_run_gui)
    args = parser.parse_args(argv)
    if args.command is None:
        args.handler = _run_gui
    elif getattr(args, "handler", None) is None:
        parser.print_help()
        return 1
    return cli.run(args)


if __name__ == "__main__":
    sys.exit(main())
