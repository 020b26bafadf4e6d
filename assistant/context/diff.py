"""Diff-only context: the changed hunks and the functions that enclose them, instead of whole files."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from assistant.context.builder import definition_text
from assistant.errors import UsageError
from indexer.store import IndexStore, Symbol

_FILE = re.compile(r"^\+\+\+ (?:b/)?(?P<path>.+?)\s*$")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(?P<start>\d+)(?:,(?P<count>\d+))? @@")
_ENCLOSING_KINDS = frozenset({"function", "method", "class"})


@dataclass(frozen=True)
class Hunk:
    """One changed region: its file, where it lands in the new version, and its diff lines."""

    path: str
    start: int
    count: int
    text: str


def looks_like_diff(text: str) -> bool:
    """Whether `text` is a unified diff (e.g. piped from `git diff`)."""
    return bool(re.search(r"^\+\+\+ ", text, re.M) and re.search(r"^@@ -\d", text, re.M))


def parse_diff(text: str) -> list[Hunk]:
    """The hunks of a unified diff; deleted files have no new version and are left out."""
    hunks: list[Hunk] = []
    path: str | None = None
    current: tuple[int, int, list[str]] | None = None

    def close() -> None:
        if path is not None and current is not None:
            hunks.append(Hunk(path, current[0], current[1], "\n".join(current[2])))

    for line in text.splitlines():
        if line.startswith("+++ "):
            close()
            current = None
            found = _FILE.match(line)
            path = None if found is None or found["path"] == "/dev/null" else found["path"]
        elif (header := _HUNK.match(line)) is not None:
            close()
            count = int(header["count"]) if header["count"] is not None else 1
            current = (int(header["start"]), count, [line])
        elif current is not None and line[:1] in (" ", "+", "-", "\\"):
            current[2].append(line)
        elif line.startswith("diff "):
            close()
            current, path = None, None
    close()
    return hunks


def git_diff(repo: Path, base: str = "HEAD") -> str:
    """`git diff BASE` of the working tree (staged and unstaged changes); UsageError outside git."""
    try:
        done = subprocess.run(
            ["git", "diff", "--no-color", "--unified=3", base, "--"], cwd=repo, capture_output=True, text=True,
            timeout=60, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"--diff could not run git in {repo} ({exc}); is git installed?") from None
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["git diff failed"])[0]
        raise UsageError(f"--diff needs a git repository with a commit to compare against: {first}")
    return done.stdout


def diff_context(diff: str, store: IndexStore, repo: Path) -> str:
    """The hunks as fenced diffs, each followed once by the current text of its enclosing definition."""
    blocks: list[str] = []
    shown: set[tuple[str, int]] = set()
    for hunk in parse_diff(diff):
        blocks.append(f"### {hunk.path} (changed lines {hunk.start}-{hunk.start + max(hunk.count, 1) - 1})\n"
                      f"```diff\n{hunk.text}\n```")
        symbol = _enclosing(store, hunk)
        if symbol is None or (symbol.path, symbol.line) in shown:
            continue
        shown.add((symbol.path, symbol.line))
        blocks.append(f"### enclosing {symbol.kind} {symbol.qualified_name} ({symbol.path}:{symbol.line}), "
                      f"as it is now\n```\n{definition_text(repo, symbol)}\n```")
    return "\n\n".join(blocks)


def _enclosing(store: IndexStore, hunk: Hunk) -> Symbol | None:
    """The innermost function, method or class containing the hunk's first changed line."""
    first = hunk.start
    for offset, line in enumerate(hunk.text.splitlines()[1:]):
        if line.startswith(("+", "-")):
            first = hunk.start + offset
            break
    around = [s for s in store.outline(hunk.path)
              if s.kind in _ENCLOSING_KINDS and s.line <= first <= s.end_line]
    return max(around, key=lambda s: s.line, default=None)
