"""The served repository's index kept live: built at start, then a watcher (and, once the repository is
embedded, background embeddings) apply every change while the server runs, and each answer can say when
the index last changed."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from assistant.session import Session
from indexer.background import BackgroundVectors
from indexer.store import IndexStore
from indexer.watch import IndexWatcher


class LiveIndex:
    """One session's index, brought up to date at `start()` and kept so by a watcher until `stop()`."""

    def __init__(self, session: Session, notify: Callable[[str], None]) -> None:
        self.session = session
        self.notify = notify
        """Where one-line notices go (stderr: stdout is the MCP wire)."""
        self.updated_at = 0.0
        """Unix time of the last change the server applied to the index (or of its start-up scan)."""
        self._watcher: IndexWatcher | None = None
        self._vectors: BackgroundVectors | None = None

    def start(self) -> IndexStore:
        """Scan the repository, index what changed since the last run and start watching it."""
        store = self.session.store()
        self.updated_at = time.time()
        vectors = self.session.vectors()
        embedder = self.session.code_embedder() if vectors is not None else None
        if vectors is not None and embedder is not None:
            self._vectors = BackgroundVectors(store, self.session.repo, vectors, embedder)
            self._vectors.request()
        watcher = IndexWatcher(store, self.session.repo, self.session.scan_options(), on_change=self._changed)
        try:
            self._watcher = watcher.start()
        except OSError as exc:  # e.g. the system's limit on inotify watches
            self.notify(f"not watching {self.session.repo} for changes ({exc}); restart the server after edits")
        return store

    def _changed(self, paths: list[str]) -> None:
        self.updated_at = time.time()
        if self._vectors is not None:
            self._vectors.request(paths)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until the watcher has applied what it saw; False on timeout (or when not watching)."""
        return self._watcher is not None and self._watcher.wait_idle(timeout)

    def freshness(self, now: float | None = None) -> str:
        """When the index last changed, for an answer's last line: `index updated 12 s ago, at 2026-12-06
        16:55:02 UTC`."""
        now = time.time() if now is None else now
        seconds = max(0, round(now - self.updated_at))
        ago = f"{seconds} s" if seconds < 120 else f"{seconds // 60} min" if seconds < 7200 else f"{seconds // 3600} h"
        clock = dt.datetime.fromtimestamp(self.updated_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        watching = "" if self._watcher is not None else "; not watching for changes"
        return f"index updated {ago} ago, at {clock} UTC{watching}"

    def stop(self) -> None:
        """Stop watching at once: what was not applied yet, the next start's scan finds."""
        if self._watcher is not None:
            self._watcher.stop(finish=False)
            self._watcher = None
        if self._vectors is not None:
            self._vectors.stop()
            self._vectors = None
