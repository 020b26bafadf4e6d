"""A one-layer BERT with fixed random weights as a GGUF: a real embedding model (declared pooling, WordPiece
vocabulary) small enough to write in a test."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.minilm_gguf import write_bert_gguf

_HIDDEN, _FFN, _POSITIONS = 8, 16, 512
_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s"]


def tiny_bert(path: Path, pooling: str) -> Path:
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
