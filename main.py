"""GAN Compression Workbench. ``python main.py`` opens the window; ``python main.py COMMAND`` runs the
engine headless (``python main.py --help`` lists the commands). Installed, the same program is ``gcw``
(and ``gcw-gui``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from workbench.entry import main as entry_main

    return entry_main(argv)


if __name__ == "__main__":
    sys.exit(main())
