"""Embeddings in the background: symbol lookups never wait for vectors."""

from __future__ import annotations

import threading
from pathlib import Path

from indexer.embed import ChunkProgress, Embedder, SyncReport, VectorIndex, sync_vectors
from indexer.store import IndexStore


class BackgroundVectors:
    """A thread that brings vectors up to date whenever it is asked to.

    Requests made while a sync runs are merged into the next one. Pass it (its `request` method) as
    the watcher's `on_change` callback to keep vectors live.
    """

    def __init__(
        self, store: IndexStore, root: Path, vectors: VectorIndex, embedder: Embedder,
        on_progress: ChunkProgress | None = None,
    ) -> None:
        """`on_progress` sees (files done, files to do) of each sync, from the background thread."""
        self.store = store
        self.root = root
        self.vectors = vectors
        self.embedder = embedder
        self.on_progress = on_progress
        self.errors: list[BaseException] = []
        self.last_report: SyncReport | None = None
        self._cond = threading.Condition()
        self._wanted: set[str] | None = set()
        self._requested = False
        self._busy = False
        self._stopping = False
        self._stop_sync = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tiercode-vectors", daemon=True)
        self._thread.start()

    def request(self, paths: list[str] | None = None) -> None:
        """Ask for a sync of these files (None: every changed file)."""
        with self._cond:
            if paths is None or self._wanted is None:
                self._wanted = None
            else:
                self._wanted.update(paths)
            self._requested = True
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until no sync is requested or running; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._requested and not self._busy, timeout)

    def stop(self) -> None:
        """End the sync in progress at its next batch of embeddings (the files done so far are saved; the one it
        was on is left for the next sync); stop the thread."""
        self._stop_sync.set()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._requested or self._stopping)
                if self._stopping:
                    return
                wanted, self._wanted, self._requested = self._wanted, set(), False
                self._busy = True
            try:
                paths = sorted(wanted) if wanted is not None else None
                self.last_report = sync_vectors(self.store, self.root, self.vectors, self.embedder,
                                                self.on_progress, paths, self._stop_sync)
            except Exception as exc:  # keep serving; the next request tries again
                self.errors.append(exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
