"""FAISS add/remove by id, the llama.cpp embedder, incremental vector sync and hybrid search."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from indexer.build import build_index, update_file
from indexer.clues import read_question
from indexer.embed import Embedder, VectorIndex, chunks_of, sync_vectors
from indexer.localize import fuse_files
from indexer.search import Hit, bm25_hits, dense_hits, exact_hits, fuzzy_definitions, hybrid_search
from indexer.store import IndexStore
from models.embedder import LlamaEmbedder


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_faiss_add_remove_search_and_reload(tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "index.sqlite")
    vectors = VectorIndex.for_store(store, 8)
    rows = unit_rows(5, 8, 0)
    vectors.add([10, 11, 12, 13, 14], rows)
    assert vectors.search(rows[2], 1) == [(12, pytest.approx(1.0, abs=1e-5))]
    assert vectors.remove([12, 99]) == 1
    assert vectors.size == 4 and 12 not in [i for i, _ in vectors.search(rows[2], 4)]
    vectors.save()
    again = VectorIndex.for_store(store, 8)
    assert again.size == 4 and again.search(rows[4], 1)[0][0] == 14
    assert VectorIndex.for_store(store, 16).size == 0  # another dimension: start over


@pytest.fixture(scope="module")
def embedder(quickstart_gguf: Path) -> Iterator[LlamaEmbedder]:
    model = LlamaEmbedder(quickstart_gguf, context_tokens=128)
    yield model
    model.close()


def test_llama_embedder_rows_are_unit_length_and_stable(embedder: LlamaEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    out = embedder.embed(["def add(a, b): return a + b", "class Parser: pass", ""])
    assert out.shape == (3, embedder.dim) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-4)
    assert np.allclose(embedder.embed(["class Parser: pass"])[0], out[1], atol=1e-4)
    assert embedder.embed([]).shape == (0, embedder.dim)


FILES = {
    "geometry.py": 'def circle_area(radius):\n    """Area of a circle."""\n    return 3.14 * radius * radius\n',
    "net.py": 'class HttpClient:\n    """Sends web requests."""\n\n'
    '    def fetch_page(self, url):\n        return url\n',
}


@pytest.fixture
def indexed(tmp_path: Path) -> tuple[IndexStore, Path]:
    root = tmp_path / "repo"
    root.mkdir()
    for rel, text in FILES.items():
        (root / rel).write_text(text)
    store = IndexStore(tmp_path / "cache" / "index.sqlite")
    build_index(store, root)
    return store, root


def test_chunks_have_path_and_signature_headers(indexed: tuple[IndexStore, Path]) -> None:
    store, root = indexed
    chunks = chunks_of(store, "net.py", (root / "net.py").read_text())
    assert [(c.symbol, c.line) for c in chunks] == [("HttpClient", 1), ("HttpClient.fetch_page", 4)]
    assert chunks[1].text.startswith("net.py\ndef fetch_page(self, url)\n")


def test_sync_adds_changes_and_removes_by_id(indexed: tuple[IndexStore, Path], embedder: LlamaEmbedder) -> None:
    store, root = indexed
    vectors = VectorIndex.for_store(store, embedder.dim)
    first = sync_vectors(store, root, vectors, embedder)
    assert (first.files, first.added, first.reset) == (2, 3, True)
    assert vectors.size == 3 and vectors.path is not None and vectors.path.exists()
    assert sync_vectors(store, root, vectors, embedder).files == 0  # nothing changed

    net_ids = [r[0] for r in store.conn.execute("SELECT id FROM chunks WHERE path = 'net.py'")]
    (root / "net.py").write_text("def fetch_page(url):\n    return url\n")
    update_file(store, root, "net.py")
    second = sync_vectors(store, root, vectors, embedder)
    assert (second.files, second.added, second.removed, second.reset) == (1, 1, 2, False)
    assert vectors.index.id_map is not None and not set(net_ids) & set(faiss_ids(vectors))

    (root / "geometry.py").unlink()
    update_file(store, root, "geometry.py")
    third = sync_vectors(store, root, vectors, embedder)
    assert (third.files, third.removed) == (1, 1)
    reloaded = VectorIndex.for_store(store, embedder.dim)
    assert reloaded.size == 1
    assert store.conn.execute("SELECT path FROM chunks").fetchall()[0][0] == "net.py"
    only = dense_hits(store, "circle area", reloaded, embedder)
    assert [(h.path, h.line, h.symbol) for h in only] == [("net.py", 1, "fetch_page")]


def faiss_ids(vectors: VectorIndex) -> list[int]:
    import faiss

    return list(faiss.vector_to_array(vectors.index.id_map))


def test_vectors_out_of_step_with_the_store_are_rebuilt(
    indexed: tuple[IndexStore, Path], embedder: LlamaEmbedder
) -> None:
    store, root = indexed
    vectors = VectorIndex.for_store(store, embedder.dim)
    sync_vectors(store, root, vectors, embedder)
    assert vectors.path is not None
    vectors.path.write_bytes(b"not a faiss index")
    broken = VectorIndex.for_store(store, embedder.dim)
    report = sync_vectors(store, root, broken, embedder)
    assert report.reset and broken.size == 3


def test_hybrid_search_fuses_exact_bm25_and_dense(indexed: tuple[IndexStore, Path], embedder: LlamaEmbedder) -> None:
    store, root = indexed
    vectors = VectorIndex.for_store(store, embedder.dim)
    sync_vectors(store, root, vectors, embedder)
    hits = hybrid_search(store, "circle_area", k=3, vectors=vectors, embedder=embedder)
    assert hits[0] == Hit("geometry.py", 1, "circle_area", hits[0].score) and hits[0].score > 0
    by_doc = hybrid_search(store, "web requests", k=5)
    assert by_doc[0].symbol == "HttpClient"
    assert [h.symbol for h in bm25_hits(store, "fetch page")][:1] == ["HttpClient.fetch_page"]
    assert len(hybrid_search(store, "area", k=1)) == 1


def test_exact_hits_come_from_identifiers_not_the_plain_words_of_a_sentence(
    indexed: tuple[IndexStore, Path]
) -> None:
    store, root = indexed
    (root / "io.py").write_text("def read(path):\n    return open(path).read()\n\n\nclass Shape:\n    pass\n")
    build_index(store, root)
    assert exact_hits(store, "how do I read a file") == []  # `read` is a word here, BM25 ranks it
    assert [h.symbol for h in exact_hits(store, "read")] == ["read"]  # the whole query: a name
    assert [h.symbol for h in exact_hits(store, "what does circle_area return")] == ["circle_area"]
    assert [h.symbol for h in exact_hits(store, "who calls HttpClient.fetch_page?")] == ["HttpClient.fetch_page"]
    assert [h.symbol for h in exact_hits(store, "how does `read` work")] == ["read"]
    assert [h.symbol for h in exact_hits(store, "explain the Shape class")] == ["Shape"]
    assert exact_hits(store, "Shape the output of read") == []  # a sentence's first word is capitalized anyway
    assert [h.symbol for h in exact_hits(store, "It fails. Read the Shape docs")] == ["Shape"]
    assert exact_hits(store, "explain the Read step") == []  # capitalized only: the name must match exactly


def test_rank_fusion_rewards_agreement() -> None:
    channels = {"text": ["a.py", "b.py", "c.py"], "definitions": ["b.py", "c.py"]}
    fused = fuse_files(channels, {"a.py": "python", "b.py": "python", "c.py": "python"}, read_question("x y"))
    assert [f.path for f in fused] == ["b.py", "c.py", "a.py"]
    assert fused[0].reasons == ("text", "definitions")


def test_fuzzy_definitions(indexed: tuple[IndexStore, Path]) -> None:
    store, _ = indexed
    assert [s.name for s in fuzzy_definitions(store, "circle_aera")][:1] == ["circle_area"]
    assert [s.name for s in fuzzy_definitions(store, "httpclient")][:1] == ["HttpClient"]
    assert "fetch_page" in [s.name for s in fuzzy_definitions(store, "fetch")]


@pytest.mark.timeout(300)
def test_watcher_with_background_vectors_drops_deleted_files(
    indexed: tuple[IndexStore, Path], embedder: LlamaEmbedder
) -> None:
    from indexer.background import BackgroundVectors
    from indexer.watch import IndexWatcher

    store, root = indexed
    vectors = VectorIndex.for_store(store, embedder.dim)
    background = BackgroundVectors(store, root, vectors, embedder)
    background.request()
    assert background.wait_idle(120) and vectors.size == 3
    with IndexWatcher(store, root, on_change=background.request) as watcher:
        (root / "net.py").unlink()
        while store.definitions("HttpClient"):  # until the watcher sees it: pytest-timeout is the hang guard
            time.sleep(0.02)
        assert watcher.wait_idle()
    assert background.wait_idle(120)
    background.stop()
    assert not background.errors and not store.definitions("HttpClient")
    assert vectors.size == 1
    assert [r[0] for r in store.conn.execute("SELECT DISTINCT path FROM chunks")] == ["geometry.py"]


class StopsAfter(threading.Event):
    """An event that reads as set from its `calls`-th look on: where a sync looks is what is tested."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.looks, self.calls = 0, calls

    def is_set(self) -> bool:
        self.looks += 1
        return self.looks >= self.calls or super().is_set()


def test_a_stop_inside_a_files_embedding_ends_the_sync_between_batches(
    tmp_path: Path, embedder: LlamaEmbedder
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "many.py").write_text("".join(f"def handler_{i}(x):\n    return x + {i}\n\n" for i in range(100)))
    store = IndexStore(tmp_path / "cache" / "index.sqlite")
    build_index(store, root)
    vectors = VectorIndex.for_store(store, embedder.dim)
    stop = StopsAfter(3)  # the sync's look before the file, the first batch's, then the second batch's: stop

    stopped = sync_vectors(store, root, vectors, embedder, stop=stop)

    assert stop.looks == 3 and stopped.files == 0 and vectors.size == 0  # the file is left for the next sync
    assert store.conn.execute("SELECT COUNT(*) FROM vector_files").fetchone()[0] == 0
    assert sync_vectors(store, root, vectors, embedder).added == 100
