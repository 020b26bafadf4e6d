"""Session, daily and monthly money limits, read from spend in the real ledger, checked before each call.

Earlier spend is written to the user's real SQLite ledger as the pipeline itself writes it (CallRecord);
the calls go through the real cloud SDKs to the loopback emulators, or to llama.cpp for the local tier.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from assistant import paths
from assistant.accounting.ledger import CallRecord, new_id, open_ledger
from assistant.accounting.stats import stats_from_records
from assistant.cli.main import cli
from assistant.config import load_settings
from assistant.errors import BudgetStop
from assistant.pipeline import Pipeline
from assistant.session import Session
from tests.emulators import fixtures
from tests.emulators.server import Reply

CloudEmulators = fixtures.CloudEmulators

pytestmark = pytest.mark.usefixtures("loopback_only")

QUESTION = "explain what make_report returns"
GOOD = "`make_report` returns a one-line summary of the circles and their total area (pkg/report.py:6)."
LIMIT = 0.50
"""Every limit under test, in dollars."""
NEAR_LIMIT = LIMIT - 0.000001
"""Earlier spend just under the limit: any priced call (a groq call is estimated at about $0.0002) crosses it."""


class RecordingReporter:
    """A reporter that keeps the notices the pipeline gives and declines every confirmation."""

    def __init__(self) -> None:
        self.statuses: list[str] = []

    def text(self, delta: str) -> None:
        """Ignore streamed text."""

    def status(self, message: str) -> None:
        """Keep a notice."""
        self.statuses.append(message)

    def progress(self, label: str, done: int, total: int) -> None:
        """Ignore progress."""

    def waiting(self, label: str) -> None:
        """Ignore waits."""

    def confirm(self, question: str) -> bool:
        """Decline."""
        return False




def _spend(session: Session, cost_usd: float, *, ts: float = 0.0, session_id: str | None = None) -> CallRecord:
    """Record an earlier priced call in the session's ledger (this session unless another id is given)."""
    record = CallRecord(session_id=session_id or session.session_id, query_id=new_id(), tier="sonnet",
                        provider="anthropic", model="claude-sonnet-5-5", outcome="ok", input_tokens=1000,
                        output_tokens=500, cost_usd=cost_usd, ts=ts)
    session.ledger.record(record)
    return record


def _midnight() -> dt.datetime:
    return dt.datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)


def _month_start() -> dt.datetime:
    return _midnight().replace(day=1)


def _inside_window(limit: str) -> dict[str, Any]:
    """Where earlier spend counts against `limit`."""
    return {"session": {}, "daily": {}, "monthly": {"ts": _month_start().timestamp() + 60}}[limit]


def _outside_window(limit: str) -> dict[str, Any]:
    """Where earlier spend does not count against `limit`: another session, yesterday, last month."""
    return {
        "session": {"session_id": new_id()},
        "daily": {"ts": _midnight().timestamp() - 3600},
        "monthly": {"ts": _month_start().timestamp() - 3600},
    }[limit]


@pytest.mark.parametrize("limit", ["session", "daily", "monthly"])
def test_earlier_spend_plus_the_estimate_over_a_limit_stops_the_call_before_it_is_made(
    open_session: Any, cloud_emulators: CloudEmulators, limit: str
) -> None:
    session = open_session(tiers=["groq"], budget={limit: LIMIT, "action": "fail"})
    seed = _spend(session, NEAR_LIMIT, **_inside_window(limit))
    assert seed.cost_usd < LIMIT  # the spend alone is within the limit; only the call's estimate crosses it

    with pytest.raises(BudgetStop, match=f"stopped before calling groq: the {limit} budget of \\$0.50") as stopped:
        Pipeline(session).ask(QUESTION)

    assert stopped.value.exit_code == 3
    assert cloud_emulators.groq.bodies() == []
    earlier, stop = session.ledger.records()
    assert (earlier.cost_usd, earlier.outcome) == (pytest.approx(NEAR_LIMIT), "ok")
    assert (stop.tier, stop.outcome, stop.cost_usd) == ("groq", "budget_stop", 0.0)
    assert stop.session_id == session.session_id
    assert f"the {limit} budget of $0.50 would be exceeded (spent $0.50, this call up to $" in stop.error


@pytest.mark.parametrize("limit", ["session", "daily", "monthly"])
def test_a_call_that_fits_the_limit_goes_through_and_spend_outside_the_limits_window_does_not_count(
    open_session: Any, cloud_emulators: CloudEmulators, limit: str
) -> None:
    cloud_emulators.groq.script(Reply(GOOD))
    session = open_session(tiers=["groq"], budget={limit: LIMIT, "action": "fail"})
    _spend(session, LIMIT / 2, **_inside_window(limit))
    _spend(session, NEAR_LIMIT, **_outside_window(limit))

    answer = Pipeline(session).ask(QUESTION)

    assert (answer.tier, answer.answer) == ("groq", GOOD)
    assert len(cloud_emulators.groq.bodies()) == 1
    outcomes = [(r.tier, r.outcome) for r in session.ledger.records()]
    assert outcomes == [("sonnet", "ok"), ("sonnet", "ok"), ("groq", "ok")]
    assert answer.cost_usd > 0


