"""Where the code holds the text a bug report quotes: an error message or a quoted string searched as a
literal (`ValueError: Invalid vmin or vmax` finds the `raise ValueError("Invalid vmin or vmax")` line)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from indexer.source import read_lines
from indexer.store import STOPWORDS, IndexStore, Symbol

WINDOW = 3
"""Words in a row searched as one phrase: a message's formatted values ("Unrecognized QDP line: read serr
1 2") break it into pieces, and three words of a piece are still specific enough."""
MAX_FILES = 5
"""A phrase found in more files than this is common wording, not a message of one place."""
MAX_PHRASES = 40
"""Phrases searched per question at most (each is one full-text query)."""
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class LiteralHits:
    """Files holding the question's literals, best first, and the definitions around the lines holding
    them (when the repository's files can be read)."""

    files: tuple[str, ...]
    definitions: tuple[Symbol, ...]


def phrases(literal: str) -> list[tuple[str, ...]]:
    """The runs of `WINDOW` words of a literal (all of it when shorter) that are not stop words only."""
    words = [w.lower() for w in _WORD.findall(literal)]
    runs = [tuple(words[i : i + WINDOW]) for i in range(max(1, len(words) - WINDOW + 1))]
    return [run for run in dict.fromkeys(runs) if len(run) >= 2 and not all(w in STOPWORDS for w in run)]


def find_literals(store: IndexStore, literals: tuple[str, ...], root: Path | None = None) -> LiteralHits:
    """The files whose text holds the literals' phrases, scored by how many phrases each holds, a phrase
    counting less the more files hold it; with `root`, the definitions enclosing the lines that hold them."""
    scores: Counter[str] = Counter()
    found: list[tuple[str, tuple[str, ...]]] = []
    searched = 0
    for literal in literals:
        for run in phrases(literal):
            if searched >= MAX_PHRASES:
                break
            searched += 1
            files = store.files_with_phrase(run, limit=MAX_FILES + 1)
            if 0 < len(files) <= MAX_FILES:
                for path in files:
                    scores[path] += 1 / len(files)
                    found.append((path, run))
    ranked = tuple(path for path, _ in sorted(scores.items(), key=lambda item: (-item[1], item[0])))
    definitions = _enclosing_definitions(store, root, found, ranked) if root is not None else ()
    return LiteralHits(ranked, definitions)


def _enclosing_definitions(store: IndexStore, root: Path, found: list[tuple[str, tuple[str, ...]]],
                           ranked: tuple[str, ...]) -> tuple[Symbol, ...]:
    """The innermost definitions around the lines holding each phrase, the best file's first."""
    runs: dict[str, list[tuple[str, ...]]] = {}
    for path, run in found:
        runs.setdefault(path, []).append(run)
    symbols: dict[Symbol, None] = {}
    for path in ranked:
        patterns = [re.compile(r"(?<![^\W_])" + r"[\W_]+".join(map(re.escape, run)) + r"(?![^\W_])", re.IGNORECASE)
                    for run in runs[path]]
        for number, line in enumerate(read_lines(root, path), start=1):
            if any(p.search(line) for p in patterns) and (symbol := store.definition_at(path, number)):
                symbols[symbol] = None
    return tuple(symbols)
