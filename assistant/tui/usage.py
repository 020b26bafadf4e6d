"""What the stats screen shows, computed from ledger records: cost per day, share by tier, cache, savings."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rich.text import Text

from assistant.accounting.ledger import CallRecord
from assistant.accounting.money import usd
from assistant.accounting.stats import is_free

_BLOCKS = " ▁▂▃▄▅▆▇█"
_ANSWERED = ("ok", "cache_hit")


@dataclass(frozen=True)
class TierShare:
    """One tier's part of the answered questions and of the money."""

    tier: str
    answers: int
    cost_usd: float


@dataclass(frozen=True)
class UsageReport:
    """Everything the stats screen draws."""

    days: tuple[tuple[dt.date, float], ...]
    """Cost per calendar day (local time), oldest first, one entry per day of the window."""
    tiers: tuple[TierShare, ...]
    """Answers and cost per tier, most answers first."""
    answers: int
    """Questions answered (by the tier that gave the final answer)."""
    cache_hits: int
    total_cost_usd: float
    savings_usd: float | None
    """What the free answers would have cost at the reference price; None without a price list."""

    @property
    def cache_hit_rate(self) -> float:
        """Share of answered questions served from a cache."""
        return self.cache_hits / self.answers if self.answers else 0.0


def usage_report(
    records: Iterable[CallRecord],
    today: dt.date,
    days: int = 30,
    reference_price: Callable[[CallRecord], float] | None = None,
) -> UsageReport:
    """Aggregate ledger records for the last `days` days ending `today`.

    Args:
        reference_price: what a record's tokens would have cost at a cloud tier; used for savings.
    """
    first = today - dt.timedelta(days=days - 1)
    per_day: dict[dt.date, float] = defaultdict(float)
    final: dict[str, CallRecord] = {}
    spent_by_tier: dict[str, float] = defaultdict(float)
    total = 0.0
    for record in records:
        day = dt.datetime.fromtimestamp(record.ts).date()
        if day < first or day > today:
            continue
        per_day[day] += record.cost_usd
        spent_by_tier[record.tier] += record.cost_usd
        total += record.cost_usd
        if record.outcome in _ANSWERED:
            final[record.query_id] = record  # the last answered call of a query is its answer
    counts = Counter("cache" if r.outcome == "cache_hit" else r.tier for r in final.values())
    tiers = sorted({*counts, *spent_by_tier}, key=lambda t: (-counts[t], -spent_by_tier[t], t))
    savings = None
    if reference_price is not None:
        savings = sum(reference_price(r) for r in final.values() if is_free(r) or r.cached)
    return UsageReport(
        days=tuple((first + dt.timedelta(days=i), per_day[first + dt.timedelta(days=i)]) for i in range(days)),
        tiers=tuple(TierShare(t, counts[t], spent_by_tier[t]) for t in tiers),
        answers=len(final),
        cache_hits=sum(1 for r in final.values() if r.cached or r.outcome == "cache_hit"),
        total_cost_usd=total,
        savings_usd=savings,
    )


def cost_chart(days: Sequence[tuple[dt.date, float]], height: int = 8) -> Text:
    """A column chart of cost per day: one two-cell column per day, dates under the first and last."""
    peak = max((cost for _, cost in days), default=0.0)
    text = Text()
    text.append(f"{usd(peak)}\n" if peak else "no spending in this period\n", style="dim")
    for row in range(height, 0, -1):
        for _, cost in days:
            eighths = round(cost / peak * height * 8) if peak else 0
            filled = max(0, min(8, eighths - (row - 1) * 8))
            if cost > 0 and row == 1:
                filled = max(filled, 1)  # a day with any spending shows at least a sliver
            text.append(_BLOCKS[filled] * 2, style="green")
        text.append("\n")
    if days:
        first, last = days[0][0].strftime("%b %d"), days[-1][0].strftime("%b %d")
        text.append(first + " " * max(1, len(days) * 2 - len(first) - len(last)) + last, style="dim")
    return text


def tier_bars(tiers: Sequence[TierShare], width: int = 30) -> Text:
    """Share of answers per tier as horizontal bars, with the money each tier cost."""
    total = sum(t.answers for t in tiers)
    text = Text()
    for share in tiers:
        part = share.answers / total if total else 0.0
        text.append(f"{share.tier:<8}", style="bold")
        text.append("█" * round(part * width), style="cyan")
        text.append(" " * (width - round(part * width)))
        text.append(f" {part:>4.0%}  {share.answers:>4} answers  {usd(share.cost_usd)}\n")
    return text
