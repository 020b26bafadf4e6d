"""A rerank of the best files' definitions by their own code: BM25 of a question's words over the words of
each definition's lines as written (attributes, strings, keyword arguments and comments included, which
the index's full-text tables do not hold), so `'Line3D' object has no attribute '_verts3d'` points at the
method that sets `self._verts3d`."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from indexer.source import read_lines
from indexer.store import Symbol

_WORD = re.compile(r"[A-Za-z0-9]+")
K1 = 1.2
B = 0.75


def own_lines(symbols: Sequence[Symbol]) -> dict[Symbol, list[int]]:
    """Each definition's own lines: its span without the spans of the definitions nested in it (a class
    keeps its header, docstring and attributes; its methods are their own)."""
    owner: dict[int, Symbol] = {}
    for symbol in sorted(symbols, key=lambda s: (s.line, -s.end_line)):  # outer first, inner overwrite
        for number in range(symbol.line, symbol.end_line + 1):
            owner[number] = symbol
    owned: dict[Symbol, list[int]] = {s: [] for s in symbols}
    for number, symbol in owner.items():
        owned[symbol].append(number)
    return owned


def rank_by_code(root: Path, symbols: Sequence[Symbol], terms: Sequence[str], limit: int = 50) -> list[Symbol]:
    """`symbols` (the definitions of a few files) ordered by BM25 of `terms` (repeats weigh more) over the
    words of their own lines; those no term matches are left out."""
    query = Counter(t.lower() for t in terms)
    if not query:
        return []
    by_file: dict[str, list[Symbol]] = {}
    for symbol in symbols:
        by_file.setdefault(symbol.path, []).append(symbol)
    documents: dict[Symbol, Counter[str]] = {}
    for path, defined in by_file.items():
        if not (lines := read_lines(root, path)):
            continue
        for symbol, numbers in own_lines(defined).items():
            text = " ".join(lines[n - 1] for n in numbers if n <= len(lines))
            documents[symbol] = Counter(w.lower() for w in _WORD.findall(text))
    return _bm25(documents, query)[:limit]


def _bm25(documents: dict[Symbol, Counter[str]], query: Counter[str]) -> list[Symbol]:
    """The documents that hold a query word, best BM25 score first."""
    if not documents:
        return []
    average = sum(sum(d.values()) for d in documents.values()) / len(documents) or 1.0
    holding = {term: sum(1 for d in documents.values() if term in d) for term in query}
    scores: dict[Symbol, float] = {}
    for symbol, words in documents.items():
        length = sum(words.values())
        score = 0.0
        for term, weight in query.items():
            if f := words.get(term):
                idf = math.log(1 + (len(documents) - holding[term] + 0.5) / (holding[term] + 0.5))
                score += weight * idf * f * (K1 + 1) / (f + K1 * (1 - B + B * length / average))
        if score > 0:
            scores[symbol] = score
    return sorted(scores, key=lambda s: (-scores[s], s.path, s.line))
