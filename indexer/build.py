"""Bring the index up to date with the files on disk: parse what changed, forget what is gone."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from indexer.parse import parse_source
from indexer.scan import Candidate, ScanOptions, check_file, is_binary, scan
from indexer.store import FileRows, FileState, IndexStore

ProgressCallback = Callable[[int, int], None]
"""Called with (files done, files to do) as a build goes."""

PARSER_VERSION = "6"
"""Bumped when parsing changes what it extracts; an index parsed by another version is parsed again."""

_PARALLEL_THRESHOLD = 64
"""Below this many files to parse, a process pool costs more than it saves."""

_WRITE_BATCH = 128
"""Files stored per transaction during a build (their symbols become queryable together)."""


@dataclass
class BuildReport:
    """What one build did."""

    scanned: int = 0
    parsed: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def content_hash(data: bytes) -> str:
    """The hash that decides whether a file's content changed."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def build_index(
    store: IndexStore,
    root: Path,
    options: ScanOptions | None = None,
    on_progress: ProgressCallback | None = None,
    workers: int | None = None,
    on_scanned: Callable[[BuildReport], None] | None = None,
) -> BuildReport:
    """Index every changed file under `root`; unchanged files are skipped by size+mtime, then hash.

    `on_scanned` sees the report once the scan is done (files found, skipped), before parsing.
    """
    started = time.perf_counter()
    found = scan(root, options)
    report = BuildReport(scanned=len(found.files), skipped=dict(found.skipped))
    known = store.file_states()
    if store.get_meta("parser_version") != PARSER_VERSION:
        known = {path: FileState(-1, -1, "") for path in known}  # parsed by an older parser: parse again
    to_parse: list[tuple[Candidate, bytes, FileState]] = []
    for candidate in found.files:
        old = known.get(candidate.path)
        if old and old.size == candidate.size and old.mtime_ns == candidate.mtime_ns:
            report.unchanged += 1
            continue
        try:
            data = candidate.absolute.read_bytes()
        except OSError as exc:
            report.skipped[candidate.path] = f"unreadable ({exc.strerror or exc})"
            continue
        if is_binary(data):
            report.skipped[candidate.path] = "binary"
            continue
        state = FileState(candidate.size, candidate.mtime_ns, content_hash(data))
        if old and old.hash == state.hash:
            store.touch_file(candidate.path, state)
            report.unchanged += 1
            continue
        to_parse.append((candidate, data, state))

    total = len(to_parse)
    if on_scanned:
        on_scanned(report)
    if on_progress:
        on_progress(0, total)
    batch: list[tuple[str, FileState, FileRows]] = []
    for done, ((candidate, _, state), parsed) in enumerate(_parse_all(to_parse, workers), start=1):
        if parsed is None:
            report.skipped[candidate.path] = "could not be parsed"
        else:
            batch.append((candidate.path, state, parsed))
            report.parsed += 1
        if len(batch) >= _WRITE_BATCH or done == total:
            store.put_files(batch)
            batch.clear()
            if on_progress:
                on_progress(done, total)

    present = {c.path for c in found.files} - set(report.skipped)
    gone = [path for path in known if path not in present]
    store.remove_files(gone)
    report.removed = len(gone)
    store.set_skipped(report.skipped)
    store.set_meta("parser_version", PARSER_VERSION)
    report.seconds = time.perf_counter() - started
    return report


def update_file(store: IndexStore, root: Path, path: str, options: ScanOptions | None = None) -> bool:
    """Re-index one file after an edit, or forget it when it is gone; True when the index changed."""
    verdict = check_file(root, path, options)
    old = store.file_state(path)
    data = _read(verdict) if isinstance(verdict, Candidate) else None
    if isinstance(verdict, Candidate) and data is not None:
        if is_binary(data):
            verdict = "binary"
        else:
            state = FileState(verdict.size, verdict.mtime_ns, content_hash(data))
            if old is not None and old.hash == state.hash:
                store.touch_file(path, state)
                return False
            rows = _parse_one((verdict.language, data))
            if rows is not None:
                store.put_files([(path, state, rows)])
                return True
            verdict = "could not be parsed"
    if old is not None:
        store.remove_files([path])
    if isinstance(verdict, str):
        store.add_skipped(path, verdict)
    return old is not None


def _read(candidate: Candidate) -> bytes | None:
    try:
        return candidate.absolute.read_bytes()
    except OSError:
        return None


def _parse_one(item: tuple[str, bytes]) -> FileRows | None:
    """Parse one file into the rows the store keeps; None when the parser itself fails (nothing may crash
    a build)."""
    language, data = item
    try:
        return FileRows.of(parse_source(language, data))
    except Exception:  # a grammar or query bug must cost one file, not the build
        return None


def _parse_all(
    items: list[tuple[Candidate, bytes, FileState]], workers: int | None
) -> Iterator[tuple[tuple[Candidate, bytes, FileState], FileRows | None]]:
    jobs = [(c.language, data) for c, data, _ in items]
    workers = workers or os.cpu_count() or 1
    if len(items) < _PARALLEL_THRESHOLD or workers == 1:
        yield from zip(items, map(_parse_one, jobs), strict=True)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from zip(items, pool.map(_parse_one, jobs, chunksize=16), strict=True)
