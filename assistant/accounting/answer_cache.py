"""The pipeline's view of the response caches: exact hits per tier, semantic hits per question."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from assistant.accounting.cache import CacheHit, FileRef, ResponseCache, embedding_text
from indexer.sqlitedb import is_corruption
from models.base import Usage

if TYPE_CHECKING:
    from assistant.context.builder import Context
    from assistant.session import Session
    from models.base import GenerationRequest, GenerationResult

T = TypeVar("T")


@dataclass(frozen=True)
class CacheKey:
    """What an answer to one request is cached under: the prompt as sent and its parameters, the context's hash
    and the files it was built from (each with its hash then: a later change to one invalidates the entry), and
    the sources the answer is shown with."""

    prompt: str
    params: dict[str, Any]
    context_hash: str
    files: list[FileRef]
    sources: list[dict[str, Any]]

    def to_json(self) -> str:
        """The key as text, kept with a batched request until its answer is collected."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> CacheKey:
        data = json.loads(text)
        return cls(data["prompt"], data["params"], data["context_hash"], [tuple(f) for f in data["files"]],
                   data["sources"])


class AnswerCache:
    """Looks answers up before a tier is called and remembers each tier's answer and verdict.

    A rejected answer is remembered too (with the reason), so asking again escalates past that tier
    at once instead of paying for the same weak answer twice.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.cache: ResponseCache = session.cache()

    def exact(self, tier: str, model: str, request: GenerationRequest, context: Context) -> CacheHit | None:
        """The cached answer of `model` to exactly this prompt and context, if still valid."""
        key = self.key(request, context)
        return self._guarded(lambda: self.cache.lookup(
            model=model, prompt=key.prompt, context_hash=key.context_hash, params=key.params, files=key.files,
            root=self.session.repo,
        ))

    def _guarded(self, work: Callable[[], T]) -> T | None:
        """`work`'s result; None when it finds the cache file damaged, which is then set aside for a new one
        (it is only a cache: the question goes on without it)."""
        try:
            return work()
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise
            self.cache = self.session.replace_cache(str(exc))
            return None

    def key(self, request: GenerationRequest, context: Context) -> CacheKey:
        """What `request`, built over `context`, is cached under."""
        return CacheKey(_prompt(request), _params(request), context.content_hash, self._files(context),
                        [s.__dict__ for s in context.sources])

    def remember(
        self, tier: str, request: GenerationRequest, context: Context, question: str, kind: str,
        result: GenerationResult, cost_usd: float, rejected: str, first_context: Context,
        confidence: float | None = None,
    ) -> None:
        """Store one tier's answer with its verdict's score; an accepted one asked outside a conversation also
        becomes findable by similar questions."""
        key = self.key(request, context)
        meta = _meta(key, confidence, rejected)
        embedding, embedder = (None, "")
        standalone = sum(m.role == "user" for m in request.messages) == 1
        if not rejected and standalone:  # a follow-up's answer depends on turns a later asker lacks
            embedding, embedder = self._embed(question)
        self.remember_at(tier, key, question, kind, result, cost_usd, confidence, rejected)
        if embedding is not None:  # the semantic entry is keyed on the starting tier's context
            self._guarded(lambda: self.cache.store(
                model=result.model, tier=tier, prompt=f"semantic:{question}", context_hash=first_context.content_hash,
                answer=result.text, files=self._files(first_context) + key.files, question=question, kind=kind,
                usage=result.usage, cost_usd=cost_usd, meta=meta, embedding=embedding, embedder=embedder,
            ))

    def remember_at(self, tier: str, key: CacheKey, question: str, kind: str, result: GenerationResult,
                    cost_usd: float, confidence: float | None = None, rejected: str = "") -> None:
        """Store an answer and its verdict under its exact key (a batched answer is stored so when collected)."""
        self._guarded(lambda: self.cache.store(
            model=result.model, tier=tier, prompt=key.prompt, context_hash=key.context_hash, answer=result.text,
            params=key.params, files=key.files, question=question, kind=kind, usage=result.usage, cost_usd=cost_usd,
            meta=_meta(key, confidence, rejected),
        ))

    def semantic(self, question: str, kind: str, context: Context) -> CacheHit | None:
        """An earlier answer to a question that means the same, over the same context."""
        embedding, embedder = self._embed(question)
        if embedding is None:
            return None
        return self._guarded(lambda: self.cache.semantic_lookup(
            question=question, embedding=embedding, embedder=embedder, context_hash=context.content_hash,
            kind=kind, files=self._files(context), root=self.session.repo,
        ))

    def _embed(self, question: str) -> tuple[Any, str]:
        embedder = self.session.semantic_embedder()
        if embedder is None:
            return None, ""
        return embedder.embed_query(embedding_text(question)), embedder.name

    def _files(self, context: Context) -> list[FileRef]:
        hashes = self.session.store().file_hashes(s.path for s in context.sources)
        return sorted(hashes.items())


def _meta(key: CacheKey, confidence: float | None, rejected: str) -> dict[str, Any]:
    """What an entry keeps beside the answer: its sources, its verdict's score and, if rejected, why."""
    return {"sources": key.sources, "confidence": confidence, **({"rejected": rejected} if rejected else {})}


def _prompt(request: GenerationRequest) -> str:
    return "\n\n".join(f"{m.role}: {m.content}" for m in request.messages)


def _params(request: GenerationRequest) -> dict[str, Any]:
    return {"max_tokens": request.max_tokens, "temperature": request.temperature}


def hit_usage(hit: CacheHit) -> Usage:
    """The tokens a cached answer took when it was made (what the all-Sonnet counterfactual counts)."""
    return Usage(hit.input_tokens, hit.output_tokens, hit.cache_read_tokens, hit.cache_write_tokens)


def hit_confidence(hit: CacheHit) -> float | None:
    """The score the cached answer was judged by when it was made; None for one cached before it was kept."""
    score = (hit.meta or {}).get("confidence")
    return float(score) if isinstance(score, int | float) else None
