"""Literal text search over the indexed files: `grep -rn` limited to what the index covers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LineHit:
    """One line that contains the searched text (1-based line, `/` separators)."""

    path: str
    line: int
    text: str


@dataclass(frozen=True)
class GrepResult:
    """The first hits of a search and how many there are in all."""

    hits: tuple[LineHit, ...]
    total: int
    files: int
    """How many files hold at least one hit."""


def smart_case(needle: str) -> bool:
    """Whether a search for `needle` ignores case: only when it has no capital letter (as ripgrep's
    `--smart-case`)."""
    return needle == needle.lower()


def grep(root: Path, paths: Iterable[str], needle: str, limit: int = 50) -> GrepResult:
    """Lines of the files at `paths` (relative to `root`) that contain `needle`, smart case; the first
    `limit` are kept, all are counted. Unreadable files are passed over."""
    ignore_case = smart_case(needle)
    wanted = (needle.lower() if ignore_case else needle).encode("utf-8")
    hits: list[LineHit] = []
    total = files = 0
    for path in paths:
        try:
            data = (root / path).read_bytes()
        except OSError:
            continue
        haystack = data.lower() if ignore_case else data
        if wanted not in haystack:  # most files: one scan in C, no line splitting
            continue
        files += 1
        lines = data.split(b"\n")
        for number, line in enumerate(haystack.split(b"\n") if ignore_case else lines, start=1):
            if wanted in line:
                total += 1
                if len(hits) < limit:
                    hits.append(LineHit(path, number, lines[number - 1].decode("utf-8", "replace").strip()))
    return GrepResult(tuple(hits), total, files)
