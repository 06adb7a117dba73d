"""The capabilities are dispatched on typed families (``Family``, ``FamilyOptions``), not ``Any``: a static type
check finds a wrong method name where it is dispatched, before any family runs it."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CAPABILITIES = ROOT / "engine" / "families" / "capabilities.py"
#: What the check reads besides the capabilities: the family's own types (torch and pydantic are not followed:
#: seen as Any, which keeps the check under a second).
BESIDE = ["engine/families/base.py", "engine/arch.py", "engine/errors.py"]


def _mypy(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=skip", "--ignore-missing-imports",
                           "--no-incremental", "--no-error-summary", str(path), *BESIDE],
                          cwd=ROOT, capture_output=True, text=True)


def test_every_dispatch_takes_a_typed_family_and_options():
    tree = ast.parse(CAPABILITIES.read_text())
    untyped = [f"{node.name}({arg.arg})" for node in tree.body if isinstance(node, ast.FunctionDef)
               for arg in node.args.args if arg.arg in ("family", "options")
               and (arg.annotation is None or ast.unparse(arg.annotation) == "Any")]
    assert untyped == []


def test_the_static_check_passes_and_finds_a_wrong_method_name(tmp_path):
    checked = _mypy(CAPABILITIES)
    assert checked.returncode == 0, checked.stdout
    # The same module with one dispatched call misspelt: the check must say so, naming the method.
    typo = tmp_path / "capabilities_typo.py"
    typo.write_text(CAPABILITIES.read_text().replace("family.conditioning(options, count, seed)",
                                                     "family.conditionings(options, count, seed)"))
    failed = _mypy(typo)
    assert failed.returncode != 0 and '"conditionings"' in failed.stdout
