"""The bundled program's entry: ``gcw`` (the window with no command, the command line otherwise).
When frozen, child runs started by the window run this same executable (``workbench.entry``)."""

import multiprocessing
import sys

from workbench.entry import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
