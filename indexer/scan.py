"""Find the files of a repository worth indexing, honouring ignore rules and skipping junk."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from indexer.languages import language_for

VENDORED_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", ".venv", "venv", "build", "dist", "target", "__pycache__",
     ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox", ".idea", ".vscode", "site-packages"}
)
"""Folders never indexed: version control, dependencies, build output, caches."""

IGNORE_FILES = (".gitignore", ".tiercodeignore")
_BINARY_SNIFF = 8192


def is_binary(data: bytes) -> bool:
    """True when a file's first bytes hold a NUL, as git decides."""
    return b"\0" in data[:_BINARY_SNIFF]


@dataclass(frozen=True)
class ScanOptions:
    """What a scan skips."""

    max_file_bytes: int = 1024 * 1024
    """Files larger than this are skipped."""


@dataclass(frozen=True)
class Candidate:
    """A source file to index."""

    path: str
    """Repo-relative, with `/` separators."""
    absolute: Path
    size: int
    mtime_ns: int
    language: str


@dataclass
class ScanResult:
    """Files to index, and files skipped with the reason for each."""

    files: list[Candidate] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def scan(root: Path, options: ScanOptions | None = None) -> ScanResult:
    """Walk `root` without following symlinks, honouring nested ignore files."""
    options = options or ScanOptions()
    result = ScanResult()
    _walk(root, "", [], options, result)
    result.files.sort(key=lambda c: c.path)
    return result


def _walk(
    directory: Path,
    prefix: str,
    specs: list[tuple[str, pathspec.PathSpec]],
    options: ScanOptions,
    result: ScanResult,
) -> None:
    specs = specs + _ignore_specs(directory, prefix)
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        result.skipped[prefix or "."] = f"unreadable folder ({exc.strerror})"
        return
    for entry in entries:
        rel = f"{prefix}{entry.name}"
        try:
            rel.encode("utf-8")
            info = entry.stat(follow_symlinks=False)
        except UnicodeEncodeError:
            result.skipped[rel.encode("utf-8", "replace").decode()] = "file name is not valid UTF-8"
            continue
        except OSError:
            result.skipped[rel] = "unreadable"
            continue
        if stat.S_ISLNK(info.st_mode) and os.path.isdir(entry.path):
            if entry.name not in VENDORED_DIRS and not _ignored(rel + "/", specs):
                result.skipped[rel] = "symlink (not followed)"
            continue
        if stat.S_ISDIR(info.st_mode):
            if entry.name not in VENDORED_DIRS and not _ignored(rel + "/", specs):
                _walk(Path(entry.path), rel + "/", specs, options, result)
            continue
        verdict = _classify(Path(entry.path), rel, info, specs, options)
        if isinstance(verdict, Candidate):
            result.files.append(verdict)
        elif verdict is not None:
            result.skipped[rel] = verdict


def check_file(root: Path, rel: str, options: ScanOptions | None = None) -> Candidate | str | None:
    """Classify one repo-relative path as a scan would.

    Returns the candidate when it is indexed, the reason when it is skipped, or None when the index
    does not cover it (gone, ignored, in a vendored folder, or not a supported language).
    """
    options = options or ScanOptions()
    parts = rel.split("/")
    specs: list[tuple[str, pathspec.PathSpec]] = []
    directory, prefix = root, ""
    for part in parts[:-1]:
        specs += _ignore_specs(directory, prefix)
        directory, prefix = directory / part, f"{prefix}{part}/"
        if part in VENDORED_DIRS or _ignored(prefix, specs) or directory.is_symlink():
            return None
    specs += _ignore_specs(directory, prefix)
    path = directory / parts[-1]
    try:
        info = path.lstat()
    except OSError:
        return None
    return _classify(path, rel, info, specs, options)


def _classify(
    path: Path, rel: str, info: os.stat_result, specs: list[tuple[str, pathspec.PathSpec]], options: ScanOptions
) -> Candidate | str | None:
    language = language_for(rel)
    if language is None or _ignored(rel, specs):
        return None
    if stat.S_ISLNK(info.st_mode):
        return "symlink (not followed)"
    if not stat.S_ISREG(info.st_mode):
        return None
    if info.st_size > options.max_file_bytes:
        return f"too large ({info.st_size} bytes)"
    return Candidate(rel, path, info.st_size, info.st_mtime_ns, language.name)


def _ignore_specs(directory: Path, prefix: str) -> list[tuple[str, pathspec.PathSpec]]:
    specs = []
    for name in IGNORE_FILES:
        try:
            lines = (directory / name).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        specs.append((prefix, pathspec.GitIgnoreSpec.from_lines(lines)))
    return specs


def _ignored(rel: str, specs: list[tuple[str, pathspec.PathSpec]]) -> bool:
    ignored = False
    for prefix, spec in specs:
        if rel.startswith(prefix):
            result = spec.check_file(rel[len(prefix):])
            if result.include is not None:
                ignored = result.include
    return ignored
