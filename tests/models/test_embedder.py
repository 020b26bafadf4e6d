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
