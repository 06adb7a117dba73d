"""The window's Qt-free state (``workbench/session/state.py``, ``workbench/session/new_run_form.py``), tested apart from the
widgets: no QApplication is made here (``tests/workbench/conftest.py`` makes one for every widget test), and an
import-linter contract keeps these modules from importing Qt at all."""
