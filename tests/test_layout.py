"""The house rules of the tree: no import circles, no module over 500 lines, a small `assistant/` top level.

Imports are read with `ast`, so imports under `TYPE_CHECKING` and inside functions count: a circle hidden
from the interpreter is still a circle for a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("assistant", "models", "indexer")
MAX_LINES = 500
MAX_TOP_LEVEL = 12


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    """Every module of the project's packages by its dotted name."""
    return {_module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def _imported_modules(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules a module imports by name, at any depth of its code: `from a.b import c` names
    `a.b.c` when that is a module, else `a.b`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, *([node.module] if node.module else [])])
            names.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)
    return {name for name in names if name in modules}


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Which project modules each module imports. Importing a module also runs its packages' `__init__`s,
    except the importer's own, which are already running (a module's packages always run before it)."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        own = _packages_of(module)
        named = _imported_modules(module, path, modules)
        implied = {p for name in named for p in _packages_of(name) if p in modules and p not in own}
        graph[module] = (named | implied) - {module}
    return graph


def _packages_of(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_no_import_circles_among_the_project_modules() -> None:
    circles = import_circles(import_graph(project_modules()))
    assert circles == [], "import circles (TYPE_CHECKING and function-level imports count): " + "; ".join(
        " ↔ ".join(group) for group in circles)


def test_the_circle_finder_sees_type_checking_and_function_level_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\n")
    (package / "b.py").write_text("def f():\n    from . import a\n")
    (package / "c.py").write_text("from pkg import a\n")
    modules = {"pkg": package / "__init__.py", "pkg.a": package / "a.py", "pkg.b": package / "b.py",
               "pkg.c": package / "c.py"}
    assert import_circles(import_graph(modules)) == [["pkg.a", "pkg.b"]]


def test_no_module_is_over_500_lines() -> None:
    lines = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in project_modules().items()}
    assert {name: n for name, n in lines.items() if n > MAX_LINES} == {}


def test_the_assistant_top_level_keeps_at_most_12_modules() -> None:
    top = sorted(p.stem for p in (ROOT / "assistant").glob("*.py") if p.name != "__init__.py")
    assert len(top) <= MAX_TOP_LEVEL, top


def test_every_assistant_folder_says_what_its_stage_takes_and_gives() -> None:
    for folder in sorted(p for p in (ROOT / "assistant").iterdir() if (p / "__init__.py").is_file()):
        docstring = ast.get_docstring(ast.parse((folder / "__init__.py").read_text(encoding="utf-8")))
        assert docstring, f"{folder.name}/__init__.py has no docstring"
