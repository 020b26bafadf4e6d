"""Which questions of a batch are answered at once and which go to a provider's batch.

`BatchTriage` is the pipeline with one difference: each question's cascade runs the free tiers from its
start tier as `ask` would (pre-flight, the caches, the local model or a declared free tier, each judged),
and where `ask` would call a paid tier it stops and hands over the request the cascade built for the
batch tier, the same context, system prefix and `max_tokens`. The batch tier is the first priced tier
from the question's start tier whose backend can batch (else the strongest one below it), or the one
`--tier` names; paid tiers that cannot batch are not called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assistant.accounting.answer_cache import AnswerCache, CacheKey, hit_usage
from assistant.accounting.ledger import new_id
from assistant.answer import Answer
from assistant.batch.jobs import Job
from assistant.cascade.estimates import estimate
from assistant.context.builder import Context
from assistant.context.conversation import History
from assistant.context.pinned import PinnedFiles
from assistant.errors import UsageError
from assistant.pipeline import Pipeline
from assistant.route.answer_shape import AnswerShape
from assistant.route.router import Route
from assistant.session import Session
from models.base import Backend, GenerationRequest, ModelUnavailable, capabilities_of
from models.batching import batches_of


@dataclass(frozen=True)
class Deferred:
    """A question for the batch: the request its batch tier would be sent, and what it can cost there."""

    job: Job
    query_id: str
    route: Route
    tier: str
    provider: str
    model: str
    request: GenerationRequest
    estimated_usd: float
    """The most the request can cost at the batch price."""
    cache_key: CacheKey
    """What its answer is cached under when collected."""


class _BatchTierReached(Exception):
    """The cascade got to the batch tier: the request it built for it, to be batched instead of sent."""

    def __init__(self, tier: str, backend: Backend, context: Context, request: GenerationRequest) -> None:
        super().__init__(tier)
        self.tier, self.backend, self.context, self.request = tier, backend, context, request


class BatchTriage(Pipeline):
    """Answers at once what pre-flight, the caches and the free tiers can; defers the rest to a batch tier."""

    def __init__(self, session: Session, forced_tier: str | None = None) -> None:
        super().__init__(session)
        self.batch_tiers = [t for t in session.tiers.order() if self._can_batch(t)]
        """The configured tiers that can batch, cheapest first."""
        if forced_tier is not None and forced_tier not in self.batch_tiers:
            raise UsageError(f"tier '{forced_tier}' cannot take a batch here (tiers that can: "
                             f"{', '.join(self.batch_tiers) or 'none'}); name one of them with --tier")
        self.forced = forced_tier
        self._target = ""
        self._route_seen: Route | None = None
        self._query_id = ""

    def triage(self, job: Job) -> Answer | Deferred:
        """The job's answer when one came at once, else its request for the batch."""
        self.pinned = PinnedFiles(self.session.repo, list(job.files))
        self._route_seen, self._query_id = None, ""
        try:
            return self.ask(job.question)
        except _BatchTierReached as reached:
            return self._cached(job, reached) or self._deferred(job, reached)
        finally:
            self.pinned = PinnedFiles(self.session.repo)

    # -- the pipeline's steps, changed ------------------------------------------------------------

    def tier_order(self, start: str, forced: str | None) -> list[str]:
        """The free tiers from the start tier up to the batch tier, then the batch tier."""
        order = super().tier_order(start, forced)
        below = super().fallback_order(start, forced)
        self._target = self.forced or next((t for t in [*order, *below] if t in self.batch_tiers), "")
        if not self._target:  # what the index or a cache answers needs none: only a question to batch does
            raise UsageError(self._no_batch_tier())
        before = order[: order.index(self._target)] if self._target in order else []
        return [*(t for t in before if self.session.tiers.spec(t).free), self._target]

    def _no_batch_tier(self) -> str:
        """Why no tier can take the batch, and what to do."""
        if self.session.settings.offline:
            return "offline, no tier can take a batch: batches go to a provider's API; run without --offline"
        return ("no configured tier can take a batch: batches go to a priced anthropic or gemini tier with its key "
                "set (ANTHROPIC_API_KEY, GEMINI_API_KEY)")

    def fallback_order(self, start: str, forced: str | None) -> list[str]:
        """None: the batch tier is always in the queue, and it always takes the question."""
        return []

    def shape_for(self, route: Route) -> AnswerShape:
        """The answer's shape, noting the question's route (kept with a batched request for its ledger record)."""
        self._route_seen = route
        return super().shape_for(route)

    def request_for(
        self, tier: str, question: str, context: Context, backend: Backend, history: History,
        shape: AnswerShape | None = None,
    ) -> GenerationRequest:
        """The request as the cascade builds it; at the batch tier, handed over instead of sent."""
        request = super().request_for(tier, question, context, backend, history, shape)
        if tier == self._target:
            raise _BatchTierReached(tier, backend, context, request)
        return request

    def record(self, query_id: str, *args: Any, **details: Any) -> None:
        """A ledger record, noting the question's id (a batched answer is recorded under it too)."""
        self._query_id = query_id
        super().record(query_id, *args, **details)

    # -- helpers ------------------------------------------------------------------------------------

    def _can_batch(self, tier: str) -> bool:
        if self.session.tiers.spec(tier).free:
            return False
        try:
            backend = self.session.tiers.get(tier)
        except ModelUnavailable:
            return False
        return capabilities_of(backend).batch and batches_of(backend) is not None

    def _cached(self, job: Job, reached: _BatchTierReached) -> Answer | None:
        """The batch tier's cached answer to exactly this request (not one cached as rejected), recorded at $0."""
        hit = AnswerCache(self.session).exact(reached.tier, reached.backend.model, reached.request, reached.context)
        if hit is None or (hit.meta or {}).get("rejected"):
            return None
        query_id = self._query_id or new_id()
        route = self._route_seen
        self.record(query_id, hit.tier, "cache", hit.model, "cache_hit", route=route, usage=hit_usage(hit),
                    cached=True)
        return Answer(hit.answer, hit.tier, hit.model, route.kind if route else "", route.difficulty if route else "",
                      cached=True, sources=reached.context.sources, query_id=query_id)

    def _deferred(self, job: Job, reached: _BatchTierReached) -> Deferred:
        spec = self.session.tiers.spec(reached.tier)
        assert self._route_seen is not None  # the cascade runs only after the route is known
        cost = estimate(spec, reached.backend, reached.request) * spec.batch_factor
        return Deferred(job, self._query_id or new_id(), self._route_seen, reached.tier, reached.backend.provider,
                        reached.backend.model, reached.request, cost,
                        AnswerCache(self.session).key(reached.request, reached.context))
