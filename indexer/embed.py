"""Dense vectors for function- and class-level chunks, in a FAISS index kept beside the SQLite store."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from indexer.store import IndexStore

if TYPE_CHECKING:
    import faiss
    import numpy as np

CHUNK_KINDS = ("function", "method", "class", "interface")
"""Definitions that become chunks."""
MAX_CHUNK_CHARS = 1200
"""A chunk's text is cut here; embedders only read its first few hundred tokens anyway."""
VECTORS_FILE = "vectors.faiss"
_SAVE_EVERY = 100


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors."""

    @property
    def dim(self) -> int:
        """Length of each vector."""
        ...

    def embed(self, texts: list[str], stop: threading.Event | None = None) -> np.ndarray:
        """A float32 array of shape (len(texts), dim), rows L2-normalized, for documents (chunks of code); fewer
        rows when `stop` was set while it worked (it checks between batches)."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """One search query's L2-normalized vector (some models are trained with a query prefix apart)."""
        ...


@dataclass(frozen=True)
class Chunk:
    """One definition's text to embed."""

    path: str
    symbol: str
    line: int
    text: str


class VectorIndex:
    """Chunk vectors by chunk id: FAISS IndexIDMap2 over inner product (cosine on unit vectors).

    Safe to search from one thread while another adds and removes (a background sync).
    """

    def __init__(self, dim: int, path: Path | None = None, index: faiss.IndexIDMap2 | None = None) -> None:
        import faiss
        self.dim = dim
        self.path = path
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._lock = threading.RLock()

    @classmethod
    def for_store(cls, store: IndexStore, dim: int) -> VectorIndex:
        """The index saved beside `store`, or a new empty one when there is none or it does not fit."""
        import faiss
        path = store.path.with_name(VECTORS_FILE)
        if path.exists():
            try:
                loaded = faiss.read_index(str(path))
            except RuntimeError:
                loaded = None
            if isinstance(loaded, faiss.IndexIDMap2) and loaded.d == dim:
                return cls(dim, path, loaded)
        return cls(dim, path)

    @property
    def size(self) -> int:
        """How many vectors the index holds."""
        return int(self.index.ntotal)

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        """Add vectors under the given chunk ids."""
        import numpy as np
        if ids:
            with self._lock:
                self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                        np.asarray(ids, dtype=np.int64))

    def remove(self, ids: list[int]) -> int:
        """Remove the vectors of these chunk ids; returns how many were there."""
        import numpy as np
        if not ids:
            return 0
        with self._lock:
            return int(self.index.remove_ids(np.asarray(ids, dtype=np.int64)))

    def clear(self) -> None:
        """Drop every vector."""
        with self._lock:
            self.index.reset()

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The `k` nearest chunk ids to a unit vector, with their cosine similarity, best first."""
        import numpy as np
        with self._lock:
            if self.size == 0 or k <= 0:
                return []
            scores, ids = self.index.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), min(k, self.size))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]

    def save(self) -> None:
        """Write the index atomically beside the store."""
        import faiss
        if self.path is None:
            raise ValueError("this vector index has no file")
        partial = self.path.with_suffix(".partial")
        with self._lock:
            faiss.write_index(self.index, str(partial))
        os.replace(partial, self.path)


def chunks_of(store: IndexStore, path: str, source: str) -> list[Chunk]:
    """The chunks of one indexed file: each function, method and class with a header of path and signature."""
    lines = source.splitlines()
    chunks = []
    for symbol in store.outline(path):
        if symbol.kind not in CHUNK_KINDS:
            continue
        body = "\n".join(lines[symbol.line - 1 : symbol.end_line])
        header = f"{path}\n{symbol.signature}\n" + (f"{symbol.doc}\n" if symbol.doc else "")
        chunks.append(Chunk(path, symbol.qualified_name, symbol.line, (header + body)[:MAX_CHUNK_CHARS]))
    return chunks


@dataclass
class SyncReport:
    """What one vector sync did."""

    files: int = 0
    added: int = 0
    removed: int = 0
    reset: bool = False
    """True when every vector was dropped (new model, or vectors out of step with the store)."""


ChunkProgress = Callable[[int, int], None]


def sync_vectors(
    store: IndexStore,
    root: Path,
    vectors: VectorIndex,
    embedder: Embedder,
    on_progress: ChunkProgress | None = None,
    paths: list[str] | None = None,
    stop: threading.Event | None = None,
) -> SyncReport:
    """Bring the vectors up to date with the store: re-embed changed files, drop deleted ones, save.

    Only files whose content hash changed since they were embedded are touched (or only `paths`,
    when given); their old chunks are removed from FAISS by id and their new ones added. Setting `stop`
    ends the sync after the file in progress, with what was done saved.
    """
    report = SyncReport()
    model = f"{getattr(embedder, 'name', type(embedder).__name__)}:{embedder.dim}"
    chunk_count = store.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    if store.get_meta("embedder") != model or chunk_count != vectors.size:
        _reset(store, vectors)
        store.set_meta("embedder", model)
        report.reset = True
    current = {p: s.hash for p, s in store.file_states().items()}
    embedded = {r[0]: r[1] for r in store.conn.execute("SELECT path, hash FROM vector_files")}
    todo = [p for p in current if embedded.get(p) != current[p]] + [p for p in embedded if p not in current]
    if paths is not None:
        wanted = set(paths)
        todo = [p for p in todo if p in wanted]
    for done, path in enumerate(sorted(todo), start=1):
        if stop is not None and stop.is_set():
            break
        old_ids = [r[0] for r in store.conn.execute("SELECT id FROM chunks WHERE path = ?", (path,))]
        chunks = _read_chunks(store, root, path) if path in current else []
        matrix = embedder.embed([c.text for c in chunks], stop) if chunks else None
        if matrix is not None and len(matrix) < len(chunks):
            break  # stopped inside the file: it stays as it was, for the next sync
        with store.transaction() as tx:
            tx.execute("DELETE FROM chunks WHERE path = ?", (path,))
            new_ids = [
                int(tx.execute("INSERT INTO chunks (path, symbol, line) VALUES (?,?,?)",
                               (c.path, c.symbol, c.line)).lastrowid or 0)
                for c in chunks
            ]
            if path in current:
                tx.execute("INSERT OR REPLACE INTO vector_files VALUES (?, ?)", (path, current[path]))
            else:
                tx.execute("DELETE FROM vector_files WHERE path = ?", (path,))
            report.removed += vectors.remove(old_ids)
            if matrix is not None:
                vectors.add(new_ids, matrix)
        report.added += len(chunks)
        report.files += 1
        if report.files % _SAVE_EVERY == 0:
            vectors.save()  # an interrupted sync keeps most of its work
        if on_progress:
            on_progress(done, len(todo))
    if report.files or report.reset:
        vectors.save()
    return report


def chunk_rows(store: IndexStore, ids: list[int]) -> dict[int, tuple[str, str, int]]:
    """(path, symbol, line) of each chunk id."""
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = store.conn.execute(f"SELECT id, path, symbol, line FROM chunks WHERE id IN ({marks})", ids)
    return {r["id"]: (r["path"], r["symbol"], r["line"]) for r in rows}


def _read_chunks(store: IndexStore, root: Path, path: str) -> list[Chunk]:
    try:
        source = (root / path).read_bytes().decode("utf-8", "replace")
    except OSError:
        return []
    return chunks_of(store, path, source)


def _reset(store: IndexStore, vectors: VectorIndex) -> None:
    vectors.clear()
    with store.transaction() as tx:
        tx.execute("DELETE FROM chunks")
        tx.execute("DELETE FROM vector_files")
