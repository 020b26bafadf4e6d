"""Response caches: exact (model, prompt, context, sampling) and semantic (nearest earlier question).

Both live in one SQLite file (`cache.sqlite`); the semantic layer's vectors are kept in SQLite too
and mirrored into a FAISS inner-product index (`cache.faiss`, beside it) that is only an
accelerator: it is brought up to date from SQLite whenever it is used, so several processes can
share the cache and a stale or missing FAISS file is never wrong, only rebuilt.

An entry is valid while it has not expired and every file its context came from still has the
content hash it had when the answer was stored; a lookup that finds a changed file drops the entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from assistant.accounting.agreement import questions_agree
from indexer.build import content_hash
from indexer.sqlitedb import Database, DatabaseCorrupt, set_aside_file

if TYPE_CHECKING:
    import sqlite3

    import faiss
    import numpy as np

    from models.base import Usage

DEFAULT_TTL_S = 7 * 24 * 3600.0
"""How long an entry lives unless the caller says otherwise."""
SEMANTIC_THRESHOLD = 0.92
"""Least cosine similarity for a semantic hit (and the lexical agreement check must pass too)."""
_CANDIDATES = 32
_SAVE_EVERY = 64

FileRef = tuple[str, str]
"""(path, content hash) of one file a context was built from."""

_SCHEMA_V1 = """
CREATE TABLE entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    expires_at REAL,
    model TEXT NOT NULL,
    tier TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL DEFAULT '',
    context_hash TEXT NOT NULL,
    answer TEXT NOT NULL,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    meta TEXT NOT NULL DEFAULT '{}',
    embedder TEXT,
    embedding BLOB
);
CREATE INDEX entries_context ON entries(context_hash);
CREATE TABLE entry_files (
    entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (entry_id, path)
);
CREATE INDEX entry_files_path ON entry_files(path);
CREATE TABLE cache_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class CacheHit:
    """A cached answer and where it came from."""

    answer: str
    model: str
    """The model that produced the answer originally."""
    tier: str
    """The tier that produced it."""
    match: Literal["exact", "semantic"]
    question: str
    """The original question the hit was stored for (shown to the user on a semantic hit)."""
    similarity: float
    """Cosine similarity to the original question (1.0 for an exact hit)."""
    created_at: float
    entry_id: int
    input_tokens: int = 0
    """Tokens of the original call: a hit saves them, so its ledger record may carry them at $0."""
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    """What the original call cost."""
    meta: Mapping[str, Any] | None = None
    """Whatever the caller stored with the answer (sources, notes)."""


