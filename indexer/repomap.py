"""A ranked map of the repository: PageRank over the definition/reference graph, within a token budget."""

from __future__ import annotations

import functools
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from indexer.store import IndexStore
from indexer.words import split_identifier

if TYPE_CHECKING:
    import numpy as np

TokenCounter = Callable[[str], int]
"""Counts the tokens of a text with some tokenizer."""

_DAMPING = 0.85
_ITERATIONS = 40
_MAX_LINE = 160
_FOCUS_WEIGHT = 100.0
_QUERY_WEIGHT = 10.0
_OWN_FILE_SHARE = 0.05
"""Share of its file's rank every definition gets, referenced or not."""
_FAMILY = {"tsx": "typescript", "javascript": "typescript", "c": "cpp"}
"""Languages whose files can use each other's names."""


@dataclass(frozen=True)
class MapEntry:
    """One definition the map may show."""

    path: str
    line: int
    depth: int
    """How deeply the definition nests (0 at top level)."""
    text: str
    """The signature line to show."""
    rank: float


def rank_definitions(store: IndexStore, query: str | None = None, focus: Iterable[str] = ()) -> list[MapEntry]:
    """Every definition with its rank, best first.

    Files are ranked by PageRank over "file A references a name that file B defines", personalized
    towards the focus files and files defining identifiers in the query; each file's rank then flows
    to the definitions its referrers use. The graph is held as numpy arrays of (referring file, defining
    file, name) edges: a large repository's half a million edges rank in well under a second.
    """
    import numpy as np
    with store.snapshot() as conn:  # a watcher writing meanwhile must not split the graph from its files
        definitions = conn.execute(
            "SELECT f.path, f.language, s.name, s.qualified_name, s.line, s.signature, s.kind FROM symbols s"
            " JOIN files f ON f.id = s.file_id"
        ).fetchall()
        files = sorted(store.paths())
        rows = conn.execute(
            "SELECT f.path, f.language, r.name, COUNT(*) AS n FROM refs r JOIN files f ON f.id = r.file_id"
            " GROUP BY r.file_id, r.name"
        ).fetchall()
    file_index = {path: i for i, path in enumerate(files)}
    defined_in: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in definitions:
        defined_in[(_FAMILY.get(row["language"], row["language"]), row["name"])].add(row["path"])
    targets_of = {key: np.array([file_index[p] for p in paths], dtype=np.int64) for key, paths in defined_in.items()}
    idents = _query_identifiers(query)

    name_index: dict[str, int] = {}
    sources: list[int] = []
    names: list[int] = []
    weights: list[float] = []
    fanned: list[np.ndarray] = []
    for row in rows:
        found = targets_of.get((_FAMILY.get(row["language"], row["language"]), row["name"]))
        if found is None:
            continue
        weight = math.sqrt(row["n"]) / len(found)
        if row["name"].lower() in idents:
            weight *= _QUERY_WEIGHT
        if row["name"].startswith("_"):
            weight *= 0.1
        sources.append(file_index[row["path"]])
        names.append(name_index.setdefault(row["name"], len(name_index)))
        weights.append(weight)
        fanned.append(found)
    graph = _Graph.of(len(files), sources, names, weights, fanned)

    personalization = _personalization(files, defined_in, idents, set(focus))
    file_rank = graph.pagerank(np.array([personalization[f] for f in files]))
    at = np.array([file_index[row["path"]] for row in definitions], dtype=np.int64)
    used = np.array([name_index.get(row["name"], -1) for row in definitions], dtype=np.int64)
    ranks = graph.definition_rank(file_rank, at, used) + file_rank[at] * _OWN_FILE_SHARE if len(at) else at

    entries = []
    for row, base in zip(definitions, ranks.tolist(), strict=True):
        name = row["name"]
        rank = base * (1 + _QUERY_WEIGHT * _match(name, idents)) if idents else base
        depth = row["qualified_name"].count(".") if row["kind"] in ("method", "function") else 0
        text = row["signature"] or f"{row['kind']} {name}"
        entries.append(MapEntry(row["path"], row["line"], min(depth, 3), text[:_MAX_LINE], rank))
    entries.sort(key=lambda e: (-e.rank, e.path, e.line))
    return entries


