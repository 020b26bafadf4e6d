"""Bring the index up to date with the files on disk: parse what changed, forget what is gone."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.scan import Candidate, ScanOptions, check_file, is_binary, scan
from indexer.sqlitedb import is_corruption
from indexer.store import FileRows, FileState, IndexStore

ProgressCallback = Callable[[int, int], None]
"""Called with (files done, files to do) as a build goes."""

PARSER_VERSION = "9"
"""Bumped when parsing changes what it extracts; an index parsed by another version is parsed again."""

_PARALLEL_THRESHOLD = 64
"""Below this many files to parse, a process pool costs more than it saves."""

_BULK_LOAD_THRESHOLD = 512
"""Files to parse into an empty index above which its lookup indexes are made once at the end."""

_WRITE_BATCH = 128
"""Files a build handles per transaction (their symbols become queryable together)."""

_CHUNK = 16
"""Files a worker takes at a time (fewer round trips than one by one)."""

_CHUNKS_PER_WORKER = 16
"""Chunks queued per worker: enough to keep every worker busy, few enough to bound memory."""


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

    Files are read, hashed and parsed in worker processes, a bounded window at a time, so a build's
    memory does not grow with the repository. `on_scanned` sees the report once the scan is done (files
    found, skipped), before parsing.
    """
    started = time.perf_counter()
    found = scan(root, options)
    report = BuildReport(scanned=len(found.files), skipped=dict(found.skipped))
    known = store.file_states()
    if store.get_meta("parser_version") != PARSER_VERSION:
        known = {path: FileState(-1, -1, "") for path in known}  # parsed by an older parser: parse again
    changed: list[Candidate] = []
    jobs: list[_Job] = []
    for candidate in found.files:
        old = known.get(candidate.path)
        if old and old.size == candidate.size and old.mtime_ns == candidate.mtime_ns:
            report.unchanged += 1
            continue
        changed.append(candidate)
        jobs.append(_Job(candidate.language, str(candidate.absolute), old.hash if old else ""))

    total = len(jobs)
    if on_scanned:
        on_scanned(report)
    if on_progress:
        on_progress(0, total)
    with store.bulk_load() if total >= _BULK_LOAD_THRESHOLD else contextlib.nullcontext():
        _store_all(store, changed, _run_all(jobs, workers), report, on_progress)
    present = {c.path for c in found.files} - set(report.skipped)
    gone = [path for path in known if path not in present]
    store.remove_files(gone)
    report.removed = len(gone)
    store.set_skipped(report.skipped)
    store.set_meta("parser_version", PARSER_VERSION)
    report.seconds = time.perf_counter() - started
    return report


def _store_all(store: IndexStore, changed: list[Candidate], outcomes: Iterator[_Outcome], report: BuildReport,
               on_progress: ProgressCallback | None) -> None:
    """Write each file's outcome as it comes, a transaction per batch of files."""
    total = len(changed)
    batch: list[tuple[str, FileState, FileRows]] = []
    touched: list[tuple[str, FileState]] = []
    for done, (candidate, outcome) in enumerate(zip(changed, outcomes, strict=True), start=1):
        state = FileState(candidate.size, candidate.mtime_ns, outcome.hash)
        if outcome.skipped:
            report.skipped[candidate.path] = outcome.skipped
        elif outcome.rows is None:
            touched.append((candidate.path, state))
            report.unchanged += 1
        else:
            batch.append((candidate.path, state, outcome.rows))
            report.parsed += 1
        if done % _WRITE_BATCH == 0 or done == total:
            store.put_files(batch)
            store.touch_files(touched)
            batch.clear()
            touched.clear()
            if on_progress:
                on_progress(done, total)


def build_or_rebuild(
    store: IndexStore, root: Path, notify: Callable[[str], None], **build_options: Any
) -> tuple[IndexStore, BuildReport]:
    """`build_index`, and the store it built; an index found damaged on the way (a disk or copy gone
    wrong) is thrown away, after `notify` is told why, and built anew: it is only a cache."""
    try:
        return store, build_index(store, root, **build_options)
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise
        fresh = store.discard(str(exc), notify)
        try:
            return fresh, build_index(fresh, root, **build_options)
        except BaseException:
            fresh.close()
            raise


def update_file(store: IndexStore, root: Path, path: str, options: ScanOptions | None = None) -> bool:
    """Re-index one file after an edit, or forget it when it is gone; True when the index changed."""
    verdict = check_file(root, path, options)
    old = store.file_state(path)
    if isinstance(verdict, Candidate):
        outcome = _index_one(_Job(verdict.language, str(verdict.absolute), old.hash if old else ""))
        state = FileState(verdict.size, verdict.mtime_ns, outcome.hash)
        if not outcome.skipped:
            if outcome.rows is None:  # same content, new mtime
                store.touch_files([(path, state)])
                return False
            store.put_files([(path, state, outcome.rows)])
            return True
        verdict = outcome.skipped
    store.remove_files([path])  # its rows, or the skipped entry of a file that was never indexed
    if isinstance(verdict, str):
        store.add_skipped(path, verdict)
    return old is not None


@dataclass(frozen=True)
class _Job:
    """One file for a worker: read, hash, and parse it unless its content is what the index has."""

    language: str
    absolute: str
    old_hash: str
    """The content hash the index holds for the file; empty when it holds none (or must parse again)."""


@dataclass(frozen=True)
class _Outcome:
    """What a worker made of one file."""

    hash: str = ""
    rows: FileRows | None = None
    """The file's rows; None when its content is unchanged (or it was skipped)."""
    skipped: str = ""
    """Why the file is not indexed (unreadable, binary, could not be parsed); empty when it is."""


def _index_one(job: _Job) -> _Outcome:
    try:
        data = Path(job.absolute).read_bytes()
    except OSError as exc:
        return _Outcome(skipped=f"unreadable ({exc.strerror or exc})")
    if is_binary(data):
        return _Outcome(skipped="binary")
    digest = content_hash(data)
    if digest == job.old_hash:
        return _Outcome(hash=digest)
    rows = _parse_one(job.language, data)
    return _Outcome(hash=digest, rows=rows, skipped="" if rows is not None else "could not be parsed")


def _index_chunk(jobs: list[_Job]) -> list[_Outcome]:
    return [_index_one(job) for job in jobs]


def _parse_one(language: str, data: bytes) -> FileRows | None:
    """Parse one file into the rows the store keeps; None when the parser itself fails (nothing may crash
    a build)."""
    from indexer.parse import parse_source  # the parser loads only when a file changed

    try:
        return FileRows.of(parse_source(language, data), data)
    except Exception:  # a grammar or query bug must cost one file, not the build
        return None


def _run_all(jobs: list[_Job], workers: int | None) -> Iterator[_Outcome]:
    """Each job's outcome, in order; in a process pool with a bounded number of chunks in flight."""
    workers = workers or os.cpu_count() or 1
    if len(jobs) < _PARALLEL_THRESHOLD or workers == 1:
        yield from map(_index_one, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        in_flight: deque[Future[list[_Outcome]]] = deque()
        try:
            for at in range(0, len(jobs), _CHUNK):
                in_flight.append(pool.submit(_index_chunk, jobs[at : at + _CHUNK]))
                if len(in_flight) >= workers * _CHUNKS_PER_WORKER:
                    yield from in_flight.popleft().result()
            while in_flight:
                yield from in_flight.popleft().result()
        finally:  # the consumer stopped (an error, Ctrl-C): drop the queued chunks instead of parsing them
            for future in in_flight:
                future.cancel()
