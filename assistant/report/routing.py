"""What imported prompts would have cost routed by Tiercode: each prompt planned as `ask --dry-run` plans it
(pre-flight, the router, each tier's context and estimate; no model call), priced at the tier it would start at."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.errors import TiercodeError
from assistant.pipeline import NO_TIER, Pipeline
from assistant.report.usage import Prompt
from assistant.session import Session

Planner = Callable[[str], tuple[str, str, float]]
"""A prompt's start tier, kind and the most its call there could cost."""
MAX_PROMPT_CHARS = 20_000
"""A longer prompt (a pasted log) is planned from its first this many characters."""


@dataclass
class RoutedPrompt:
    """One prompt's plan beside what the imported tool spent on it."""

    prompt: Prompt
    start_tier: str
    kind: str
    tiercode_usd: float
    imported_usd: float


@dataclass
class RoutingEstimate:
    """The imported prompts routed by Tiercode, or why they were not."""

    prompts: int
    routed: list[RoutedPrompt] = field(default_factory=list)
    note: str = ""
    """Why nothing was routed (no prompts, a repository Tiercode cannot open)."""

    @property
    def scale(self) -> float:
        """Prompts per routed prompt: the routed sample's sums times this estimate all prompts."""
        return self.prompts / len(self.routed) if self.routed else 0.0

    @property
    def sampled(self) -> bool:
        """Whether only some prompts were routed (`--route-limit`)."""
        return 0 < len(self.routed) < self.prompts

    @property
    def start_tiers(self) -> dict[str, int]:
        """Routed prompts per start tier, most first."""
        return dict(Counter(r.start_tier for r in self.routed).most_common())

    @property
    def unanswerable(self) -> int:
        """Routed prompts no configured tier could answer here (no key, no local model): left out of the sums."""
        return sum(r.start_tier == NO_TIER for r in self.routed)

    def sums(self, free_only: bool = False) -> tuple[int, float, float]:
        """Routed prompts some tier could answer (only those that start at a $0 tier, with `free_only`), what the
        imported tool spent on them and what Tiercode's start tier could cost at most."""
        chosen = [r for r in self.routed if r.start_tier != NO_TIER and (not free_only or r.tiercode_usd == 0)]
        return len(chosen), sum(r.imported_usd for r in chosen), sum(r.tiercode_usd for r in chosen)

    def to_json(self) -> dict[str, Any]:
        """The estimate's figures."""
        count, imported, tiercode = self.sums()
        free, free_imported, _ = self.sums(free_only=True)
        return {"prompts": self.prompts, "routed": len(self.routed), "answerable": count, "sampled": self.sampled,
                "scale": round(self.scale, 6),
                "start_tiers": self.start_tiers, "imported_usd": round(imported, 6),
                "tiercode_max_usd": round(tiercode, 6), "free_start_prompts": free,
                "free_start_imported_usd": round(free_imported, 6), "unanswerable": self.unanswerable,
                "note": self.note}


def sample(prompts: Sequence[Prompt], limit: int) -> list[Prompt]:
    """At most `limit` prompts, spread evenly over the whole history (all of them when there are few enough)."""
    if limit <= 0:
        return []
    if len(prompts) <= limit:
        return list(prompts)
    return [prompts[i * len(prompts) // limit] for i in range(limit)]


def route_prompts(prompts: Sequence[Prompt], spent: dict[str, float], planner: Planner,
                  limit: int) -> RoutingEstimate:
    """Plan a sample of `prompts` with `planner`, beside what each cost in the import (`spent` by prompt id)."""
    estimate = RoutingEstimate(len(prompts))
    for prompt in sample(prompts, limit):
        try:
            tier, kind, cost = planner(prompt.text[:MAX_PROMPT_CHARS])
        except TiercodeError as exc:
            estimate.note = f"a prompt could not be planned: {exc}"
            continue
        estimate.routed.append(RoutedPrompt(prompt, tier, kind, cost, spent.get(prompt.id, 0.0)))
    return estimate


@contextmanager
def dry_run_planner(repo: Path, settings: Settings) -> Iterator[Planner]:
    """A planner over `repo`: `Pipeline.plan`, the same dry run `ask --dry-run` prints, on one session."""
    session = Session(repo, settings)
    try:
        session.store()  # a repository with nothing to index is one error here, not one per prompt
        pipeline = Pipeline(session)

        def plan(text: str) -> tuple[str, str, float]:
            planned = pipeline.plan(text)
            cost = next((t.estimated_cost_usd for t in planned.tiers if t.tier == planned.start_tier), 0.0)
            return planned.start_tier, planned.route.kind, cost

        yield plan
    finally:
        session.close()
