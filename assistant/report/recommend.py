"""Recommendations: rules over a report's numbers, each with a projected saving and the figures it rests on, so
a reader can redo the arithmetic. An assumption a rule makes (what share of a cost could go) is a figure too."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from assistant.accounting.money import usd
from assistant.report.routing import RoutingEstimate
from assistant.report.usage import UsageRecord, category_usd, model_price
from models import pricing

CACHE_WRITE_SHARE = 0.15
"""Cache writes above this share of the spend are worth a look."""
WRITES_TURNED_TO_READS = 0.5
"""The assumed share of cache writes a stable prefix turns into reads."""
OUTPUT_SHARE = 0.30
"""Output above this share of the spend is worth a look."""
OUTPUT_CUT = 0.25
"""The assumed share of output tokens that answer limits and a lower thinking effort remove."""
MODEL_SAVING_SHARE = 0.05
"""A cheaper model is recommended when it saves at least this share of the spend."""
_PER_TOKEN = 1_000_000


@dataclass(frozen=True)
class Recommendation:
    """One thing to change, what it would save, and the numbers behind it."""

    id: str
    title: str
    action: str
    saving_usd: float
    figures: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Its fields, dollars rounded to the micro-dollar."""
        figures = {k: round(v, 6) if isinstance(v, float) else v for k, v in self.figures.items()}
        return {"id": self.id, "title": self.title, "action": self.action,
                "saving_usd": round(self.saving_usd, 6), "figures": figures}


def recommendations(records: list[UsageRecord], total: float, routing: RoutingEstimate | None,
                    imported_from: str = "") -> list[Recommendation]:
    """Every rule that applies, the largest saving first."""
    found = [cache_writes(records, total), output_share(records, total), *cheaper_models(records, total),
             routed(routing, imported_from or "the imported tool")]
    return sorted((r for r in found if r is not None and r.saving_usd > 0), key=lambda r: -r.saving_usd)


def cache_writes(records: Iterable[UsageRecord], total: float) -> Recommendation | None:
    """Cache writes dear beside the reads they buy: a prefix that changes (or expires) is written again."""
    written = read = 0
    write_usd = as_reads_usd = 0.0
    for record in records:
        if record.rates is None:
            continue
        costs = category_usd(record.tokens, record.rates)
        written += record.tokens.cache_writes
        read += record.tokens.cache_read
        write_usd += costs["cache_write_5m"] + costs["cache_write_1h"]
        as_reads_usd += record.tokens.cache_writes * record.rates.cache_read / _PER_TOKEN
    if total <= 0 or write_usd < CACHE_WRITE_SHARE * total:
        return None
    saving = WRITES_TURNED_TO_READS * (write_usd - as_reads_usd)
    reads_per_write = read / written if written else 0.0
    return Recommendation(
        "cache-writes", "Write the cached prefix less often",
        f"Cache writes cost {usd(write_usd)} ({write_usd / total:.0%} of the spend), and each token written was read "
        f"back {reads_per_write:.1f} times. Keep the prefix stable (the instructions, tool list and earlier turns "
        f"unchanged within a session) and come back within the cache's lifetime; if {WRITES_TURNED_TO_READS:.0%} of "
        f"these writes were reads instead, {usd(saving)} is saved.",
        saving,
        {"cache_write_tokens": written, "cache_read_tokens": read, "reads_per_written_token": round(reads_per_write, 3),
         "cache_write_usd": write_usd, "share_of_spend": round(write_usd / total, 4),
         "same_tokens_as_reads_usd": as_reads_usd, "assumed_writes_turned_to_reads": WRITES_TURNED_TO_READS},
    )


def output_share(records: Iterable[UsageRecord], total: float) -> Recommendation | None:
    """Output (thinking included) a large share of the spend: answer limits and effort by kind."""
    tokens = 0
    output_usd = 0.0
    for record in records:
        tokens += record.tokens.output
        output_usd += category_usd(record.tokens, record.rates)["output"]
    if total <= 0 or output_usd < OUTPUT_SHARE * total:
        return None
    saving = OUTPUT_CUT * output_usd
    return Recommendation(
        "output", "Shorter answers and less thinking where the kind allows",
        f"Output, thinking included, cost {usd(output_usd)} ({output_usd / total:.0%} of the spend). Limit answers "
        f"by kind and ask for a lower thinking effort for lookups and explanations (Tiercode: [answers] max_tokens "
        f"and effort); {OUTPUT_CUT:.0%} fewer output tokens save {usd(saving)}.",
        saving,
        {"output_tokens": tokens, "output_usd": output_usd, "share_of_spend": round(output_usd / total, 4),
         "assumed_output_cut": OUTPUT_CUT},
    )


def cheaper_models(records: Iterable[UsageRecord], total: float) -> list[Recommendation]:
    """Models dearer than the Sonnet tier's model: the same tokens priced at its rates, day by day."""
    target = pricing.default_model("sonnet")
    target_price = pricing.price(target)
    spent: dict[str, float] = defaultdict(float)
    repriced: dict[str, float] = defaultdict(float)
    tokens: dict[str, int] = defaultdict(int)
    for record in records:
        entry = model_price(record.model)
        if record.rates is None or entry is None or entry.model == target:
            continue
        rates = target_price.rates_on(dt.date.fromisoformat(record.day))
        spent[entry.model] += record.cost_usd
        repriced[entry.model] += sum(category_usd(record.tokens, rates).values())
        tokens[entry.model] += sum(record.tokens.by_category().values())
    found = []
    for model, cost in spent.items():
        saving = cost - repriced[model]
        if total <= 0 or saving < MODEL_SAVING_SHARE * total:
            continue
        found.append(Recommendation(
            f"model:{model}", f"Move {model}'s work to {target}",
            f"{model} cost {usd(cost)} ({cost / total:.0%} of the spend); the same {tokens[model]:,} tokens on "
            f"{target} (the sonnet tier's model) cost {usd(repriced[model])}. Use it for the work that does not need "
            f"{model}: up to {usd(saving)} saved.",
            saving,
            {"model": model, "tokens": tokens[model], "cost_usd": cost, "target_model": target,
             "same_tokens_on_target_usd": repriced[model], "share_of_spend": round(cost / total, 4)},
        ))
    return found


def routed(routing: RoutingEstimate | None, imported_from: str) -> Recommendation | None:
    """Imported prompts that Tiercode's router starts at the index, a free tier or a cheaper model."""
    if routing is None or not routing.routed:
        return None
    count, spent, tiercode = routing.sums()
    free, free_spent, _ = routing.sums(free_only=True)
    saving = routing.scale * (spent - tiercode)
    sample = f" (a sample of {routing.prompts:,}, scaled by {routing.scale:.2f})" if routing.sampled else ""
    return Recommendation(
        "routing", "Ask Tiercode first",
        f"Routed as `tiercode ask --dry-run` routes them, {free} of {count} prompts{sample} start at the index or a "
        f"free tier, on which {imported_from} spent {usd(free_spent)}; on all {count} it spent {usd(spent)}, and "
        f"Tiercode's start tier could cost at most {usd(tiercode)}. An agent's turn does more than one answer (tools, "
        f"edits, test runs) and an escalation adds the next tier's call, so {usd(saving)} is an upper bound.",
        saving,
        {k: v for k, v in routing.to_json().items() if k != "note"},
    )