def test_ask_exits_3_when_todays_spend_in_the_ledger_leaves_no_room_for_the_call(
    sample_repo: Path, cloud_emulators: CloudEmulators, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = open_ledger(paths.data_dir())
    try:
        ledger.record(CallRecord(session_id=new_id(), query_id=new_id(), tier="sonnet", provider="anthropic",
                                 model="claude-sonnet-5-5", outcome="ok", cost_usd=NEAR_LIMIT))
    finally:
        ledger.close()
    monkeypatch.setenv("TIERCODE_TIERS", '["groq"]')
    monkeypatch.setenv("TIERCODE_BUDGET__DAILY", str(LIMIT))
    monkeypatch.setenv("TIERCODE_BUDGET__ACTION", "fail")

    result = CliRunner().invoke(cli, ["ask", "--repo", str(sample_repo), QUESTION])

    assert result.exit_code == 3
    assert "stopped before calling groq: the daily budget of $0.50 would be exceeded" in result.stderr
    assert "Traceback" not in result.output
    assert cloud_emulators.groq.bodies() == []
    ledger = open_ledger(paths.data_dir())
    try:
        assert [r.outcome for r in ledger.records()] == ["ok", "budget_stop"]
    finally:
        ledger.close()


@pytest.mark.parametrize("limit", ["session", "daily", "monthly"])
def test_the_warn_action_lets_the_call_through_says_so_and_records_it(
    open_session: Any, cloud_emulators: CloudEmulators, limit: str
) -> None:
    cloud_emulators.groq.script(Reply(GOOD))
    reporter = RecordingReporter()
    session = open_session(reporter, tiers=["groq"], budget={limit: LIMIT, "action": "warn"})
    _spend(session, NEAR_LIMIT, **_inside_window(limit))

    answer = Pipeline(session).ask(QUESTION)

    assert (answer.tier, answer.answer) == ("groq", GOOD)
    assert len(cloud_emulators.groq.bodies()) == 1
    warnings = [s for s in reporter.statuses if s.startswith("budget warning: ")]
    assert len(warnings) == 1
    assert f"the {limit} budget of $0.50 would be exceeded" in warnings[0]
    assert f"budget warning before calling groq: {warnings[0].removeprefix('budget warning: ')}" in answer.notes
    _, call = session.ledger.records()
    assert (call.tier, call.outcome) == ("groq", "ok")
    assert call.cost_usd > 0 and call.cost_usd == pytest.approx(answer.cost_usd)


def test_a_local_call_at_no_cost_is_never_blocked_by_a_money_budget_already_exceeded(
    sample_repo: Path, installed_model: Path
) -> None:
    budget = {"per_query": 0.0, "session": LIMIT, "daily": LIMIT, "monthly": LIMIT, "action": "fail"}
    session = Session(sample_repo, load_settings(sample_repo, tiers=["local"], max_output_tokens=24, budget=budget))
    try:
        _spend(session, 5 * LIMIT)  # this session, today, this month: every limit is already crossed
        assert session.ledger.spent(0.0, session.session_id) > LIMIT

        answer = Pipeline(session).ask(QUESTION)

        assert answer.tier == "local" and answer.answer.strip()
        assert answer.cost_usd == 0.0
        records = list(session.ledger.records())
        assert [(r.tier, r.outcome) for r in records] == [("sonnet", "ok"), ("local", "ok")]
        assert records[1].cost_usd == 0.0 and records[1].output_tokens > 0
    finally:
        session.close()


@pytest.mark.parametrize(
    ("action", "exit_code", "why"),
    [
        ("fail", 3, "stopped before calling groq: the per-query budget of $0.00 would be exceeded"),
        ("downgrade", 0, "no tier cheaper than groq fits the budget"),
    ],
)
def test_a_budget_that_stops_the_escalation_keeps_the_local_answer_also_when_asked_again(
    sample_repo: Path, installed_model: Path, cloud_emulators: CloudEmulators, monkeypatch: pytest.MonkeyPatch,
    action: str, exit_code: int, why: str,
) -> None:
    monkeypatch.setenv("TIERCODE_TIERS", '["local", "groq"]')
    monkeypatch.setenv("TIERCODE_MAX_OUTPUT_TOKENS", "24")
    monkeypatch.setenv("TIERCODE_LOCAL__MIN_CONFIDENCE", "1.0")  # no local answer is sure enough: escalate
    monkeypatch.setenv("TIERCODE_LOCAL__THREADS", "1")  # the same answer whatever the machine's load
    monkeypatch.setenv("TIERCODE_BUDGET__PER_QUERY", "0")
    monkeypatch.setenv("TIERCODE_BUDGET__ACTION", action)
    command = ["ask", "--repo", str(sample_repo), "--json", QUESTION]

    first = CliRunner().invoke(cli, command)
    again = CliRunner().invoke(cli, command)  # the local answer is cached with its rejected verdict

    for result in (first, again):
        assert result.exit_code == exit_code, result.stderr
        assert (why in result.stderr) == (action == "fail")  # a stop is an error; a downgrade is not
    answer, repeated = json.loads(first.stdout), json.loads(again.stdout)
    assert answer["tier"] == "local" and answer["answer"].strip()
    assert (repeated["answer"], repeated["cached"]) == (answer["answer"], True)
    assert answer["budget_stop"] == (None if action == "downgrade" else answer["budget_stop"])
    assert action == "downgrade" or answer["budget_stop"].startswith(why)
    assert answer["escalations"] == []  # groq was never called
    assert any(n.startswith("kept local's answer although low token confidence") and why in n
               for n in answer["notes"])
    assert cloud_emulators.groq.bodies() == []
    ledger = open_ledger(paths.data_dir())
    try:
        records = list(ledger.records())
        stats = stats_from_records(records)
    finally:
        ledger.close()
    assert [(r.tier, r.outcome) for r in records] == [
        ("local", "ok"), ("groq", "budget_stop"), ("local", "cache_hit"), ("groq", "budget_stop")]
    assert stats.answered_by == {"local": 1, "cache": 1}  # both questions were answered
    assert stats.model_queries == 1  # the repeat called no model; a budget stop is not a call
