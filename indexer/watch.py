"""Keep the index live: watchdog file events, debounced, turned into incremental updates."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from watchdog.events import FileSystemEvent, FileSystemEventHandler, FileSystemMovedEvent
from watchdog.observers import Observer

from indexer.build import build_index, update_file
from indexer.scan import IGNORE_FILES, VENDORED_DIRS, ScanOptions, scan
from indexer.store import IndexStore

ChangeCallback = Callable[[list[str]], None]
"""Called after each batch with the repo-relative paths whose index entries changed."""
_FINISH_SECONDS = 30.0
"""How long `stop()` waits for the batch in progress and the pending events to be applied."""
_ABANDON_SECONDS = 2.0
"""How long `stop(finish=False)` waits for the worker and for watchdog's threads (daemons: they die with
the process, so a stuck one cannot keep Ctrl-C from ending it)."""


class IndexWatcher:
    """Watches a repository and re-indexes files as they are created, edited, deleted or moved.

    Events are collected and applied in a batch once the tree has been quiet for `debounce`
    seconds, so an editor's atomic save (write a temp file, rename it over the original) costs one
    update. Use as a context manager, or call `start()` and `stop()`.
    """

    def __init__(
        self,
        store: IndexStore,
        root: Path,
        options: ScanOptions | None = None,
        on_change: ChangeCallback | None = None,
        debounce: float = 0.03,
    ) -> None:
        self.store = store
        self.root = root.resolve()
        self.options = options or ScanOptions()
        self.on_change = on_change
        self.debounce = debounce
        self.errors: list[BaseException] = []
        """Exceptions a batch raised; the watcher keeps going and records them here."""
        self._pending: set[str] = set()
        self._rescan = False
        self._last_event = 0.0
        self._busy = False
        self._cond = threading.Condition()
        self._stopping = False
        self._abandon = False
        """Set by `stop(finish=False)`: drop pending events and stop between two files."""
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._worker: threading.Thread | None = None

    def start(self) -> IndexWatcher:
        """Start watching (the observer and the worker that applies batches)."""
        if self._observer is not None:
            return self
        self._stopping = self._abandon = False
        self._worker = threading.Thread(target=self._run, name="tiercode-index-watch", daemon=True)
        self._worker.start()
        observer = Observer()
        observer.schedule(_Handler(self), str(self.root), recursive=True)
        observer.start()
        self._observer = observer
        return self

    def stop(self, finish: bool = True) -> None:
        """Stop watching. With `finish` a batch in progress finishes and pending events are applied first;
        without it (Ctrl-C) the worker stops after the file it is on and drops what is pending (the next
        scan finds those changes), and no wait is longer than a couple of seconds."""
        with self._cond:
            self._abandon = self._abandon or not finish
            self._cond.notify_all()
        wait = _FINISH_SECONDS if finish else _ABANDON_SECONDS
        if self._observer is not None:
            _stop_observer(self._observer, min(wait, 5.0))
            self._observer = None
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=wait)
            self._worker = None

    def __enter__(self) -> IndexWatcher:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop(finish=exc_type is None)  # leaving on Ctrl-C or an error: do not wait for pending work

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no events are pending and no batch is running; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._rescan or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def notify(self, absolute: str, is_directory: bool) -> None:
        """Record that `absolute` changed (called from watchdog's thread)."""
        rel = self._relative(absolute)
        if rel is None or any(part in VENDORED_DIRS for part in rel.split("/")):
            return
        with self._cond:
            if rel.rsplit("/", 1)[-1] in IGNORE_FILES:
                self._rescan = True
            elif is_directory:
                self._pending.add(rel + "/")
            else:
                self._pending.add(rel)
            self._last_event = time.monotonic()
            self._cond.notify_all()

    def _relative(self, absolute: str) -> str | None:
        try:
            rel = Path(absolute).relative_to(self.root).as_posix()
        except ValueError:
            return None
        return None if rel in (".", "") else rel

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._pending or self._rescan) and not self._stopping:
                    self._cond.wait()
                if self._abandon or (self._stopping and not (self._pending or self._rescan)):
                    return
                quiet = time.monotonic() - self._last_event
                if quiet < self.debounce and not self._stopping:
                    self._cond.wait(self.debounce - quiet)
                    continue
                batch, rescan = sorted(self._pending), self._rescan
                self._pending.clear()
                self._rescan = False
                self._busy = True
            try:
                changed = self._apply(batch, rescan)
                if changed and self.on_change is not None:
                    self.on_change(changed)
            except Exception as exc:  # a failed batch must not end the watcher
                self.errors.append(exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _apply(self, batch: list[str], rescan: bool) -> list[str]:
        if rescan:
            before = self.store.file_states()
            build_index(self.store, self.root, self.options, workers=1)
            after = self.store.file_states()
            return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
        changed: list[str] = []
        for rel in self._expand(batch):
            if self._abandon:
                break
            if update_file(self.store, self.root, rel, self.options):
                changed.append(rel)
        return changed

    def _expand(self, batch: list[str]) -> list[str]:
        """Files behind the batch: folder events stand for every file indexed under or now in them."""
        files: set[str] = set()
        folders = [p for p in batch if p.endswith("/")]
        files.update(p for p in batch if not p.endswith("/"))
        if folders:
            indexed = self.store.paths()
            for folder in folders:
                files.update(p for p in indexed if p.startswith(folder))
                directory = self.root / folder
                if directory.is_dir() and not directory.is_symlink():
                    files.update(folder + c.path for c in scan(directory, self.options).files)
        return sorted(files)


def _stop_observer(observer: Observer, wait: float) -> None:  # type: ignore[valid-type]
    """Stop watchdog's threads, waiting at most `wait` seconds: its stop joins its own threads without a
    limit, so it runs on a daemon thread of its own."""
    def stop() -> None:
        observer.stop()
        observer.join()

    stopping = threading.Thread(target=stop, name="tiercode-watch-stop", daemon=True)
    stopping.start()
    stopping.join(timeout=wait)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: IndexWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        self.watcher.notify(_str(event.src_path), event.is_directory)
        if isinstance(event, FileSystemMovedEvent):
            self.watcher.notify(_str(event.dest_path), event.is_directory)


def _str(path: str | bytes) -> str:
    return path.decode("utf-8", "surrogateescape") if isinstance(path, bytes) else path
