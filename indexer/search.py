"""Search: exact symbol hits, BM25 over the FTS5 tables and dense vectors, ranked together by `indexer.localize`."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from indexer.clues import read_question
from indexer.embed import Embedder, VectorIndex, chunk_rows
from indexer.localize import Localization, localize
from indexer.store import IndexStore, Symbol

_CANDIDATES = 50


@dataclass(frozen=True)
class Hit:
    """One search result."""

    path: str
    line: int
    symbol: str
    score: float


def exact_hits(store: IndexStore, query: str) -> list[Hit]:
    """Definitions whose name or qualified name is an identifier of the query (`indexer.clues`): a name
    shaped like code (`parse_header`, `HttpClient`, `os.path`, `fit(`), backticked, a capitalized word of
    three letters or more past a sentence's start spelled exactly as defined ("explain the Account
    class"), or the whole query when it is one name. Plain words of a sentence ("how to read a file") and
    short capitalized words of prose ("I", "A") are not names: a function `read` or a class `A` is not
    what they ask for."""
    clues = read_question(query)
    hits = [hit for name in clues.names for hit in _exact(store, name, case_exact=False)]
    hits += [hit for word in clues.capitalized for hit in _exact(store, word, case_exact=True)]
    return list(dict.fromkeys(hits))


def _exact(store: IndexStore, word: str, case_exact: bool) -> list[Hit]:
    return [Hit(s.path, s.line, s.qualified_name, 1.0) for s in store.definitions(word)
            if not case_exact or word in (s.name, s.qualified_name)]


def bm25_hits(store: IndexStore, query: str, k: int = _CANDIDATES) -> list[Hit]:
    """BM25 over names (split into words), signatures, docstrings, paths and the names bodies use."""
    return [Hit(s.path, s.line, s.qualified_name, score) for s, score in store.search_text(query, limit=k)]


def dense_hits(
    store: IndexStore, query: str, vectors: VectorIndex, embedder: Embedder, k: int = _CANDIDATES
) -> list[Hit]:
    """Nearest chunks to the query's embedding."""
    if vectors.size == 0:
        return []
    found = vectors.search(embedder.embed_query(query), k)
    rows = chunk_rows(store, [i for i, _ in found])
    return [Hit(rows[i][0], rows[i][2], rows[i][1], score) for i, score in found if i in rows]


def locate(
    store: IndexStore, query: str, k: int = 20, vectors: VectorIndex | None = None, embedder: Embedder | None = None,
    root: Path | None = None,
) -> Localization:
    """The files and definitions a query is about, as `indexer.localize` ranks them (traceback frames, named
    files, quoted error messages, the names it uses, whole-file and per-definition BM25, where files live),
    with the nearest definitions by embedding fused in when vectors and an embedder are given; `root`, the
    repository's folder, lets quoted text lead to the definitions around it."""
    dense: list[tuple[str, int, str]] = []
    if vectors is not None and embedder is not None and vectors.size > 0:
        dense = [(h.path, h.line, h.symbol) for h in dense_hits(store, query, vectors, embedder)]
    return localize(store, query, k=k, dense=dense, root=root)


def hybrid_search(
    store: IndexStore, query: str, k: int = 10, vectors: VectorIndex | None = None, embedder: Embedder | None = None,
    root: Path | None = None,
) -> list[Hit]:
    """The definitions a query is about, best first (`locate`)."""
    found = locate(store, query, max(k, 20), vectors, embedder, root)
    return [Hit(s.path, s.line, s.qualified_name, score) for s, score in found.definitions[:k]]


def fuzzy_definitions(store: IndexStore, name: str, n: int = 10) -> list[Symbol]:
    """Definitions whose names are close to `name` (typos, case, partial words), best first."""
    short = name.rsplit(".", 1)[-1]
    names = store.symbol_names()
    lowered: dict[str, list[str]] = {}
    for candidate in names:
        lowered.setdefault(candidate.lower(), []).append(candidate)
    close = difflib.get_close_matches(short.lower(), list(lowered), n=n, cutoff=0.6)
    contains = [c for c in lowered if short.lower() in c and c not in close] if len(short) >= 3 else []
    result: list[Symbol] = []
    for key in [*close, *sorted(contains, key=len)][:n]:
        for candidate in lowered[key]:
            result += store.definitions(candidate)
    return result[: n * 2]
