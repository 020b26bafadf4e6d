"""The one owner of the index's life: opens the store, the embedder and the vectors, keeps them live (the
file watcher, background embedding) and shuts them down quickly and in order. Every face that keeps the
index live (`tiercode index --watch`, the TUI, an MCP server) uses it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from assistant.session import Session
from indexer.background import BackgroundVectors
from indexer.build import update_file
from indexer.store import IndexStore
from indexer.watch import IndexWatcher
from models.base import ModelError

ChangeCallback = Callable[[list[str]], None]
"""Called with the repo-relative paths whose index entries changed (from the watcher's thread)."""
ProgressCallback = Callable[[int, int], None]
"""Called with (files embedded, files to embed) of each background sync (from its thread)."""


@dataclass(frozen=True)
class IndexStatus:
    """What the live index holds now."""

    files: int
    symbols: int
    vectors: int | None
    """Chunks with a vector; None while no embedding runs."""
    embedding: bool
    """A background embedding is running or requested."""
    watching: bool
    last_updated: float | None
    """When (`time.time()`) the index last took a change: its opening, a watched edit or an `update`."""


class LiveIndex:
    """A session's index kept live: `open`, `start_watching`, `update`, `status`, `close`.

    Writes go through one lock, so an edit's update and the first build never write at once; the watcher
    and the background embedding run on threads of their own and `close` stops them without waiting for
    pending work (the next scan finds it)."""

    def __init__(
        self, session: Session, on_change: ChangeCallback | None = None, on_progress: ProgressCallback | None = None,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        """`on_notice` gets one-line notices (dense search off, no watching); the session's reporter by default."""
        self.session = session
        self._on_change = on_change
        self._on_progress = on_progress
        self._notice = on_notice or session.reporter.status
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._watcher: IndexWatcher | None = None
        self._background: BackgroundVectors | None = None
        self.last_updated: float | None = None

    def open(self) -> IndexStore:
        """The index, opened and brought up to date (built on first use)."""
        with self._lock:
            store = self.session.store()
        if self.last_updated is None:
            self.last_updated = time.time()
        return store

    def start_watching(self, embed: bool = True, new_vectors: bool = True) -> bool:
        """Keep the index live as files change, with embeddings following in the background when `embed`
        and a model made for embeddings is installed (without `new_vectors`, only once the repository has
        been embedded before); False (with a notice) when watching cannot start."""
        store = self.open()
        if embed:
            self._start_embedding(store, new_vectors)
        if self._closing.is_set():
            return False
        watcher = IndexWatcher(store, self.session.repo, self.session.scan_options(), on_change=self._changed)
        try:
            self._watcher = watcher.start()
        except OSError as exc:  # e.g. the system's limit on inotify watches
            self._notice(f"not watching the repository for changes: {exc}")
            return False
        return True

    def update(self, paths: list[str]) -> int:
        """Re-index these files now (edits Tiercode made); their vectors follow. The number that changed."""
        with self._lock:
            store = self.session.store()
            options = self.session.scan_options()
            changed = sum(update_file(store, self.session.repo, path, options) for path in paths)
        self.last_updated = time.time()
        if self._background is not None:
            self._background.request(paths)
        return changed

    @property
    def watching(self) -> bool:
        """Whether file changes are being followed."""
        return self._watcher is not None

    def vector_count(self) -> int | None:
        """Chunks with a vector; None while no embedding runs."""
        background = self._background
        return background.vectors.size if background is not None else None

    def status(self) -> IndexStatus:
        """Counts, vectors, whether it is watching and when it last changed."""
        counts = self.open().counts()
        background = self._background
        return IndexStatus(
            files=counts["files"], symbols=counts["symbols"], vectors=self.vector_count(),
            embedding=background is not None and not background.wait_idle(0), watching=self.watching,
            last_updated=self.last_updated,
        )

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until the watcher has applied what it saw; False on timeout (or when not watching)."""
        watcher = self._watcher
        return watcher is not None and watcher.wait_idle(timeout)

    def close(self) -> None:
        """Stop watching (after the file it is on) and embedding (at its next batch); pending changes are left to
        the next scan. The session (which owns the store and the models) is closed by its owner after this."""
        self._closing.set()
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop(finish=False)
        background, self._background = self._background, None
        if background is not None:
            background.stop()

    def _start_embedding(self, store: IndexStore, new_vectors: bool) -> None:
        if self._closing.is_set():
            return
        try:
            vectors = self.session.vectors(create=new_vectors)
        except ModelError as exc:
            self._notice(f"dense search is off: {exc}")
            return
        embedder = self.session.code_embedder()
        if vectors is None or embedder is None:
            return
        self._background = BackgroundVectors(store, self.session.repo, vectors, embedder, on_progress=self._on_progress)
        if self._on_progress is not None:
            self._on_progress(0, 0)  # the vectors already saved, until the first sync reports
        self._background.request()

    def _changed(self, paths: list[str]) -> None:
        self.last_updated = time.time()
        if self._background is not None:
            self._background.request(paths)
        if self._on_change is not None:
            self._on_change(paths)
