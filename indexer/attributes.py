"""Where the code sets what an error says is missing: `'Line3D' object has no attribute '_verts3d'` points at
the methods that assign `self._verts3d`, the named class's own first (the attribute is read where it
failed, but a fix goes where it should have been set)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from indexer.source import read_lines
from indexer.store import IndexStore, Symbol

_MISSING = re.compile(r"""['"]?(\w+)['"]? object has no attribute ['"](\w+)['"]""")


def missing_attributes(literals: Sequence[str]) -> list[tuple[str, str]]:
    """The (class, attribute) pairs of the AttributeError messages among a question's literals."""
    return list(dict.fromkeys(m.groups() for literal in literals for m in _MISSING.finditer(literal)))


def attribute_setters(store: IndexStore, root: Path, paths: Sequence[str],
                      missing: Sequence[tuple[str, str]]) -> list[Symbol]:
    """The innermost definitions of `paths` (and of the files defining the classes named) that assign each
    missing attribute, the named class's methods first."""
    found: list[Symbol] = []
    for class_name, attribute in missing:
        assigns = re.compile(rf"\bself\.{re.escape(attribute)}\s*(?:[-+*/|&]?=)(?!=)")
        files = dict.fromkeys([*paths, *(s.path for s in store.definitions(class_name) if s.name == class_name)])
        setters = [s for path in files for s in _assigning(store, root, path, assigns)]
        setters.sort(key=lambda s: not s.qualified_name.startswith(f"{class_name}."))
        found += setters
    return list(dict.fromkeys(found))


def _assigning(store: IndexStore, root: Path, path: str, assigns: re.Pattern[str]) -> list[Symbol]:
    """The innermost definitions of one file around the lines that match `assigns`."""
    numbers = [n for n, line in enumerate(read_lines(root, path), start=1) if assigns.search(line)]
    found = (store.definition_at(path, n) for n in numbers)
    return list(dict.fromkeys(s for s in found if s is not None))
