"""A repository file's lines as the index's readers see them (undecodable bytes replaced)."""

from __future__ import annotations

from pathlib import Path


def read_lines(root: Path, path: str) -> list[str]:
    """The lines of `path` under `root`; none when it cannot be read (deleted or moved since it was indexed)."""
    try:
        return (root / path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