def normalize_prompt(text: str) -> str:
    """The prompt as the exact key sees it: NFKC, whitespace runs collapsed, ends stripped."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def embedding_text(question: str) -> str:
    """The text to embed for the semantic cache: the normalized question, lower-cased."""
    return normalize_prompt(question).lower()


def exact_key(model: str, prompt: str, context_hash: str, params: Mapping[str, Any] | None = None) -> str:
    """The exact cache key: model + normalized prompt + context hash + sampling parameters."""
    material = json.dumps(
        [model, normalize_prompt(prompt), context_hash, dict(sorted((params or {}).items()))],
        sort_keys=True, default=str, ensure_ascii=False,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def file_ref(path: Path, root: Path | None = None) -> FileRef:
    """(path relative to `root` or as given, content hash) of a file on disk, hashed as the index does."""
    name = path.relative_to(root).as_posix() if root is not None and path.is_absolute() else path.as_posix()
    return name, content_hash(path.read_bytes())




class ResponseCache(Database):
    """The exact and semantic response caches (`cache.sqlite` + `cache.faiss`)."""

    migrations = (_SCHEMA_V1,)

    def __init__(
        self,
        path: Path,
        *,
        ttl_s: float | None = DEFAULT_TTL_S,
        semantic_threshold: float = SEMANTIC_THRESHOLD,
        semantic_edits: bool = False,
    ) -> None:
        self.ttl_s = ttl_s
        """Default lifetime of a new entry in seconds; None: until a file in its context changes."""
        self.semantic_threshold = semantic_threshold
        self.semantic_edits = semantic_edits
        """Whether edit requests may be answered (and stored) semantically."""
        self.faiss_path = path.with_suffix(".faiss")
        self._index: faiss.IndexIDMap2 | None = None
        self._index_embedder: str | None = None
        self._synced_id = 0
        self._unsaved = 0  # set before the file opens: a failed open still closes cleanly
        super().__init__(path)

    # -- exact ------------------------------------------------------------------------------

    def lookup(
        self,
        *,
        model: str,
        prompt: str,
        context_hash: str,
        params: Mapping[str, Any] | None = None,
        files: Iterable[FileRef] = (),
        root: Path | None = None,
        now: float | None = None,
    ) -> CacheHit | None:
        """The exact hit for this call, or None; an expired or outdated entry is dropped.

        Files the entry was built from are checked against `files` (current hashes the caller
        already knows, e.g. from the index) and otherwise re-hashed on disk, relative to `root`.
        """
        row = self.conn.execute(
            "SELECT * FROM entries WHERE key = ?", (exact_key(model, prompt, context_hash, params),)
        ).fetchone()
        if row is None or not self._valid(row, dict(files), root, now):
            return None
        return _hit(row, "exact", 1.0)

    def store(
        self,
        *,
        model: str,
        tier: str,
        prompt: str,
        context_hash: str,
        answer: str,
        params: Mapping[str, Any] | None = None,
        files: Iterable[FileRef] = (),
        question: str = "",
        kind: str = "",
        usage: Usage | Mapping[str, int] | None = None,
        cost_usd: float = 0.0,
        meta: Mapping[str, Any] | None = None,
        embedding: np.ndarray | None = None,
        embedder: str = "",
        ttl_s: float | None = -1.0,
        now: float | None = None,
    ) -> int:
        """Store an answer; returns the entry id. An entry with the same exact key is replaced.

        `usage` is a models.base.Usage or a mapping with its token counts.
        Pass `embedding` (and the `embedder`'s name) to make the entry findable semantically;
        edit requests are kept out of the semantic layer unless `semantic_edits` is on.
        `ttl_s` -1 means the cache's default, None means no expiry.
        """
        now = time.time() if now is None else now
        ttl = self.ttl_s if ttl_s == -1.0 else ttl_s
        counts = _token_counts(usage)
        vector: np.ndarray | None = None
        if embedding is not None and embedder and (kind != "edit" or self.semantic_edits):
            vector = _unit(embedding)
        key = exact_key(model, prompt, context_hash, params)
        with self.transaction() as tx:
            old = tx.execute("SELECT id FROM entries WHERE key = ?", (key,)).fetchone()
            if old is not None:
                tx.execute("DELETE FROM entries WHERE id = ?", (old[0],))
            cursor = tx.execute(
                "INSERT INTO entries (key, created_at, expires_at, model, tier, kind, question, context_hash, "
                "answer, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, meta, "
                "embedder, embedding) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (key, now, None if ttl is None else now + ttl, model, tier, kind, question or prompt, context_hash,
                 answer, *counts, cost_usd,
                 json.dumps(dict(meta or {}), default=str), embedder if vector is not None else None,
                 vector.tobytes() if vector is not None else None),
            )
            entry_id = int(cursor.lastrowid or 0)
            tx.executemany("INSERT OR REPLACE INTO entry_files (entry_id, path, hash) VALUES (?,?,?)",
                           [(entry_id, path, digest) for path, digest in files])
        if old is not None:
            self._forget([int(old[0])])
        return entry_id

    # -- semantic ---------------------------------------------------------------------------

    def semantic_lookup(
        self,
        *,
        question: str,
        embedding: np.ndarray,
        embedder: str,
        context_hash: str,
        kind: str = "",
        model: str | None = None,
        files: Iterable[FileRef] = (),
        root: Path | None = None,
        now: float | None = None,
    ) -> CacheHit | None:
        """The nearest earlier question with cosine >= the threshold, the same context hash, the same
        embedder, and a question that `questions_agree` with this one; None otherwise (and always
        for edit requests unless `semantic_edits` is on). `model`, if given, limits hits to it."""
        if kind == "edit" and not self.semantic_edits:
            return None
        index = self._sync(embedder)
        if index is None or index.ntotal == 0:
            return None
        vector = _unit(embedding).reshape(1, -1)
        if vector.shape[1] != index.d:
            return None
        scores, ids = index.search(vector, min(_CANDIDATES, index.ntotal))
        current = dict(files)
        for score, entry_id in zip(scores[0], ids[0], strict=True):
            if entry_id < 0 or score < self.semantic_threshold:
                break
            row = self.conn.execute("SELECT * FROM entries WHERE id = ?", (int(entry_id),)).fetchone()
            if row is None:
                continue  # dropped by another process since this index was built
            if row["context_hash"] != context_hash or (model is not None and row["model"] != model):
                continue
            if row["kind"] == "edit" and not self.semantic_edits:
                continue
            if not questions_agree(question, row["question"]) or not self._valid(row, current, root, now):
                continue
            return _hit(row, "semantic", float(score))
        return None

    # -- maintenance ------------------------------------------------------------------------

    def invalidate_paths(self, paths: Iterable[str]) -> int:
        """Drop every entry whose context came from one of `paths` (e.g. from a file watcher)."""
        names = list(paths)
        if not names:
            return 0
        marks = ",".join("?" for _ in names)
        ids = [int(r[0]) for r in self.conn.execute(
            f"SELECT DISTINCT entry_id FROM entry_files WHERE path IN ({marks})", names)]
        self._drop(ids)
        return len(ids)

    def purge_expired(self, now: float | None = None) -> int:
        """Drop expired entries; returns how many."""
        now = time.time() if now is None else now
        ids = [int(r[0]) for r in self.conn.execute(
            "SELECT id FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))]
        self._drop(ids)
        return len(ids)

    def count(self) -> int:
        """Entries stored (valid or not yet found to be invalid)."""
        return int(self.conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def save_index(self) -> None:
        """Write the FAISS mirror beside the database (atomically)."""
        if self._index is None:
            return
        import faiss

        tmp = self.faiss_path.with_name(f"{self.faiss_path.name}.{os.getpid()}.tmp")
        faiss.write_index(self._index, str(tmp))
        os.replace(tmp, self.faiss_path)
        self._unsaved = 0

    def close(self) -> None:
        """Save the FAISS mirror if it changed, then close the database."""
        if self._unsaved:
            with contextlib.suppress(OSError):  # only an accelerator: the next open rebuilds it
                self.save_index()
        super().close()

    # -- internals --------------------------------------------------------------------------

    def _valid(self, row: sqlite3.Row, current: Mapping[str, str], root: Path | None, now: float | None) -> bool:
        now = time.time() if now is None else now
        if row["expires_at"] is not None and row["expires_at"] <= now:
            self._drop([int(row["id"])])
            return False
        for stored in self.conn.execute("SELECT path, hash FROM entry_files WHERE entry_id = ?", (row["id"],)):
            path = stored["path"]
            digest = current[path] if path in current else _disk_hash(path, root)
            if digest != stored["hash"]:
                self._drop([int(row["id"])])
                return False
        return True

    def _drop(self, ids: list[int]) -> None:
        if not ids:
            return
        with self.transaction() as tx:
            tx.executemany("DELETE FROM entries WHERE id = ?", [(i,) for i in ids])
        self._forget(ids)

    def _forget(self, ids: list[int]) -> None:
        import numpy as np
        if self._index is not None:
            self._index.remove_ids(np.asarray(ids, dtype=np.int64))
            self._unsaved += 1

    def _sync(self, embedder: str) -> faiss.IndexIDMap2 | None:
        """The FAISS mirror for `embedder`, loaded or rebuilt as needed and caught up with SQLite."""
        import faiss
        import numpy as np

        if self._index is None or self._index_embedder != embedder:
            self._index, self._index_embedder, self._synced_id = self._load(embedder), embedder, 0
            if self._index is not None and self._index.ntotal:
                self._synced_id = int(faiss.vector_to_array(self._index.id_map).max())
        rows = self.conn.execute(
            "SELECT id, embedding FROM entries WHERE id > ? AND embedder = ? AND embedding IS NOT NULL ORDER BY id",
            (self._synced_id, embedder),
        ).fetchall()
        if rows:
            vectors = np.stack([np.frombuffer(r["embedding"], dtype=np.float32) for r in rows])
            if self._index is None or self._index.d != vectors.shape[1]:
                self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
                return self._sync_all(embedder)
            self._index.add_with_ids(vectors, np.asarray([r["id"] for r in rows], dtype=np.int64))
            self._synced_id = int(rows[-1]["id"])
            self._unsaved += len(rows)
            if self._unsaved >= _SAVE_EVERY:
                self.save_index()
        return self._index

    def _sync_all(self, embedder: str) -> faiss.IndexIDMap2 | None:
        self._synced_id = 0
        self._unsaved = 1
        self._index_embedder = embedder
        self.conn.execute("INSERT OR REPLACE INTO cache_meta VALUES ('faiss_embedder', ?)", (embedder,))
        return self._sync(embedder)

    def _load(self, embedder: str) -> faiss.IndexIDMap2 | None:
        import faiss

        known = self.conn.execute("SELECT value FROM cache_meta WHERE name = 'faiss_embedder'").fetchone()
        if known is None or known[0] != embedder or not self.faiss_path.is_file():
            return None
        try:
            index = faiss.read_index(str(self.faiss_path))
        except RuntimeError:
            return None  # unreadable: rebuilt from SQLite
        return index if isinstance(index, faiss.IndexIDMap2) else None


def _unit(vector: np.ndarray) -> np.ndarray:
    import numpy as np
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError("cannot cache a zero or non-finite embedding")
    return np.ascontiguousarray(v / norm, dtype=np.float32)


def _token_counts(usage: Usage | Mapping[str, int] | None) -> tuple[int, int, int, int]:
    names = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    if usage is None:
        return 0, 0, 0, 0
    if isinstance(usage, Mapping):
        return tuple(int(usage.get(n, 0)) for n in names)  # type: ignore[return-value]
    return tuple(int(getattr(usage, n)) for n in names)  # type: ignore[return-value]


def _disk_hash(path: str, root: Path | None) -> str | None:
    full = Path(path) if root is None else root / path
    try:
        return content_hash(full.read_bytes())
    except OSError:
        return None


def _hit(row: sqlite3.Row, match: Literal["exact", "semantic"], similarity: float) -> CacheHit:
    return CacheHit(
        answer=row["answer"], model=row["model"], tier=row["tier"], match=match, question=row["question"],
        similarity=similarity, created_at=row["created_at"], entry_id=int(row["id"]),
        input_tokens=row["input_tokens"], output_tokens=row["output_tokens"],
        cache_read_tokens=row["cache_read_tokens"], cache_write_tokens=row["cache_write_tokens"],
        cost_usd=row["cost_usd"], meta=json.loads(row["meta"]),
    )


def open_cache(data_dir: Path, notify: Callable[[str], None] | None = None, **options: Any) -> ResponseCache:
    """The user's response cache under the data dir (`cache.sqlite`, `cache.faiss`). With `notify`, one that
    cannot be opened (damaged, or from a newer Tiercode) is set aside, `notify` is told where, and a new one
    starts; without, DatabaseCorrupt is raised."""
    path = data_dir / "cache.sqlite"
    try:
        return ResponseCache(path, **options)
    except DatabaseCorrupt as exc:
        if notify is None:
            raise
        notify(set_aside(path, exc.reason))
        return ResponseCache(path, **options)


def set_aside(path: Path, reason: str) -> str:
    """Move a damaged cache file (with its WAL, shared memory and FAISS mirror) to `<name>.damaged`, replacing
    an earlier one; returns the one-line notice that says so."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path.with_suffix(".faiss"))  # only an accelerator, rebuilt from SQLite
    aside = set_aside_file(path)
    return f"the response cache at {path} could not be used ({reason}); set it aside as {aside.name} and started anew"
