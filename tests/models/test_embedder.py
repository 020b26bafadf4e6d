"""The embedder uses the pooling an embedding model declares, and mean pooling for a chat model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.embedder import LlamaEmbedder
from tests.models.tiny_bert import tiny_bert


@pytest.mark.timeout(120)
def test_an_embedding_model_keeps_its_own_pooling(tmp_path: Path) -> None:
    cls = LlamaEmbedder(tiny_bert(tmp_path / "cls.gguf", "cls"), context_tokens=32, threads=1)
    mean = LlamaEmbedder(tiny_bert(tmp_path / "mean.gguf", "mean"), context_tokens=32, threads=1)
    try:
        assert cls.name.endswith(":cls") and mean.name.endswith(":mean")
        by_cls, by_mean = cls.embed(["hello worlds"])[0], mean.embed(["hello worlds"])[0]
        assert np.linalg.norm(by_cls) == pytest.approx(1.0, abs=1e-5)
        assert np.abs(by_cls - by_mean).max() > 1e-3  # same weights, another pooling: another vector
    finally:
        cls.close()
        mean.close()


@pytest.mark.timeout(120)
def test_a_chat_model_is_mean_pooled(quickstart_gguf: Path) -> None:
    embedder = LlamaEmbedder(quickstart_gguf, context_tokens=64, threads=1)
    try:
        assert embedder.name.endswith(":mean")
        assert embedder.embed(["read a file"]).shape == (1, embedder.dim)
    finally:
        embedder.close()


@pytest.mark.timeout(120)
def test_a_catalog_embedder_puts_its_model_s_prefixes_before_queries_and_documents(tmp_path: Path) -> None:
    """nomic-embed-text was trained with `search_query: ` and `search_document: ` before its texts; without
    them its retrieval is not what its card measures. Real weights (a tiny BERT) stand in for the model."""
    gguf = tiny_bert(tmp_path / "nomic.gguf", "mean")
    nomic = LlamaEmbedder.for_model("nomic-embed-text", gguf, threads=1)
    plain = LlamaEmbedder.for_model(str(gguf), gguf, threads=1)  # a GGUF path: no prefixes
    try:
        assert np.allclose(nomic.embed_query("read a file"), plain.embed(["search_query: read a file"])[0], atol=1e-5)
        assert np.allclose(nomic.embed(["def read(path): ..."])[0],
                           plain.embed(["search_document: def read(path): ..."])[0], atol=1e-5)
        assert np.allclose(plain.embed_query("read a file"), plain.embed(["read a file"])[0], atol=1e-5)
        assert nomic.name != plain.name  # vectors made without the prefixes are never mixed with these
    finally:
        nomic.close()
        plain.close()
