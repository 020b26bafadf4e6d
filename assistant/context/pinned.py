"""Pinned files: whole files the user asks to send with every question (`ask --file`, the TUI's `/add`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import UsageError

_MAX_PINNED_BYTES = 512 * 1024
"""A file larger than this is not pinned: no tier's context holds it."""


@dataclass
class PinnedFiles:
    """The files pinned in one repository, in the order pinned, as paths relative to its root."""

    repo: Path
    paths: list[str] = field(default_factory=list)

    def add(self, path: str | Path) -> str:
        """Pin a file (a path relative to the current folder, or absolute) inside the repository; UsageError
        saying what to do when it is not one. Returns its repository path."""
        root = self.repo.resolve()
        given = Path(path).expanduser()
        candidates = [given] if given.is_absolute() else [Path.cwd() / given, root / given]  # or from the root
        resolved = next((c.resolve() for c in candidates if c.is_file()), None) or next(
            (c.resolve() for c in candidates if c.resolve().is_relative_to(root)), candidates[0].resolve())
        if not resolved.is_relative_to(root):
            raise UsageError(f"{path} is outside the repository {root}; pin files inside it")
        if not resolved.is_file():
            raise UsageError(f"{path} is not a file in the repository; give a file's path")
        if resolved.stat().st_size > _MAX_PINNED_BYTES:
            raise UsageError(f"{path} is over {_MAX_PINNED_BYTES // 1024} KiB; pin a smaller file or ask about it")
        with resolved.open("rb") as head:
            if b"\0" in head.read(8192):  # as git tells a binary file
                raise UsageError(f"{path} is a binary file, which no model reads as text; pin a text file")
        relative = resolved.relative_to(root).as_posix()
        if relative not in self.paths:
            self.paths.append(relative)
        return relative

    def drop(self, path: str | Path) -> str:
        """Unpin a file; UsageError when it is not pinned."""
        for pinned in self.paths:
            if pinned == Path(path).as_posix() or (self.repo.resolve() / pinned) == (Path.cwd() / path).resolve():
                self.paths.remove(pinned)
                return pinned
        raise UsageError(f"{path} is not pinned (pinned: {', '.join(self.paths) or 'none'})")

    def texts(self) -> list[tuple[str, str]]:
        """Each pinned file's path and its text as it is on disk now (a file gone since is left out)."""
        found = []
        for path in self.paths:
            try:
                found.append((path, (self.repo / path).read_text(encoding="utf-8", errors="replace")))
            except OSError:
                continue
        return found
