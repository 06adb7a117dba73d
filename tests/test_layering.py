"""The engine must stay Qt-free (../shared/design.md): checked on the source and with import-linter."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "workbench")


def _imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_no_engine_module_imports_qt_or_the_workbench():
    offenders = [f"{path.relative_to(ROOT)} imports {name}"
                 for path in sorted((ROOT / "engine").rglob("*.py"))
                 for name in _imported_modules(path) if name.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_import_linter_contract_holds():
    # Through this interpreter, not the console script: the test must not depend on PATH or on where
    # the environment put its scripts.
    result = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                             "sys.exit(lint_imports_command())"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_layering_check_sees_a_qt_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("from PySide6.QtCore import QObject\nimport pyqtgraph as pg\n")
    assert _imported_modules(module) == ["PySide6.QtCore", "pyqtgraph"]


#: What the workbench may import of the engine (../shared/design.md: one facade plus events, settings, errors, and
#: the command line it runs and extends with its ``gui`` command).
WORKBENCH_MAY_IMPORT = {"engine.api", "engine.cli", "engine.events", "engine.settings", "engine.errors"}


def _engine_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names if alias.name.split(".")[0] == "engine"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "engine":  # from engine import api
                names += [f"engine.{alias.name}" for alias in node.names]
            elif node.module.split(".")[0] == "engine":
                names.append(node.module)
    return names


def test_the_workbench_imports_only_the_engines_facade_events_settings_and_errors():
    offenders = [f"{path.relative_to(ROOT)} imports {name}"
                 for path in sorted((ROOT / "workbench").rglob("*.py"))
                 for name in _engine_imports(path) if name not in WORKBENCH_MAY_IMPORT]
    assert offenders == []


def test_the_facade_check_sees_every_way_of_importing_the_engine(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("import engine.store\nfrom engine import pipeline\nfrom engine.config import STAGES\n"
                      "from engine.api import Store\n")
    assert [n for n in _engine_imports(module) if n not in WORKBENCH_MAY_IMPORT] == \
        ["engine.store", "engine.pipeline", "engine.config"]


def test_the_import_linter_deny_list_names_every_engine_module_the_workbench_may_not_import():
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    [facade] = [c for c in contracts if c.get("source_modules") == ["workbench"]]
    modules = {f"engine.{p.stem if p.suffix == '.py' else p.name}" for p in (ROOT / "engine").iterdir()
               if not p.name.startswith("_") and (p.suffix == ".py" or (p / "__init__.py").is_file())}
    assert modules - WORKBENCH_MAY_IMPORT == set(facade["forbidden_modules"])


#: What the command line may import of the engine (issue 43: it parses and prints; the work goes through the facade).
CLI_MAY_IMPORT = {"engine.api", "engine.config", "engine.events", "engine.settings", "engine.errors"}


def test_the_command_line_imports_only_the_facade_the_configuration_events_settings_and_errors():
    names = _engine_imports(ROOT / "engine" / "cli.py")
    assert "engine.api" in names
    assert [name for name in names if name not in CLI_MAY_IMPORT] == []


def test_the_import_linter_deny_list_names_every_engine_module_the_command_line_may_not_import():
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    [facade] = [c for c in contracts if c.get("source_modules") == ["engine.cli"]]
    modules = {f"engine.{p.stem if p.suffix == '.py' else p.name}" for p in (ROOT / "engine").iterdir()
               if not p.name.startswith("_") and (p.suffix == ".py" or (p / "__init__.py").is_file())}
    assert modules - CLI_MAY_IMPORT - {"engine.cli"} == set(facade["forbidden_modules"])
