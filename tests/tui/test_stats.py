"""The stats screen and its numbers: cost per day for 30 days, share by tier, cache hit rate."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from textual.widgets import Static

from assistant.accounting.ledger import CallRecord, Ledger
from assistant.tui.screens import StatsScreen
from assistant.tui.usage import cost_chart, usage_report
from tests.tui.helpers import make_app, submit, wait_for

TODAY = dt.date(2025, 3, 31)


def at(day: dt.date, hour: int = 12) -> float:
    return dt.datetime.combine(day, dt.time(hour)).timestamp()


def record(query: str, tier: str, cost: float, day: dt.date, outcome: str = "ok", cached: bool = False,
           **more: object) -> CallRecord:
    return CallRecord("s1", query, tier, tier, f"{tier}-model", outcome, cost_usd=cost, cached=cached,
                      ts=at(day), **more)  # type: ignore[arg-type]


def fill(ledger: Ledger) -> None:
    ledger.record(record("q1", "local", 0.0, TODAY, escalation_reason="low confidence"))
    ledger.record(record("q1", "groq", 0.002, TODAY))
    ledger.record(record("q2", "index", 0.0, TODAY))
    ledger.record(record("q3", "sonnet", 0.05, TODAY - dt.timedelta(days=3)))
    ledger.record(record("q4", "local", 0.0, TODAY - dt.timedelta(days=1), outcome="cache_hit", cached=True))
    ledger.record(record("q5", "gemini", 0.01, TODAY - dt.timedelta(days=2), outcome="cancelled"))
    ledger.record(record("old", "sonnet", 9.0, TODAY - dt.timedelta(days=40)))


def test_usage_report_counts_each_question_once_by_its_final_tier(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    fill(ledger)
    report = usage_report(ledger.records(), TODAY, reference_price=lambda r: 0.5)
    assert len(report.days) == 30 and report.days[-1] == (TODAY, 0.002)
    assert dict(report.days)[TODAY - dt.timedelta(days=3)] == 0.05
    assert report.answers == 4  # q1 (groq), q2 (index), q3 (sonnet), q4 (cache); q5 was cancelled
    shares = {t.tier: (t.answers, round(t.cost_usd, 6)) for t in report.tiers}
    assert shares == {"groq": (1, 0.002), "index": (1, 0.0), "sonnet": (1, 0.05), "cache": (1, 0.0),
                      "local": (0, 0.0), "gemini": (0, 0.01)}
    assert report.cache_hits == 1 and report.cache_hit_rate == 0.25
    assert round(report.total_cost_usd, 6) == 0.062  # the 40-day-old call is outside the window
    assert report.savings_usd == 1.0  # the index and the cached answer, at the reference price
    assert usage_report([], TODAY).savings_usd is None
    ledger.close()


def test_cost_chart_draws_the_peak_day_full_and_any_spending_visible() -> None:
    days = [(TODAY - dt.timedelta(days=2), 0.0), (TODAY - dt.timedelta(days=1), 0.0001), (TODAY, 0.04)]
    rows = cost_chart(days, height=4).plain.splitlines()
    assert rows[0] == "$0.04"
    bars = rows[1:5]
    assert [row[4:6] for row in bars] == ["██"] * 4  # the peak fills every row
    assert bars[-1][2:4].strip() and not bars[0][2:4].strip()  # a small day shows a sliver at the bottom
    assert [row[0:2] for row in bars] == ["  "] * 4
    assert rows[5].startswith("Mar 29")


async def test_stats_command_opens_the_screen_from_the_ledger(sample_repo: Path) -> None:
    app = make_app(sample_repo)
    today = dt.date.today()
    app.session.ledger.record(record("a", "groq", 0.003, today))
    app.session.ledger.record(record("b", "index", 0.0, today))
    async with app.run_test() as pilot:
        await submit(pilot, "/stats")
        await wait_for(pilot, lambda: isinstance(app.screen, StatsScreen), "the stats screen")
        summary = str(app.screen.query_one("#stats-summary", Static).render())
        assert "answers 2" in summary and "$0.003 " in summary and "cache hit rate 0%" in summary
        tiers = str(app.screen.query_one("#stats-tiers", Static).render())
        assert "groq" in tiers and "index" in tiers and "50%" in tiers
        await pilot.press("escape")
        assert not isinstance(app.screen, StatsScreen)
