"""A session: one repository, its settings, its index, the ledger and the tiers, opened once."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Protocol

from assistant import paths
from assistant.cache import ResponseCache, open_cache
from assistant.config import Settings
from assistant.errors import UsageError
from assistant.ledger import Ledger, new_id, open_ledger
from assistant.tiers import TierSet
from indexer.build import BuildReport, build_index
from indexer.scan import ScanOptions
from indexer.sqlitedb import DatabaseCorrupt
from indexer.store import IndexStore
from models.base import ModelUnavailable
from models.embedder import LlamaEmbedder


class Reporter(Protocol):
    """How the pipeline talks to its face (stdout, the TUI) while it works."""

    def text(self, delta: str) -> None:
        """A piece of the answer as it streams."""

    def status(self, message: str) -> None:
        """A one-line notice (index rebuilt, escalating, tier skipped)."""

    def progress(self, label: str, done: int, total: int) -> None:
        """Progress of long work (indexing, model load)."""

    def confirm(self, question: str) -> bool:
        """Ask the user yes/no (escalation consent, budget pause)."""


class QuietReporter:
    """A reporter that shows nothing and declines every confirmation."""

    def text(self, delta: str) -> None:
        """Ignore streamed text."""

    def status(self, message: str) -> None:
        """Ignore notices."""

    def progress(self, label: str, done: int, total: int) -> None:
        """Ignore progress."""

    def confirm(self, question: str) -> bool:
        """Decline."""
        return False


def check_repo(repo: Path) -> Path:
    """The resolved repository root; UsageError when it is not a readable folder."""
    if not repo.exists():
        raise UsageError(f"repository path {repo} does not exist; pass an existing folder with --repo")
    if not repo.is_dir():
        raise UsageError(f"repository path {repo} is not a folder; pass a folder with --repo")
    if not os.access(repo, os.R_OK | os.X_OK):
        raise UsageError(f"repository folder {repo} is not readable; check its permissions")
    return repo.resolve()


class Session:
    """Everything one run of Tiercode works with; open it once, ask many questions."""

    def __init__(self, repo: Path, settings: Settings, reporter: Reporter | None = None) -> None:
        self.repo = check_repo(repo)
        self.settings = settings
        self.reporter: Reporter = reporter or QuietReporter()
        self.session_id = new_id()
        self.ledger: Ledger = open_ledger(paths.data_dir())
        self.tiers = TierSet(settings)
        self._store: IndexStore | None = None
        self._cache: ResponseCache | None = None
        self._embedder: LlamaEmbedder | bool | None = False  # False: not looked for yet
        self.last_build: BuildReport | None = None

    @property
    def index_path(self) -> Path:
        """Where this repository's index lives."""
        return paths.index_dir(self.repo) / "index.sqlite"

    def store(self) -> IndexStore:
        """The index, opened and brought up to date on first use."""
        if self._store is None:
            self._store = self._open_store()
            self.refresh_index()
        return self._store

    def refresh_index(self) -> BuildReport:
        """Re-scan the repository and index what changed."""
        store = self._store or self.store()
        report = build_index(
            store, self.repo, ScanOptions(self.settings.max_file_bytes),
            on_progress=lambda done, total: self.reporter.progress("indexing", done, total),
        )
        self.last_build = report
        unreadable = [p for p, why in report.skipped.items() if why.startswith("unreadable")]
        if unreadable:
            more = f" and {len(unreadable) - 1} more" if len(unreadable) > 1 else ""
            self.reporter.status(f"skipped unreadable file {unreadable[0]}{more}; check its permissions")
        if store.counts()["files"] == 0:
            raise UsageError(
                f"no source files to index in {self.repo}; run Tiercode in a repository with code"
                " (Python, JavaScript, TypeScript, Go, Rust, Java, C, C++)"
            )
        return report

    def _open_store(self) -> IndexStore:
        path = self.index_path
        try:
            return IndexStore(path)
        except DatabaseCorrupt:
            self.reporter.status(f"the index at {path} was unreadable; rebuilding it")
            shutil.rmtree(path.parent, ignore_errors=True)
            return IndexStore(path)

    def cache(self) -> ResponseCache:
        """The response caches, opened on first use."""
        if self._cache is None:
            s = self.settings
            ttl = None if s.cache_ttl_hours is None else s.cache_ttl_hours * 3600
            self._cache = open_cache(paths.data_dir(), ttl_s=ttl, semantic_threshold=s.semantic_threshold,
                                     semantic_edits=s.semantic_cache_edits)
        return self._cache

    def semantic_embedder(self) -> LlamaEmbedder | None:
        """The embedding model for the semantic cache, or None when that cache is off."""
        if self._embedder is False:
            self._embedder = None
            mode = self.settings.semantic_cache
            chosen: tuple[str, Path] | None = None
            if mode == "on":
                try:
                    chosen = self.tiers.manager.resolve("embedder", self.settings.local.embedder)
                except ModelUnavailable:
                    chosen = None
            elif mode == "auto":
                chosen = self.tiers.manager.dedicated_embedder(self.settings.local.embedder)
            if chosen is not None:
                self._embedder = LlamaEmbedder(chosen[1])
        return self._embedder or None

    def close(self) -> None:
        """Close the databases and models."""
        if self._store is not None:
            self._store.close()
        if self._cache is not None:
            self._cache.close()
        if self._embedder:
            self._embedder.close()
        self.ledger.close()
