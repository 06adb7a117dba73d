"""The shape of the code, counted (issue 43's figures), from the source alone (nothing is imported):

- functions longer than 60 lines in ``engine/`` and 80 in ``workbench/``;
- imports between the stage modules (teacher, supernet, search, finetune, export);
- facade functions (``engine/api.py``) annotated to return a dict;
- attributes assigned on ``self`` in Qt classes that are not widgets, layouts, actions, timers or plot items
  (state kept in a view instead of a Qt-free object).

Usage: ``python benchmarks/code_shape.py [ROOT]`` (ROOT: a checkout; default this one). To compare with an
older commit: ``git worktree add /tmp/old COMMIT && python benchmarks/code_shape.py /tmp/old``."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

STAGES = ("teacher", "supernet", "search", "finetune", "export")
LIMITS = {"engine": 60, "workbench": 80}
#: Names of what a Qt class may hold as attributes without it being state: widgets and the like, by their class
#: name's ending or by the call that makes them.
QT_HOLDERS = ("Widget", "Label", "Button", "Box", "Layout", "Action", "Timer", "Edit", "View", "Item", "Line",
              "Choice", "Slider", "Splitter", "Bar", "Plot", "Legend", "Dialog", "Menu", "Tabs", "Group", "Spin",
              "Form", "Area", "Browser", "Scene", "Pixmap", "Model", "Check", "Combo", "Header", "List", "Table",
              "Text", "Frame", "Tree", "Overlay", "Canvas", "Exporter", "Icon", "Shortcut")


def long_functions(root: Path) -> dict[str, list[tuple[str, int]]]:
    found: dict[str, list[tuple[str, int]]] = {}
    for package, limit in LIMITS.items():
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > limit:
                        found.setdefault(package, []).append((f"{path.relative_to(root)}:{node.name}", length))
    return found


def stage_imports(root: Path) -> list[str]:
    found = []
    for stage in STAGES:
        tree = ast.parse((root / "engine" / "stages" / f"{stage}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                other = node.module.removeprefix("engine.stages.")
                if other in STAGES and other != stage:
                    found.append(f"{stage} -> {other}")
    return found


def dict_returning_facade(root: Path) -> list[str]:
    tree = ast.parse((root / "engine" / "api.py").read_text(encoding="utf-8"))
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
            and node.returns is not None and "dict" in ast.unparse(node.returns)]


def _is_qt_class(node: ast.ClassDef) -> bool:
    return any(isinstance(base, ast.Name) and base.id.startswith("Q") or
               isinstance(base, ast.Attribute) and base.attr.startswith(("Q", "Graphics", "Plot"))
               for base in node.bases)


def _holds_qt(value: ast.expr | None, makers: frozenset[str] | None = None) -> bool:
    """Whether ``value`` makes a widget or the like: a Qt call; counting helpers (``makers`` not None), also a call
    of a function of the module annotated to return one (the dialog's ``_spin(...)``), or a dict or list of them."""
    if isinstance(value, ast.Call):
        name = ast.unparse(value.func).split(".")[-1]
        return name.startswith("Q") or name.endswith(QT_HOLDERS) or name in ("Signal",) or name in (makers or ())
    if makers is not None and isinstance(value, (ast.DictComp, ast.ListComp)):
        return _holds_qt(value.value if isinstance(value, ast.DictComp) else value.elt, makers)
    return False


def _widget_makers(tree: ast.Module) -> frozenset[str]:
    """Module-level functions annotated to return a widget."""
    return frozenset(node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.returns is not None
                     and _holds_qt(ast.Call(func=ast.Name(ast.unparse(node.returns)), args=[], keywords=[])))


def non_widget_attributes(root: Path, helpers: bool = False) -> list[str]:
    """``helpers``: widgets made by a module's own helper functions, in dicts and lists, or several in one tuple
    assignment count as widgets (the count before this session did not; both are printed)."""
    found = set()
    for path in sorted((root / "workbench").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        makers = _widget_makers(tree) if helpers else None
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and _is_qt_class(n)):
            widgets, others = set(), set()
            for node in ast.walk(cls):
                targets = node.targets if isinstance(node, ast.Assign) else \
                    [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []
                for target in targets:
                    elements = target.elts if isinstance(target, ast.Tuple) else [target]
                    # ``a, b = QLabel(), QLabel()``: each name with its own value (where counting helpers too).
                    values = node.value.elts if helpers and isinstance(target, ast.Tuple) and \
                        isinstance(node.value, ast.Tuple) and len(node.value.elts) == len(elements) else \
                        [node.value] * len(elements)
                    for element, value in zip(elements, values):
                        if isinstance(element, ast.Attribute) and isinstance(element.value, ast.Name) \
                                and element.value.id == "self":
                            (widgets if _holds_qt(value, makers) else others).add(element.attr)
            found |= {f"{path.relative_to(root)}:{cls.name}.{name}" for name in others - widgets}
    return sorted(found)


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1]
    long = long_functions(root)
    for package, limit in LIMITS.items():
        rows = sorted(long.get(package, []), key=lambda row: -row[1])
        print(f"functions over {limit} lines in {package}/: {len(rows)}")
        for name, length in rows:
            print(f"  {length:4d}  {name}")
    imports = stage_imports(root)
    print(f"imports between stage modules: {len(imports)}" + (f" ({', '.join(imports)})" if imports else ""))
    facade = dict_returning_facade(root)
    print(f"facade functions returning a dict: {len(facade)}" + (f" ({', '.join(facade)})" if facade else ""))
    attributes = non_widget_attributes(root)
    print(f"non-widget attributes on Qt classes: {len(attributes)} (widgets made by helper functions, in dicts or "
          f"in tuple assignments counted as widgets: {len(non_widget_attributes(root, helpers=True))})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
