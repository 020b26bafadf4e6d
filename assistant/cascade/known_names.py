"""Whether a name an answer mentions could be one the repository has: the missing-symbol verifier's test.

A name counts as known when the index defines it, when it is a file of the repository, or when it is
dotted and its last part is defined (`report.make_report`). A dotted name whose first part is not the
repository's own (`json.dumps`, `str.join`, `self.cfg`, `response.json`: a library, a builtin, a variable)
cannot be checked against the index and is let through. What is left is a name the answer made up
(`make_unicorns`), or a member the repository's own module or class does not have (`pkg.nothing_here`,
`Circle.perimeter`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from indexer.store import IndexStore

_FILE_NAME = re.compile(r"\.(?:py|pyi|js|jsx|mjs|ts|tsx|go|rs|java|c|h|cc|cpp|hpp|cs|rb|md|toml|json|ya?ml|txt|cfg"
                        r"|ini|sh)$")
_MEMBER_LIKE_SUFFIXES = frozenset({"json", "ts", "h", "c", "cc", "md", "txt", "sh", "cfg", "ini", "cs", "rb"})
"""File extensions that are also common member names (`response.json`, `event.ts`, `self.h`)."""


def known_to(store: IndexStore) -> Callable[[str], bool]:
    """A test of names against this index (the repository's paths are read once, when first needed)."""
    paths: list[str] | None = None
    own: set[str] | None = None

    def known(name: str) -> bool:
        nonlocal paths, own
        if store.definitions(name):
            return True
        if _FILE_NAME.search(name):
            paths = store.paths() if paths is None else paths
            if any(p == name or p.endswith(f"/{name}") for p in paths):
                return True
            if name.rsplit(".", 1)[-1] not in _MEMBER_LIKE_SUFFIXES:
                return False  # `helpers.py`: a file the repository does not have
        if "." not in name:
            return False
        head, last = name.split(".", 1)[0], name.rsplit(".", 1)[-1]
        if store.definitions(last):
            return True
        if own is None:
            paths = store.paths() if paths is None else paths
            own = {part.rsplit(".", 1)[0] for p in paths for part in p.split("/")}  # src/mypkg/x.py: all three
        return head not in own and not any(s.name == head for s in store.definitions(head))

    return known
