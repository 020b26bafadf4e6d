"""The embedder uses the pooling an embedding model declares, and mean pooling for a chat model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.minilm_gguf import write_bert_gguf
from models.embedder import LlamaEmbedder

_HIDDEN, _FFN, _POSITIONS = 8, 16, 64
_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s"]


def _tiny_bert(path: Path, pooling: str) -> Path:
    """A one-layer BERT with fixed random weights, written as a GGUF with the given pooling."""
    rng = np.random.default_rng(7)
    config = {"max_position_embeddings": _POSITIONS, "hidden_size": _HIDDEN, "intermediate_size": _FFN,
              "num_hidden_layers": 1, "num_attention_heads": 2, "layer_norm_eps": 1e-12, "type_vocab_size": 2}
    shapes = {
        "embeddings.word_embeddings.weight": (len(_VOCAB), _HIDDEN),
        "embeddings.position_embeddings.weight": (_POSITIONS, _HIDDEN),
        "embeddings.token_type_embeddings.weight": (2, _HIDDEN),
        "embeddings.LayerNorm.weight": (_HIDDEN,), "embeddings.LayerNorm.bias": (_HIDDEN,),
    }
    layer = "encoder.layer.0."
    for part in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
        shapes[f"{layer}{part}.weight"] = (_HIDDEN, _HIDDEN)
        shapes[f"{layer}{part}.bias"] = (_HIDDEN,)
    shapes |= {
        f"{layer}intermediate.dense.weight": (_FFN, _HIDDEN), f"{layer}intermediate.dense.bias": (_FFN,),
        f"{layer}output.dense.weight": (_HIDDEN, _FFN), f"{layer}output.dense.bias": (_HIDDEN,),
    }
    for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
        shapes[f"{layer}{norm}.weight"] = (_HIDDEN,)
        shapes[f"{layer}{norm}.bias"] = (_HIDDEN,)
    tensors = [(name, rng.standard_normal(shape).astype(np.float32)) for name, shape in shapes.items()]
    write_bert_gguf(config, pooling, _VOCAB, tensors, path)
    return path


@pytest.mark.timeout(120)
def test_an_embedding_model_keeps_its_own_pooling(tmp_path: Path) -> None:
    cls = LlamaEmbedder(_tiny_bert(tmp_path / "cls.gguf", "cls"), context_tokens=32, threads=1)
    mean = LlamaEmbedder(_tiny_bert(tmp_path / "mean.gguf", "mean"), context_tokens=32, threads=1)
    try:
        assert cls.name.endswith(":cls") and mean.name.endswith(":mean")
        by_cls, by_mean = cls.embed(["hello worlds"])[0], mean.embed(["hello worlds"])[0]
        assert np.linalg.norm(by_cls) == pytest.approx(1.0, abs=1e-5)
        assert float(by_cls @ by_mean) < 0.999  # same weights, another pooling: another vector
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
