"""Stats from a real ledger, and the stats, budget and ledger commands."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant import paths
from assistant.accounting.ledger import CallRecord, Ledger, open_ledger
from assistant.accounting.stats import compute_stats, parse_since
from assistant.cli.stats_cmd import COMMANDS, budget, ledger_group, stats, write_budget
from assistant.config import load_settings
from assistant.errors import ConfigError
from models import pricing

DAY1 = dt.datetime(2025, 3, 10, 12, 0).timestamp()
DAY2 = dt.datetime(2025, 3, 11, 9, 30).timestamp()


def _rec(query: str, tier: str, outcome: str = "ok", ts: float = DAY1, **kwargs: object) -> CallRecord:
    model = {"index": "index", "local": "qwen-1.5b", "groq": "llama-3.3-70b", "gemini": "gemini-flash",
             "sonnet": "claude-sonnet"}[tier]
    values: dict[str, object] = {"session_id": "s", "query_id": query, "tier": tier, "provider": tier, "model": model,
                                 "outcome": outcome, "kind": "explain", "ts": ts}
    values.update(kwargs)
    return CallRecord(**values)  # type: ignore[arg-type]


@pytest.fixture
def ledger() -> Ledger:
    """Six queries: index, local, local→groq, a cache hit, a failure, groq error→gemini."""
    ledger = open_ledger(paths.data_dir())
    for record in [
        _rec("q1", "index", kind="lookup"),
        _rec("q2", "local", input_tokens=1000, output_tokens=200),
        _rec("q3", "local", input_tokens=500, output_tokens=100, escalation_reason="low confidence 0.21"),
        _rec("q3", "groq", input_tokens=800, output_tokens=150, cost_usd=0.0005),
        _rec("q4", "local", "cache_hit", cached=True, input_tokens=1000, output_tokens=200, ts=DAY2),
        _rec("q5", "sonnet", "error", error="HTTP 529", ts=DAY2, kind="design"),
        _rec("q6", "groq", "error", error="HTTP 503", ts=DAY2, kind="debug"),
        _rec("q6", "gemini", input_tokens=2000, output_tokens=300, cost_usd=0.0002, ts=DAY2, kind="debug"),
    ]:
        ledger.record(record)
    return ledger


def _sonnet_rates() -> pricing.Rates:
    """Today's rates of the model the Sonnet tier calls: the counterfactual's prices."""
    return pricing.price(pricing.default_model("sonnet")).rates_on(dt.date.today())


def _sonnet(input_tokens: int, output_tokens: int) -> float:
    rates = _sonnet_rates()
    return (input_tokens * rates.input + output_tokens * rates.output) / 1e6


def test_an_escalation_is_a_move_to_another_tier_not_a_weak_answer_that_stayed() -> None:
    ledger = open_ledger(paths.data_dir())
    for record in [
        _rec("q1", "local", escalation_reason="low confidence 0.2"),  # the next tier had no key: it stayed
        _rec("q2", "local", "cache_hit", cached=True, escalation_reason="low confidence 0.2 (cached verdict)"),
        _rec("q2", "groq", input_tokens=800, output_tokens=150, cost_usd=0.0005),
        _rec("q3", "groq", escalation_reason="the answer hedges or refuses"),  # the last tier allowed
    ]:
        ledger.record(record)
    report = compute_stats(ledger)
    assert (report.escalated, report.model_queries) == (1, 3)  # only q2 moved on (from its cached answer)


def test_totals_rates_and_savings(ledger: Ledger) -> None:
    report = compute_stats(ledger)
    t = report.totals
    assert (t.calls, t.queries, t.errors, t.cache_hits) == (8, 6, 2, 1)
    # the cache hit's tokens were saved, not used
    assert (t.input_tokens, t.output_tokens) == (1000 + 500 + 800 + 2000, 200 + 100 + 150 + 300)
    assert t.cost_usd == pytest.approx(0.0007)
    assert report.answered_by == {"index": 1, "local": 1, "groq": 1, "cache": 1, "unanswered": 1, "gemini": 1}
    assert report.cache_hit_rate == pytest.approx(1 / 5)  # the index-answered query never reached the cache
    assert report.local_share == pytest.approx(2 / 6)
    assert (report.escalated, report.model_queries) == (2, 4)
    assert report.escalation_rate == pytest.approx(0.5)
    # every model-answered query (q2, q3 at groq, q4 from cache, q6 at gemini) sent to Sonnet instead
    counterfactual = _sonnet(1000, 200) + _sonnet(800, 150) + _sonnet(1000, 200) + _sonnet(2000, 300)
    assert t.counterfactual_usd == pytest.approx(counterfactual)
    assert t.savings_usd == pytest.approx(counterfactual - 0.0007)
    assert report.outcomes == {"ok": 5, "cache_hit": 1, "error": 2}


def test_sonnet_prices_cover_cached_tokens() -> None:
    ledger = open_ledger(paths.data_dir())
    ledger.record(_rec("q", "groq", input_tokens=1_000_000, output_tokens=1_000_000, cache_read_tokens=1_000_000,
                       cache_write_tokens=1_000_000, cost_usd=1.0))
    report = compute_stats(ledger)
    rates = _sonnet_rates()  # a million tokens of each kind: the sum of the four per-million rates
    counterfactual = rates.input + rates.output + rates.cache_read + rates.cache_write_5m
    assert counterfactual > 10
    assert report.totals.counterfactual_usd == pytest.approx(counterfactual)
    assert report.totals.savings_usd == pytest.approx(counterfactual - 1.0)


def test_since_keeps_later_records_only(ledger: Ledger) -> None:
    report = compute_stats(ledger, since=DAY2)
    assert (report.totals.calls, report.totals.queries) == (4, 3)
    assert report.answered_by == {"cache": 1, "unanswered": 1, "gemini": 1}


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("tier", {"index": (1, 1), "local": (3, 3), "groq": (2, 2), "gemini": (1, 1), "sonnet": (1, 1)}),
        ("model", {"index": (1, 1), "qwen-1.5b": (3, 3), "llama-3.3-70b": (2, 2), "gemini-flash": (1, 1),
                   "claude-sonnet": (1, 1)}),
        ("kind", {"lookup": (1, 1), "explain": (4, 3), "design": (1, 1), "debug": (2, 1)}),
        ("day", {"2025-03-10": (4, 3), "2025-03-11": (4, 3)}),
    ],
)
def test_grouping(ledger: Ledger, by: str, expected: dict[str, tuple[int, int]]) -> None:
    report = compute_stats(ledger, by=by)
    assert {name: (g.calls, g.queries) for name, g in report.groups.items()} == expected
    assert sum(g.calls for g in report.groups.values()) == report.totals.calls
    assert sum(g.cost_usd for g in report.groups.values()) == pytest.approx(report.totals.cost_usd)
    assert sum(g.counterfactual_usd for g in report.groups.values()) == pytest.approx(report.totals.counterfactual_usd)
    if by == "day":
        assert list(report.groups) == ["2025-03-10", "2025-03-11"]


def test_tier_group_counts_the_cache_hit_and_its_savings(ledger: Ledger) -> None:
    local = compute_stats(ledger, by="tier").groups["local"]
    assert local.cache_hits == 1
    assert local.counterfactual_usd == pytest.approx(_sonnet(1000, 200) * 2)


def test_an_unknown_grouping_is_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="cannot group by"):
        compute_stats(ledger, by="provider")


def test_json_and_text_reports(ledger: Ledger) -> None:
    report = compute_stats(ledger, by="tier")
    data = json.loads(json.dumps(report.to_json()))
    assert data["calls"] == 8 and data["queries"] == 6 and data["by"] == "tier"
    assert data["cache_hit_rate"] == 0.2 and data["escalation_rate"] == 0.5
    assert data["groups"]["groq"]["cost_usd"] == 0.0005
    text = report.to_text()
    assert "8 calls for 6 queries" in text and "cache hit rate: 20.0%" in text and "escalation rate: 50.0%" in text
    assert "All-Sonnet counterfactual" in text and "\ngroq " in text


def test_an_empty_ledger_reports_zeros() -> None:
    report = compute_stats(open_ledger(paths.data_dir()), by="day")
    assert report.totals.calls == 0 and report.cache_hit_rate == 0.0 and report.escalation_rate == 0.0
    assert "0 calls for 0 queries" in report.to_text()


def test_parse_since() -> None:
    now = dt.datetime(2025, 3, 11, 15, 0)
    assert parse_since("2025-03-10") == dt.datetime(2025, 3, 10).timestamp()
    assert parse_since("2025-03-10T08:30") == dt.datetime(2025, 3, 10, 8, 30).timestamp()
    assert parse_since("today", now) == dt.datetime(2025, 3, 11).timestamp()
    assert parse_since("7d", now) == dt.datetime(2025, 3, 4, 15, 0).timestamp()
    assert parse_since("12h", now) == dt.datetime(2025, 3, 11, 3, 0).timestamp()
    with pytest.raises(ValueError, match="7d"):
        parse_since("last tuesday")


# -- commands -----------------------------------------------------------------------------------


def test_commands_are_exposed() -> None:
    assert {c.name for c in COMMANDS} == {"stats", "budget", "ledger"}


def test_stats_command(ledger: Ledger) -> None:
    result = CliRunner().invoke(stats, ["--json", "--by", "kind", "--since", "2025-03-11"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["calls"] == 4 and set(data["groups"]) == {"explain", "design", "debug"}
    text = CliRunner().invoke(stats, [])
    assert text.exit_code == 0 and "8 calls for 6 queries" in text.output
    bad = CliRunner().invoke(stats, ["--since", "someday"])
    assert bad.exit_code == 2 and "7d" in bad.output


def test_ledger_export_command(ledger: Ledger, tmp_path: Path) -> None:
    result = CliRunner().invoke(ledger_group, ["export", "--format", "jsonl", "--since", "2025-03-11"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["query_id"] for line in result.output.splitlines()] == ["q4", "q5", "q6", "q6"]
    out = tmp_path / "ledger.csv"
    result = CliRunner().invoke(ledger_group, ["export", "--format", "csv", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 1 + 8
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert all(dt.datetime.fromisoformat(row["ts"]).tzinfo is not None for row in rows)  # ISO 8601, not epoch
    assert all(row["latency_ms"].isdigit() for row in rows)  # whole milliseconds


def test_budget_set_keeps_the_rest_of_the_config_file() -> None:
    config = paths.user_config_file()
    config.parent.mkdir(parents=True)
    config.write_text('# my settings\noffline = false\n\n[budget]\n# per day\ndaily = 1.0\n\n'
                      '[local]\nthreads = 4  # keep\n', encoding="utf-8")
    os.chmod(config, 0o600)
    result = CliRunner().invoke(budget, ["set", "--daily", "2.5", "--monthly", "40", "--action", "pause"])
    assert result.exit_code == 0, result.output
    text = config.read_text()
    assert text.startswith("# my settings\noffline = false\n") and "# per day\n" in text
    assert "[local]\nthreads = 4  # keep\n" in text
    settings = load_settings()
    assert (settings.budget.daily, settings.budget.monthly, settings.budget.action) == (2.5, 40.0, "pause")
    assert settings.local.threads == 4 and settings.offline is False
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    result = CliRunner().invoke(budget, ["set", "--daily", "none", "--per-query", "0.05"])
    assert result.exit_code == 0, result.output
    settings = load_settings()
    assert (settings.budget.daily, settings.budget.per_query, settings.budget.monthly) == (None, 0.05, 40.0)


def test_budget_set_creates_the_file_and_show_reports_spend(ledger: Ledger) -> None:
    result = CliRunner().invoke(budget, ["set", "--session", "0.5"])
    assert result.exit_code == 0, result.output
    assert load_settings().budget.session == 0.5
    ledger.record(_rec("q7", "sonnet", cost_usd=0.25, ts=dt.datetime.now().timestamp()))
    shown = CliRunner().invoke(budget, ["show", "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["session"] == 0.5 and data["daily"] is None
    assert data["spent_today_usd"] == pytest.approx(0.25)
    plain = CliRunner().invoke(budget, [])
    assert plain.exit_code == 0 and "session" in plain.output and "$0.50" in plain.output


def test_budget_set_refuses_bad_input() -> None:
    runner = CliRunner()
    assert runner.invoke(budget, ["set"]).exit_code == 2
    assert runner.invoke(budget, ["set", "--daily", "-1"]).exit_code == 2
    assert runner.invoke(budget, ["set", "--daily", "lots"]).exit_code == 2
    assert runner.invoke(budget, ["set", "--action", "explode"]).exit_code == 2
    assert not paths.user_config_file().exists()


def test_write_budget_refuses_files_it_cannot_edit_safely(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[budget\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        write_budget(broken, {"daily": 1.0})
    inline = tmp_path / "inline.toml"
    inline.write_text("budget = { daily = 1.0 }\n")
    with pytest.raises(ConfigError, match=r"\[budget\] table"):
        write_budget(inline, {"daily": 2.0})
    assert inline.read_text() == "budget = { daily = 1.0 }\n"
    foreign = tmp_path / "foreign.toml"
    foreign.write_text("[budget]\ndaily = 1.0\nweekly = 3.0\n")
    with pytest.raises(ConfigError, match="would be invalid"):
        write_budget(foreign, {"daily": 2.0})
    assert foreign.read_text() == "[budget]\ndaily = 1.0\nweekly = 3.0\n"


def test_local_share_counts_what_stayed_on_this_machine_and_free_share_any_free_tier() -> None:
    ledger = open_ledger(paths.data_dir())
    for record in [
        _rec("q1", "index", kind="lookup"),
        _rec("q2", "local"),  # in-process: no endpoint
        CallRecord("s", "q3", "team", "openai-compatible", "qwen-32b", "ok", endpoint="http://gpu-box.internal:8000/v1"),
        CallRecord("s", "q4", "served", "openai-compatible", "smol", "ok", endpoint="http://127.0.0.1:8080/v1"),
    ]:
        ledger.record(record)
    ledger.close()

    shown = CliRunner().invoke(stats, ["--json"])
    text = CliRunner().invoke(stats, [])

    report = json.loads(shown.output)
    assert (report["local_or_index_share"], report["free_share"]) == (0.75, 1.0)  # the team's server is not local
    assert "Local or index: 75.0%   free: 100.0%" in text.output


def test_agent_tool_calls_show_what_they_returned_and_a_delivery_is_no_call(ledger: Ledger) -> None:
    for record in [
        _rec("m1", "index", tool="find_definition", returned_tokens=40),
        _rec("m2", "index", "error", tool="outline", returned_tokens=12, error="no file 'x.py' in the index"),
        _rec("m3", "groq", input_tokens=900, output_tokens=120, cost_usd=0.0004),
        _rec("m3", "groq", "delivered", provider="mcp", tool="ask_cheap", returned_tokens=150),
    ]:
        ledger.record(record)

    report = compute_stats(ledger)
    by_tool = compute_stats(ledger, by="tool").groups

    assert report.totals.calls == 8 + 3 and report.totals.queries == 6 + 3
    assert report.tool_calls == {"find_definition": 1, "outline": 1, "ask_cheap": 1}
    assert report.totals.returned_tokens == 202 and report.tool_cost_usd == pytest.approx(0.0004)
    assert report.answered_by["groq"] == 2  # m3 is groq's answer, not the delivery's
    assert by_tool["ask_cheap"].returned_tokens == 150 and by_tool["ask_cheap"].calls == 0
    assert ("Agent tools (MCP): 3 calls (find_definition 1, outline 1, ask_cheap 1), 202 tokens returned to the"
            " agent, $0.0004 spent") in report.to_text()
    assert report.to_json()["tool_calls"] == {"find_definition": 1, "outline": 1, "ask_cheap": 1}
