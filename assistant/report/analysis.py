"""The report's numbers: spend by token category, by day, tier, kind and model; the top cost drivers; and the
recommendations, each with its projected saving and the figures it rests on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from assistant.report.recommend import Recommendation, recommendations
from assistant.report.routing import RoutingEstimate
from assistant.report.usage import CATEGORIES, CATEGORY_NAMES, Imported, UsageRecord, category_usd

GROUPINGS = ("day", "tier", "kind", "model")
TOP = 5


@dataclass
class Group:
    """Sums over a set of records: calls, exact tokens and their cost by category."""

    calls: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    usd: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0.0))
    cost_usd: float = 0.0
    unpriced_calls: int = 0

    def add(self, record: UsageRecord) -> None:
        """Count one record."""
        self.calls += 1
        self.cost_usd += record.cost_usd
        self.unpriced_calls += not record.priced
        for name, count in record.tokens.by_category().items():
            self.tokens[name] += count
        for name, amount in category_usd(record.tokens, record.rates).items():
            self.usd[name] += amount

    @property
    def unattributed_usd(self) -> float:
        """Cost no category's rates explain (a declared tier with its own prices), never below 0."""
        return max(self.cost_usd - sum(self.usd.values()), 0.0)

    def to_json(self) -> dict[str, Any]:
        """Exact token counts; dollars rounded to the micro-dollar."""
        return {"calls": self.calls, "tokens": dict(self.tokens),
                "usd": {name: round(amount, 6) for name, amount in self.usd.items()},
                "cost_usd": round(self.cost_usd, 6), "unattributed_usd": round(self.unattributed_usd, 6),
                "unpriced_calls": self.unpriced_calls}


def group(records: Iterable[UsageRecord], key: str) -> dict[str, Group]:
    """Records summed by one of `GROUPINGS` (days in order, the rest dearest first)."""
    groups: dict[str, Group] = defaultdict(Group)
    for record in records:
        groups[getattr(record, key) or "(none)"].add(record)
    if key == "day":
        return dict(sorted(groups.items()))
    return dict(sorted(groups.items(), key=lambda kv: (-kv[1].cost_usd, -kv[1].calls, kv[0])))


@dataclass(frozen=True)
class Driver:
    """One of the largest contributors to the spend."""

    what: str
    """`model and category`, `session` or `prompt`."""
    name: str
    cost_usd: float
    share: float

    def to_json(self) -> dict[str, Any]:
        """Its figures."""
        return {"what": self.what, "name": self.name, "cost_usd": round(self.cost_usd, 6),
                "share": round(self.share, 4)}


def drivers(records: list[UsageRecord], prompts: dict[str, str], total: float) -> list[Driver]:
    """The dearest model-and-category cells, then the dearest sessions and prompts, each as a share of `total`."""
    if total <= 0:
        return []
    cells: dict[str, float] = defaultdict(float)
    sessions: dict[str, float] = defaultdict(float)
    spent = prompt_spend(records)
    for record in records:
        for name, amount in category_usd(record.tokens, record.rates).items():
            cells[f"{record.model}: {CATEGORY_NAMES[name]}"] += amount
        if record.session:
            sessions[record.project or record.session] += record.cost_usd
    found = [Driver("model and category", name, cost, cost / total) for name, cost in _top(cells, TOP)]
    found += [Driver("session", name, cost, cost / total) for name, cost in _top(sessions, 3)]
    found += [Driver("prompt", _snippet(prompts[pid]), cost, cost / total)
              for pid, cost in _top({k: v for k, v in spent.items() if k in prompts}, 3)]
    return found


def prompt_spend(records: Iterable[UsageRecord]) -> dict[str, float]:
    """What the calls working on each imported prompt cost, by prompt id."""
    spent: dict[str, float] = defaultdict(float)
    for record in records:
        if record.prompt_id:
            spent[record.prompt_id] += record.cost_usd
    return dict(spent)


def _top(amounts: dict[str, float], count: int) -> list[tuple[str, float]]:
    return sorted(((k, v) for k, v in amounts.items() if v > 0), key=lambda kv: (-kv[1], kv[0]))[:count]


def _snippet(text: str, width: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


@dataclass
class Report:
    """Everything `tiercode report` shows, in every format."""

    source: str
    imported: Imported
    totals: Group
    groups: dict[str, dict[str, Group]]
    drivers: list[Driver]
    recommendations: list[Recommendation]
    routing: RoutingEstimate | None = None

    @property
    def period(self) -> tuple[str, str] | None:
        """The first and last day with a call."""
        days = list(self.groups["day"])
        return (days[0], days[-1]) if days else None

    @property
    def unpriced(self) -> dict[str, Group]:
        """Models the price list does not know, with their calls and tokens (their cost is not guessed)."""
        return {name: g for name, g in self.groups["model"].items() if g.unpriced_calls}

    def to_json(self) -> dict[str, Any]:
        """The `report --json` object."""
        reading = self.imported
        period = self.period
        return {
            "source": self.source, "period": {"first_day": period[0], "last_day": period[1]} if period else None,
            "reading": {"files": reading.files, "lines": reading.lines, "records": len(reading.records),
                        "prompts": len(reading.prompts), "duplicates": reading.duplicates,
                        "skipped": reading.skipped, "skipped_examples": list(reading.skipped_examples)},
            "totals": self.totals.to_json(),
            "by": {key: {name: g.to_json() for name, g in groups.items()} for key, groups in self.groups.items()},
            "unpriced_models": sorted(self.unpriced),
            "drivers": [d.to_json() for d in self.drivers],
            "recommendations": [r.to_json() for r in self.recommendations],
            "routing": self.routing.to_json() if self.routing is not None else None,
            "ledger_savings": dict(reading.savings) or None,
        }


def analyse(imported: Imported, routing: RoutingEstimate | None = None) -> Report:
    """The report of what a source gave, with the routing estimate of its prompts when there is one."""
    records = with_routed_kinds(imported.records, routing)
    totals = Group()
    for record in records:
        totals.add(record)
    groups = {key: group(records, key) for key in GROUPINGS}
    prompts = {p.id: p.text for p in imported.prompts}
    return Report(imported.source, imported, totals, groups, drivers(records, prompts, totals.cost_usd),
                  recommendations(records, totals.cost_usd, routing, _who(imported.source)), routing)


def with_routed_kinds(records: list[UsageRecord], routing: RoutingEstimate | None) -> list[UsageRecord]:
    """Imported calls labelled with the kind Tiercode's router gave the prompt they worked on (when it was
    routed), so an import has a spend by kind too."""
    kinds = {r.prompt.id: r.kind for r in routing.routed} if routing is not None else {}
    if not kinds:
        return records
    return [replace(r, kind=kinds[r.prompt_id]) if not r.kind and r.prompt_id in kinds else r for r in records]


def _who(source: str) -> str:
    """How a recommendation names the tool whose log was imported."""
    return "Claude Code" if source.startswith("claude-code") else "the imported tool"
