"""A session: one repository, its settings, its index, the ledger and the tiers, opened once. The caches, the
vectors and the embedding model are imported when first opened (a lookup needs none of them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from assistant import paths
from assistant.accounting.ledger import Ledger, new_id, open_ledger
from assistant.config import Settings
from assistant.context.saved_conversations import ConversationStore, open_conversations
from assistant.errors import UsageError
from assistant.tiers import TierSet
from assistant.timing import Timings
from indexer.build import BuildReport, build_or_rebuild
from indexer.scan import ScanOptions
from indexer.store import IndexStore
from models.base import ModelUnavailable

if TYPE_CHECKING:
    from assistant.accounting.cache import ResponseCache
    from indexer.embed import VectorIndex
    from models.embedder import LlamaEmbedder


class Reporter(Protocol):
    """How the pipeline talks to its face (stdout, the TUI) while it works."""

    def text(self, delta: str) -> None:
        """A piece of the answer as it streams."""

    def status(self, message: str) -> None:
        """A one-line notice (index rebuilt, escalating, tier skipped)."""

    def progress(self, label: str, done: int, total: int) -> None:
        """Progress of long work (indexing, model load)."""

    def waiting(self, label: str) -> None:
        """Work that counts no progress has begun (a model reading its prompt before the first token); the
        next text or notice ends it."""

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

    def waiting(self, label: str) -> None:
        """Ignore waits."""

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
        self.timings = Timings()
        """Where this session's time went, stage by stage (`ask -v`)."""
        self.ledger: Ledger = open_ledger(paths.data_dir())
        self.tiers = TierSet(settings)
        self._store: IndexStore | None = None
        self._cache: ResponseCache | None = None
        self._embedder: LlamaEmbedder | bool | None = False  # False: not looked for yet
        self._query_embedder: LlamaEmbedder | None = None
        self._vectors: VectorIndex | None = None
        self._conversations: ConversationStore | None = None
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

    def scan_options(self) -> ScanOptions:
        """What the index covers, from the settings (the file size limit)."""
        return ScanOptions(self.settings.max_file_bytes)

    def refresh_index(self) -> BuildReport:
        """Re-scan the repository and index what changed."""
        store = self._store or self.store()
        self._store, report = build_or_rebuild(
            store, self.repo, self.reporter.status, options=self.scan_options(),
            on_progress=lambda done, total: self.reporter.progress("indexing", done, total),
        )
        store = self._store
        self.last_build = report
        unreadable = [p for p, why in report.skipped.items() if why.startswith("unreadable")]
        if unreadable:
            more = f" and {len(unreadable) - 1} more" if len(unreadable) > 1 else ""
            what = "folder" if unreadable[0].endswith("/") else "file"  # the scan names folders with a "/"
            self.reporter.status(f"skipped unreadable {what} {unreadable[0]}{more}; check its permissions")
        if store.counts()["files"] == 0:
            raise UsageError(
                f"no source files to index in {self.repo}; run Tiercode in a repository with code"
                " (Python, JavaScript, TypeScript, Go, Rust, Java, C, C++)"
            )
        return report

    def _open_store(self) -> IndexStore:
        return IndexStore.open_or_rebuild(self.index_path, self.reporter.status)

    def cache(self) -> ResponseCache:
        """The response caches, opened on first use."""
        if self._cache is None:
            from assistant.accounting.cache import open_cache

            s = self.settings
            ttl = None if s.cache_ttl_hours is None else s.cache_ttl_hours * 3600
            self._cache = open_cache(paths.data_dir(), self.reporter.status, ttl_s=ttl,
                                     semantic_threshold=s.semantic_threshold, semantic_edits=s.semantic_cache_edits)
        return self._cache

    def conversations(self) -> ConversationStore:
        """The saved conversations (`tiercode -c`, `ask --continue`, `tiercode sessions`), opened on first use."""
        if self._conversations is None:
            self._conversations = open_conversations(paths.data_dir(), self.reporter.status)
        return self._conversations

    def replace_cache(self, reason: str) -> ResponseCache:
        """Set aside a response cache found damaged while in use (with a notice) and open a new one."""
        from assistant.accounting.cache import set_aside

        if self._cache is not None:
            self._cache.close()
            self._cache = None
        self.reporter.status(set_aside(paths.data_dir() / "cache.sqlite", reason))
        return self.cache()

    def code_embedder(self) -> LlamaEmbedder | None:
        """The model made for embeddings (or the one `local.embedder` names), loaded once; None when
        none is installed (the quick-start chat model does not embed code well)."""
        if self._embedder is False:
            from models.embedder import LlamaEmbedder

            chosen = self.tiers.manager.dedicated_embedder(self.settings.local.embedder)
            threads = self.settings.local.threads
            self._embedder = None if chosen is None else LlamaEmbedder.for_model(*chosen, threads=threads)
        return self._embedder or None

    def vectors(self, create: bool = False) -> VectorIndex | None:
        """The index's chunk vectors as `tiercode index` or the TUI last saved them (a new empty set
        with `create`); None without an embedding model. Answers search them; the TUI keeps them current."""
        if self._vectors is None:
            from indexer.embed import VECTORS_FILE, VectorIndex

            saved = self.index_path.with_name(VECTORS_FILE).exists()
            embedder = self.code_embedder() if saved or create else None
            if embedder is None:
                return None
            self._vectors = VectorIndex.for_store(self.store(), embedder.dim)
        return self._vectors

    def semantic_embedder(self) -> LlamaEmbedder | None:
        """The embedding model for the semantic cache, or None when that cache is off. `auto` uses only
        a model made for embeddings; `on` falls back to any installed model that can embed."""
        mode = self.settings.semantic_cache
        if mode == "off":
            return None
        code = self.code_embedder()
        if code is not None or mode == "auto":
            return code
        if self._query_embedder is None:
            try:
                chosen = self.tiers.manager.resolve("embedder", self.settings.local.embedder)
            except ModelUnavailable:
                return None
            from models.embedder import LlamaEmbedder

            self._query_embedder = LlamaEmbedder.for_model(*chosen, threads=self.settings.local.threads)
        return self._query_embedder

    def close(self) -> None:
        """Close the databases and models."""
        if self._store is not None:
            self._store.close()
        if self._cache is not None:
            self._cache.close()
        if self._conversations is not None:
            self._conversations.close()
        for embedder in (self._embedder, self._query_embedder):
            if embedder:
                embedder.close()
        self.ledger.close()
