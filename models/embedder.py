"""Text embeddings from a local GGUF model on llama-cpp-python: the model's own pooling (mean for a chat
model, which declares none), batched, L2-normalized."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from models import catalog
from models.base import ModelUnavailable
from models.local import PROVIDER, check_gguf
from models.threads import default_threads

if TYPE_CHECKING:
    import llama_cpp
    import numpy as np

_DEFAULT_CONTEXT = 512
"""Tokens per text: bge-small's limit, and plenty for a function-level chunk's head."""
_TEXTS_PER_CALL = 32
_RECENT_TEXTS = 16
_POOLING_NAMES = {1: "mean", 2: "cls", 3: "last", 4: "rank"}
"""llama.cpp's pooling types (`enum llama_pooling_type`) by number."""


class LlamaEmbedder:
    """An embedding model loaded once; `embed` returns one unit-length row per text.

    Texts longer than the context are truncated to their first tokens (a chunk's header and
    signature come first, so the part that names it is kept).
    """

    def __init__(self, path: Path, context_tokens: int = _DEFAULT_CONTEXT, threads: int | None = None,
                 query_prefix: str = "", document_prefix: str = "") -> None:
        self.path = path
        self.context_tokens = context_tokens
        self.threads = threads
        self.query_prefix = query_prefix
        """Put before a search query (`search_query: ` for nomic-embed-text): what the model was trained with."""
        self.document_prefix = document_prefix
        """Put before each text `embed` is given (a chunk of code, `search_document: ` for nomic-embed-text)."""
        self._llm: llama_cpp.Llama | None = None
        self._lock = threading.RLock()
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        """The last few single texts embedded (a question is embedded for the caches and for search)."""

    @property
    def name(self) -> str:
        """Identifies the model and its pooling, so vectors from another model are never mixed in."""
        try:
            size = self.path.stat().st_size
        except OSError:
            size = 0
        name = f"{self.path.name}:{size}:{_POOLING_NAMES.get(self.llm.pooling_type(), 'other')}"
        if self.query_prefix or self.document_prefix:  # vectors made without them are not to be mixed in
            name += ":" + hashlib.sha256(f"{self.query_prefix}\0{self.document_prefix}".encode()).hexdigest()[:8]
        return name

    @classmethod
    def for_model(cls, name: str, path: Path, threads: int | None = None) -> LlamaEmbedder:
        """The embedder of an installed model: a catalog model gets the prefixes its model card asks for."""
        known = catalog.entry(name)
        return cls(path, threads=threads, query_prefix=known.query_prefix if known else "",
                   document_prefix=known.document_prefix if known else "")

    @property
    def dim(self) -> int:
        """Length of each embedding vector."""
        return int(self.llm.n_embd())

    @property
    def llm(self) -> llama_cpp.Llama:
        """The llama.cpp model in embedding mode, loaded on first use."""
        if self._llm is None:
            with self._lock:
                if self._llm is None:
                    self._llm = self._load()
        return self._llm

    def _load(self) -> llama_cpp.Llama:
        check_gguf(self.path)
        import llama_cpp

        try:
            llm = self._open(llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED)
            if llm.pooling_type() == llama_cpp.LLAMA_POOLING_TYPE_NONE:  # a chat model: it declares no pooling
                llm.close()
                llm = self._open(llama_cpp.LLAMA_POOLING_TYPE_MEAN)
        except (ValueError, RuntimeError) as exc:
            raise ModelUnavailable(
                f"embedding model {self.path} could not be loaded ({exc})", provider=PROVIDER
            ) from None
        return llm

    def _open(self, pooling_type: int) -> llama_cpp.Llama:
        import llama_cpp

        return llama_cpp.Llama(
            model_path=str(self.path),
            embedding=True,
            pooling_type=pooling_type,
            n_ctx=self.context_tokens,
            n_batch=self.context_tokens,
            n_ubatch=self.context_tokens,
            n_threads=self.threads or default_threads(),
            n_gpu_layers=0,
            verbose=False,
        )

    def embed_query(self, text: str) -> np.ndarray:
        """One search query's unit-length vector (after the model's query prefix)."""
        return self._embed([self.query_prefix + text])[0]

    def embed(self, texts: list[str], stop: threading.Event | None = None) -> np.ndarray:
        """Embeddings of `texts` (documents: after the model's document prefix) as a float32 array of shape
        (len(texts), dim), rows L2-normalized; when `stop` is set between two batches, the rows done so far (a
        closing index does not wait for a whole file)."""
        return self._embed([self.document_prefix + t for t in texts], stop)

    def _embed(self, texts: list[str], stop: threading.Event | None = None) -> np.ndarray:
        import numpy as np
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows: list[list[float]] = []
        with self._lock:
            if len(texts) == 1 and texts[0] in self._recent:
                self._recent.move_to_end(texts[0])
                return self._recent[texts[0]].copy()
            llm = self.llm
            for start in range(0, len(texts), _TEXTS_PER_CALL):
                if stop is not None and stop.is_set():
                    break
                batch = [t if t.strip() else " " for t in texts[start : start + _TEXTS_PER_CALL]]
                rows.extend(llm.embed(batch, normalize=False, truncate=True))
            vectors = normalize(np.asarray(rows, dtype=np.float32).reshape(len(rows), self.dim))
            if len(texts) == 1 and len(vectors) == 1:
                self._recent[texts[0]] = vectors.copy()
                if len(self._recent) > _RECENT_TEXTS:
                    self._recent.popitem(last=False)
        return vectors

    def close(self) -> None:
        """Free the model."""
        with self._lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    import numpy as np
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)
