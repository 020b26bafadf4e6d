"""Whether a name an answer mentions is one the repository has: the missing-symbol verifier's test.

A name counts as known when the index defines it, when it is a file of the repository, when its last part
is defined (`report.make_report`, `self.area`), or when it belongs to a library the index cannot vouch for
(`json.dumps`, `requests.get`, `str.join`: the first part is a module the repository imports but does not
define, a Python standard library module or a builtin). What is left is a name the answer made up, or one
of the repository's own modules with a member it does not have (`pkg.nothing_here`).
"""

from __future__ import annotations

import builtins
import re
import sys
from collections.abc import Callable

from indexer.store import IndexStore

_FILE_NAME = re.compile(r"\.(?:py|pyi|js|jsx|mjs|ts|tsx|go|rs|java|c|h|cc|cpp|hpp|cs|rb|md|toml|json|ya?ml|txt|cfg"
                        r"|ini|sh)$")


def known_to(store: IndexStore) -> Callable[[str], bool]:
    """A test of names against this index (the repository's files and imports are read once)."""
    paths: list[str] | None = None
    external: set[str] | None = None

    def known(name: str) -> bool:
        nonlocal paths, external
        if store.definitions(name):
            return True
        if _FILE_NAME.search(name):
            paths = store.paths() if paths is None else paths
            return any(p == name or p.endswith(f"/{name}") for p in paths)
        if "." not in name:
            return False
        head, last = name.split(".", 1)[0], name.rsplit(".", 1)[-1]
        if store.definitions(last):
            return True
        if external is None:
            paths = store.paths() if paths is None else paths
            own = {p.split("/", 1)[0].rsplit(".", 1)[0] for p in paths}
            external = (store.imported_top_modules() | set(sys.stdlib_module_names) | set(dir(builtins))) - own
        return head in external

    return known
