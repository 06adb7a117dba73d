"""GAN Compression Workbench engine: models, data, profiling, store and the command line.

This package never imports Qt; the workbench drives it through its public functions,
the run store and its own command line.
"""

__version__ = "0.1.0"