@dataclass(frozen=True)
class _Graph:
    """Weighted edges "file `source` uses name `name`, which file `target` defines"."""

    files: int
    sources: np.ndarray
    targets: np.ndarray
    names: np.ndarray
    weights: np.ndarray

    @classmethod
    def of(cls, files: int, sources: list[int], names: list[int], weights: list[float],
           targets: list[np.ndarray]) -> _Graph:
        """The edges from each (source, name, weight) to each of its target files but itself."""
        import numpy as np
        counts = np.array([len(t) for t in targets], dtype=np.int64)
        flat = np.concatenate(targets) if targets else np.zeros(0, dtype=np.int64)
        source = np.repeat(np.array(sources, dtype=np.int64), counts)
        name = np.repeat(np.array(names, dtype=np.int64), counts)
        weight = np.repeat(np.array(weights, dtype=np.float64), counts)
        keep = flat != source
        return cls(files, source[keep], flat[keep], name[keep], weight[keep])

    @functools.cached_property
    def out_weight(self) -> np.ndarray:
        """Each file's total weight of outgoing edges (what PageRank and the definitions' shares divide by)."""
        import numpy as np
        return np.bincount(self.sources, weights=self.weights, minlength=self.files)

    def pagerank(self, personalization: np.ndarray) -> np.ndarray:
        """Personalized PageRank of the files (power iteration; dangling files give to everyone as the
        personalization says)."""
        import numpy as np
        out = self.out_weight
        dangling = out == 0
        share = self.weights / np.where(dangling, 1.0, out)[self.sources]
        rank = personalization.copy()
        for _ in range(_ITERATIONS):
            spread = np.bincount(self.targets, weights=rank[self.sources] * share, minlength=self.files)
            rank = (1 - _DAMPING + _DAMPING * rank[dangling].sum()) * personalization + _DAMPING * spread
        return rank

    def definition_rank(self, file_rank: np.ndarray, files: np.ndarray, names: np.ndarray) -> np.ndarray:
        """For each (defining file, name) asked, its share of its referrers' rank by how much they use it."""
        import numpy as np
        if not len(self.sources):
            return np.zeros(len(files))
        flow = file_rank[self.sources] * self.weights / self.out_weight[self.sources]
        width = int(max(self.names.max(), names.max())) + 2
        keys, inverse = np.unique(self.targets * width + self.names, return_inverse=True)
        totals = np.bincount(inverse, weights=flow)
        wanted = files * width + names
        at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        return np.where((keys[at] == wanted) & (names >= 0), totals[at], 0.0)


def render_entries(entries: list[MapEntry]) -> str:
    """The map text of chosen entries: files in rank order, definitions in line order under each."""
    by_file: dict[str, list[MapEntry]] = {}
    for entry in entries:
        by_file.setdefault(entry.path, []).append(entry)
    parts = []
    for path, items in by_file.items():
        lines = [f"{path}:"]
        lines += [f"{e.line:>5}│ {'  ' * e.depth}{e.text}" for e in sorted(items, key=lambda e: e.line)]
        parts.append("\n".join(lines))
    return "\n".join(parts) + ("\n" if parts else "")


def render_map(
    store: IndexStore,
    budget_tokens: int,
    count_tokens: TokenCounter,
    query: str | None = None,
    focus: Iterable[str] = (),
) -> str:
    """The largest ranked map whose `count_tokens` is at most `budget_tokens` (never over it)."""
    if budget_tokens <= 0:
        return ""
    entries = rank_definitions(store, query, focus)
    best = ""
    low, high = 1, len(entries)
    while low <= high:  # the largest prefix that fits; only texts that were counted are kept
        middle = (low + high) // 2
        text = render_entries(entries[:middle])
        if count_tokens(text) <= budget_tokens:
            best, low = text, middle + 1
        else:
            high = middle - 1
    return best


def estimate_tokens(text: str) -> int:
    """A conservative token estimate (one token per two bytes) for when no tokenizer is installed."""
    return -(-len(text.encode("utf-8")) // 2)


def _match(name: str, idents: set[str]) -> float:
    """How well a name matches the query's identifiers: 1 for the name itself, else the share of its words."""
    if not idents:
        return 0.0
    if name.lower() in idents:
        return 1.0
    words = split_identifier(name)
    return sum(w in idents for w in words) / len(words) if words else 0.0


def _query_identifiers(query: str | None) -> set[str]:
    if not query:
        return set()
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]{2,}", query)
    return {w.lower() for w in words} | {part for w in words for part in split_identifier(w) if len(part) > 2}


def _personalization(
    files: list[str], defined_in: dict[tuple[str, str], set[str]], idents: set[str], focus: set[str]
) -> dict[str, float]:
    weights = dict.fromkeys(files, 1.0)
    for path in focus & set(files):
        weights[path] += _FOCUS_WEIGHT
    if idents:
        for (_, name), paths in defined_in.items():
            score = _match(name, idents)
            if score:
                for path in paths:
                    weights[path] += _QUERY_WEIGHT * score
        for path in files:
            if idents & set(split_identifier(path)):
                weights[path] += _QUERY_WEIGHT
    total = sum(weights.values()) or 1.0
    return {path: w / total for path, w in weights.items()}
