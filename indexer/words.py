"""Text as the full-text tables hold it: identifiers split into words, a file's words, each definition's
body words, the stopwords a question drops, and the FTS5 query for any of some terms."""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from indexer.parse import ParsedFile


STOPWORDS = frozenset(
    [
        "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how", "i", "in",
        "is", "it", "its", "me", "my", "of", "on", "or", "so", "the", "this", "that", "to", "was", "what", "when",
        "where", "which", "who", "why", "will", "with", "you", "your", "code", "file", "function", "class",
        "method", "not", "but", "if", "we", "our", "should", "would", "there", "have", "has", "any", "into",
        "than", "then", "just", "like", "need", "want", "please", "pls", "about", "explain", "doesn", "isn",
    ]
)
"""Words of a question that say nothing about which code it is about (left out of text search)."""
_MAX_BODY_WORDS = 64
"""Distinct words kept of one definition's body: enough for a function, bounded for a huge one."""

_WORD_BOUNDARY = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def split_identifier(name: str) -> list[str]:
    """Split `parseHTTPRequest` or `parse_http_request` into lower-case words."""
    return [w.lower() for w in _WORD_BOUNDARY.findall(name)]


_MAX_FILE_BYTES_FOR_TEXT = 512 * 1024
"""A file's first bytes kept for whole-file BM25: a huge file's rest adds length, not meaning."""
_TEXT_WORD = re.compile(rb"[^\W_]+")


def file_words(data: bytes) -> str:
    """A file's words as the full-text table tokenizes them (letters and digits; `_` and punctuation
    separate), without the punctuation and spacing that would only take room."""
    return b" ".join(_TEXT_WORD.findall(data[:_MAX_FILE_BYTES_FOR_TEXT])).decode("utf-8", "replace")


def body_words(parsed: ParsedFile) -> tuple[str, ...]:
    """The words of the names referenced inside each definition, given to the innermost one only."""
    definitions = parsed.definitions
    order = sorted(range(len(definitions)), key=lambda i: (definitions[i].line, -definitions[i].end_line))
    parent: dict[int, int | None] = {}
    stack: list[int] = []
    for i in order:
        while stack and definitions[stack[-1]].end_line < definitions[i].end_line:
            stack.pop()
        parent[i] = stack[-1] if stack else None
        stack.append(i)
    starts = [definitions[i].line for i in order]
    names: list[dict[str, None]] = [{} for _ in definitions]
    for ref in parsed.references:
        at = bisect.bisect_right(starts, ref.line) - 1
        owner: int | None = order[at] if at >= 0 else None
        while owner is not None and definitions[owner].end_line < ref.line:
            owner = parent[owner]
        if owner is not None:
            names[owner][ref.name] = None
    split = functools.lru_cache(maxsize=None)(split_identifier)
    return tuple(" ".join(list(dict.fromkeys(w for name in used for w in split(name)))[:_MAX_BODY_WORDS])
                 for used in names)


def match_any(terms: Sequence[str]) -> str:
    """An FTS5 query for any of `terms` (ASCII words only, as the tables hold them), repeats kept: BM25
    scores each phrase of a query, so a term given twice weighs twice."""
    return " OR ".join(f'"{t}"' for t in (t.lower() for t in terms) if t.isascii() and t.isalnum())
