"""Project instructions: the repository's AGENTS.md (or CLAUDE.md, CONVENTIONS.md, .tiercode/instructions.md),
text for the models in the stable prefix of every request. They are never settings."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_FILES = ("AGENTS.md", "CLAUDE.md", "CONVENTIONS.md", ".tiercode/instructions.md")
"""Where a repository's instructions are looked for, first found wins."""
_MAX_BYTES = 256 * 1024
"""Read no more of an instructions file than this (a cap in tokens applies after)."""


@dataclass(frozen=True)
class Instructions:
    """The instructions a repository gives, as they will be sent."""

    path: str
    """The file, relative to the repository root."""
    text: str
    """What is sent (cut to the cap when `cut`)."""
    size_bytes: int
    """The whole file's size."""
    tokens: int
    """What `text` costs in the tokens of the counter it was fitted with."""
    cut: bool = False

    def block(self) -> str:
        """The system-prompt block that carries them."""
        cut = "\n[... cut to fit; the rest of the file was not sent]" if self.cut else ""
        return f"Project instructions from {self.path} (follow them):\n{self.text}{cut}"

    def describe(self) -> str:
        """One line for `tiercode config` and `/context`."""
        cut = f", cut to {self.tokens} tokens" if self.cut else f", about {self.tokens} tokens"
        return f"{self.path} ({self.size_bytes:,} bytes{cut})"


def find_instructions(repo: Path, names: Sequence[str] = DEFAULT_FILES) -> Path | None:
    """The first instructions file of `names` at the repository root that is a regular file inside it (a link
    out of the repository is not followed)."""
    root = repo.resolve()
    for name in names:
        candidate = root / name
        try:
            if candidate.is_file() and candidate.resolve().is_relative_to(root):
                return candidate
        except OSError:
            continue
    return None


def outside_links(repo: Path, names: Sequence[str] = DEFAULT_FILES) -> list[str]:
    """The instructions files of `names` at the root that link out of the repository (not read: a repository's
    files never reach outside it), for `tiercode config` to name."""
    root = repo.resolve()
    linked = []
    for name in names:
        with contextlib.suppress(OSError):
            if (root / name).is_symlink() and not (root / name).resolve().is_relative_to(root):
                linked.append(name)
    return linked


def load_instructions(
    repo: Path, names: Sequence[str], cap_tokens: int, count_tokens: Callable[[str], int],
) -> Instructions | None:
    """The repository's instructions within `cap_tokens` (cut at a line when longer); None when there are none
    or the cap is 0."""
    found = find_instructions(repo, names)
    if found is None or cap_tokens <= 0:
        return None
    try:
        size = found.stat().st_size
        with found.open("rb") as handle:
            text = handle.read(_MAX_BYTES).decode("utf-8", errors="replace").strip()
    except OSError:
        return None
    if not text:
        return None
    path = found.relative_to(repo.resolve()).as_posix()
    tokens = count_tokens(text)
    if tokens <= cap_tokens and size <= _MAX_BYTES:
        return Instructions(path, text, size, tokens)
    kept = _fit_lines(text.splitlines(), cap_tokens, count_tokens)
    return Instructions(path, kept, size, count_tokens(kept), cut=True)


def _fit_lines(lines: list[str], cap_tokens: int, count_tokens: Callable[[str], int]) -> str:
    """The longest run of first lines that fits `cap_tokens` (found by halving, so long files count few times)."""
    low, high = 0, len(lines)
    while low < high:
        middle = (low + high + 1) // 2
        if count_tokens("\n".join(lines[:middle])) <= cap_tokens:
            low = middle
        else:
            high = middle - 1
    return "\n".join(lines[:low])
