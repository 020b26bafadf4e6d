"""A report as format-neutral sections (paragraphs, numbered items, tables with a share per row), which the
Markdown and HTML renderers each write out: both show the same things in the same order."""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.accounting.money import usd
from assistant.report.analysis import Group, Report
from assistant.report.routing import RoutingEstimate
from assistant.report.usage import CATEGORIES, CATEGORY_NAMES

_BREAKDOWNS = (("day", "By day"), ("model", "By model"), ("tier", "By tier"), ("kind", "By kind"))


@dataclass(frozen=True)
class Table:
    """Rows of text under headers; `shares` (0..1 per row) drive the HTML's bars."""

    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]
    shares: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Section:
    """A titled part of the report."""

    title: str
    lines: list[str] = field(default_factory=list)
    items: list[tuple[str, str]] = field(default_factory=list)
    """Numbered (heading, text) pairs."""
    table: Table | None = None


def sections(report: Report) -> list[Section]:
    """The report's sections in reading order: the first screen holds the summary, the categories and the
    recommendations."""
    parts = [_summary(report), _categories(report.totals), _recommendations(report), _drivers(report)]
    if report.routing is not None:
        parts.append(_routing(report.routing))
    for key, title in _BREAKDOWNS:
        groups = report.groups[key]
        if groups and (key in ("day", "model") or set(groups) != {"(none)"}):
            parts.append(Section(title, table=_breakdown(key, groups, report.totals.cost_usd)))
    if report.unpriced:
        parts.append(_unpriced(report.unpriced))
    return parts


def _summary(report: Report) -> Section:
    reading, totals, period = report.imported, report.totals, report.period
    when = f"{period[0]} to {period[1]}" if period else "no calls"
    prompts = f", {len(reading.prompts):,} prompts" if reading.prompts else ""
    lines = [f"Source: {report.source} · {when} · {totals.calls:,} calls{prompts} · {usd(totals.cost_usd)} spent"]
    if report.source != "ledger":
        skipped = f"{reading.skipped:,} malformed skipped" + (f" ({reading.skipped_examples[0]})"
                                                               if reading.skipped_examples else "")
        lines.append(f"Read {_count(reading.files, 'file')}, {_count(reading.lines, 'line')}: "
                     f"{_count(reading.duplicates, 'repeat')} of a message counted once, {skipped}.")
    if reading.savings:
        lines.append(f"All-Sonnet counterfactual of the {reading.savings['queries']:,} queries (as `tiercode stats`): "
                     f"{usd(reading.savings['counterfactual_usd'])}; saved {usd(reading.savings['savings_usd'])}.")
    if report.unpriced:
        lines.append(f"Unpriced (not in models/prices.toml, tokens counted, cost not guessed): "
                     f"{', '.join(report.unpriced)}.")
    return Section("Tiercode usage report", lines)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _share(part: float, whole: float) -> float:
    return part / whole if whole > 0 else 0.0


def _categories(totals: Group) -> Section:
    rows, shares = [], []
    for name in CATEGORIES:
        share = _share(totals.usd[name], totals.cost_usd)
        rows.append((CATEGORY_NAMES[name], f"{totals.tokens[name]:,}", usd(totals.usd[name]), f"{share:.1%}"))
        shares.append(share)
    if totals.unattributed_usd > 0.0000005:
        share = _share(totals.unattributed_usd, totals.cost_usd)
        rows.append(("declared tiers' own prices", "", usd(totals.unattributed_usd), f"{share:.1%}"))
        shares.append(share)
    rows.append(("total", f"{sum(totals.tokens.values()):,}", usd(totals.cost_usd), "100%" if totals.cost_usd else ""))
    shares.append(0.0)
    return Section("Spend by token category", table=Table(("category", "tokens", "cost", "share"), rows, shares))


def _recommendations(report: Report) -> Section:
    if not report.recommendations:
        return Section("Recommendations", ["No rule found a saving worth naming in these numbers."])
    items = []
    for rec in report.recommendations:
        figures = " · ".join(f"{k} {_figure(v)}" for k, v in rec.figures.items())
        items.append((f"{rec.title}: up to {usd(rec.saving_usd)}", f"{rec.action} Rests on: {figures}."))
    return Section("Recommendations", ["Each saving is measured against the spend above; they overlap, so they do "
                                       "not add up."], items=items)


def _figure(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_figure(v)}" for k, v in value.items())
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.6g}"


def _drivers(report: Report) -> Section:
    rows = [(d.what, d.name, usd(d.cost_usd), f"{d.share:.1%}") for d in report.drivers]
    if not rows:
        return Section("Top cost drivers", ["Nothing was spent."])
    return Section("Top cost drivers", table=Table(("what", "name", "cost", "share"), rows,
                                                   [d.share for d in report.drivers]))


def _routing(routing: RoutingEstimate) -> Section:
    if not routing.routed:
        return Section("Routed by Tiercode", [routing.note or "No prompts to route."])
    count, spent, tiercode = routing.sums()
    sampled = f" (an even sample of the {routing.prompts:,}; --route-limit)" if routing.sampled else ""
    lines = [f"{len(routing.routed):,} prompts routed as `tiercode ask --dry-run` routes them with the tiers "
             f"configured here, with no model call{sampled}: the imported calls on the {count:,} a tier could answer "
             f"cost {usd(spent)}; Tiercode's start tier could cost at most {usd(tiercode)}."]
    if routing.unanswerable:
        lines.append(f"{_count(routing.unanswerable, 'prompt')} had no tier that could answer here (no key, no "
                     "local model: see `tiercode doctor`) and are left out.")
    if routing.note:
        lines.append(routing.note)
    routed = len(routing.routed)
    rows = [(tier, f"{n:,}", f"{n / routed:.0%}") for tier, n in routing.start_tiers.items()]
    return Section("Routed by Tiercode", lines, table=Table(("start tier", "prompts", "share"), rows,
                                                            [n / routed for n in routing.start_tiers.values()]))


def _breakdown(key: str, groups: dict[str, Group], total: float) -> Table:
    rows, shares = [], []
    for name, g in groups.items():
        writes = g.tokens["cache_write_5m"] + g.tokens["cache_write_1h"]
        rows.append((name, f"{g.calls:,}", f"{g.tokens['input']:,}", f"{g.tokens['output']:,}",
                     f"{g.tokens['cache_read']:,}", f"{writes:,}", usd(g.cost_usd)))
        shares.append(_share(g.cost_usd, total))
    return Table((key, "calls", "input", "output", "cache read", "cache write", "cost"), rows, shares)


def _unpriced(unpriced: dict[str, Group]) -> Section:
    rows = [(name, f"{g.unpriced_calls:,}", f"{sum(g.tokens.values()):,}") for name, g in unpriced.items()]
    return Section("Unpriced models", ["Add a model's prices to models/prices.toml to count its cost."],
                   table=Table(("model", "calls", "tokens"), rows))
