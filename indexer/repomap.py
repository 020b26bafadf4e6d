"""A ranked map of the repository: PageRank over the definition/reference graph, within a token budget."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from indexer.store import IndexStore, split_identifier

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
    to the definitions its referrers use.
    """
    conn = store.conn
    definitions = conn.execute(
        "SELECT f.path, f.language, s.name, s.qualified_name, s.line, s.signature, s.kind FROM symbols s"
        " JOIN files f ON f.id = s.file_id"
    ).fetchall()
    defined_in: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in definitions:
        defined_in[(_FAMILY.get(row["language"], row["language"]), row["name"])].add(row["path"])
    idents = _query_identifiers(query)
    focus_set = set(focus)

    edges: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    rows = conn.execute(
        "SELECT f.path, f.language, r.name, COUNT(*) AS n FROM refs r JOIN files f ON f.id = r.file_id"
        " GROUP BY r.file_id, r.name"
    )
    for row in rows:
        targets = defined_in.get((_FAMILY.get(row["language"], row["language"]), row["name"]))
        if not targets:
            continue
        weight = math.sqrt(row["n"]) / len(targets)
        if row["name"].lower() in idents:
            weight *= _QUERY_WEIGHT
        if row["name"].startswith("_"):
            weight *= 0.1
        for target in targets:
            if target != row["path"]:
                edges[(row["path"], target)][row["name"]] += weight

    files = sorted(store.paths())
    personalization = _personalization(files, defined_in, idents, focus_set)
    file_rank = _pagerank(files, edges, personalization)

    out_weight: dict[str, float] = defaultdict(float)
    for (source, _), names in edges.items():
        out_weight[source] += sum(names.values())
    def_rank: dict[tuple[str, str], float] = defaultdict(float)
    for (source, target), names in edges.items():
        for name, weight in names.items():
            def_rank[(target, name)] += file_rank[source] * weight / out_weight[source]

    entries = []
    for row in definitions:
        path, name = row["path"], row["name"]
        rank = def_rank.get((path, name), 0.0) + file_rank.get(path, 0.0) * _OWN_FILE_SHARE
        rank *= 1 + _QUERY_WEIGHT * _match(name, idents)
        depth = row["qualified_name"].count(".") if row["kind"] in ("method", "function") else 0
        text = row["signature"] or f"{row['kind']} {name}"
        entries.append(MapEntry(path, row["line"], min(depth, 3), text[:_MAX_LINE], rank))
    entries.sort(key=lambda e: (-e.rank, e.path, e.line))
    return entries


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


def _pagerank(
    files: list[str], edges: dict[tuple[str, str], dict[str, float]], personalization: dict[str, float]
) -> dict[str, float]:
    outgoing: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for (source, target), names in edges.items():
        outgoing[source].append((target, sum(names.values())))
    totals = {source: sum(w for _, w in targets) for source, targets in outgoing.items()}
    rank = dict(personalization)
    for _ in range(_ITERATIONS):
        dangling = sum(rank[f] for f in files if f not in outgoing)
        new = {f: (1 - _DAMPING + _DAMPING * dangling) * personalization[f] for f in files}
        for source, targets in outgoing.items():
            share = _DAMPING * rank[source] / totals[source]
            for target, weight in targets:
                new[target] += share * weight
        rank = new
    return rank
