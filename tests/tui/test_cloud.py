"""Pilot tests of the TUI with real cloud calls: the official SDKs against the loopback API emulators."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistant.tui.screens import ConfirmScreen
from assistant.tui.widgets import Turn
from tests.emulators import fixtures
from tests.emulators.server import Reply
from tests.tui.helpers import make_app, submit, wait_for

cloud_emulators = fixtures.cloud_emulators
loopback_only = fixtures.loopback_only
pytestmark = pytest.mark.usefixtures("loopback_only")

GOOD = "`make_report` joins the circle count and `total_area` into one line (pkg/report.py:6)."


def last_turn(app: object) -> Turn:
    return list(app.query(Turn))[-1]  # type: ignore[attr-defined]


async def test_a_weak_local_answer_escalates_and_the_badge_says_why(
    sample_repo: Path, installed_model: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    cloud_emulators.groq.script(Reply(GOOD))
    app = make_app(sample_repo, offline=False, tiers=["local", "groq"], local={"min_confidence": 1.0},
                   max_output_tokens=24)
    async with app.run_test() as pilot:
        await submit(pilot, "explain what make_report returns")
        await wait_for(pilot, lambda: bool(app.query(Turn)) and last_turn(app).has_class("done"), "the answer")
        turn = last_turn(app)
        badge = str(turn.badge.render())
        assert " groq " in badge and "local→groq (" in badge
        assert turn.markdown.source.strip() == GOOD
        assert [r.tier for r in app.session.ledger.records()] == ["local", "groq"]


@pytest.mark.parametrize(
    ("settings", "asked"),
    [
        pytest.param({"budget": {"per_query": 0.000001, "action": "pause"}},
                     lambda question: "per-query budget" in question, id="paused-budget"),
        pytest.param({"confirm_above_usd": 0.0000001},
                     lambda question: question.startswith("Ask groq ("), id="consent-threshold"),
    ],
)
async def test_a_question_before_the_call_waits_and_yes_makes_it(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators, settings: dict[str, Any],
    asked: Callable[[str], bool],
) -> None:
    cloud_emulators.groq.script(Reply(GOOD))
    app = make_app(sample_repo, offline=False, tiers=["groq"], **settings)
    async with app.run_test() as pilot:
        await submit(pilot, "explain what make_report returns")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question before the call")
        assert asked(app.screen.question)  # type: ignore[attr-defined]
        assert cloud_emulators.groq.bodies() == []  # nothing is spent before the answer
        await pilot.press("y")
        await wait_for(pilot, lambda: bool(app.query(Turn)) and last_turn(app).has_class("done"), "the answer")
        assert last_turn(app).markdown.source.strip() == GOOD
        assert len(cloud_emulators.groq.bodies()) == 1


async def test_declining_the_paused_budget_spends_nothing(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    app = make_app(sample_repo, offline=False, tiers=["groq"], budget={"per_query": 0.000001, "action": "pause"})
    async with app.run_test() as pilot:
        await submit(pilot, "explain what make_report returns")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the budget question")
        await pilot.press("n")
        await wait_for(pilot, lambda: bool(app.query(Turn)) and last_turn(app).has_class("done"), "the stop")
        assert "budget" in str(last_turn(app).badge.render()).lower() + last_turn(app).markdown.source.lower()
        assert cloud_emulators.groq.bodies() == []
        assert [r.outcome for r in app.session.ledger.records()] == ["budget_stop"]


async def test_a_follow_up_carries_the_conversation_until_clear(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    cloud_emulators.groq.default = Reply(GOOD)
    app = make_app(sample_repo, offline=False, tiers=["groq"])

    def roles(request: int) -> list[str]:
        return [m["role"] for m in cloud_emulators.groq.bodies()[request]["messages"]]

    async with app.run_test() as pilot:
        for n, question in enumerate(["explain what make_report returns", "explain how it formats the area"]):
            await submit(pilot, question)
            await wait_for(pilot, lambda n=n: len(app.query(Turn)) == n + 1 and last_turn(app).has_class("done"),
                           f"answer {n + 1}")
        assert roles(1) == ["system", "user", "assistant", "user"]
        await submit(pilot, "/context")
        shown = list(app.query(".output"))[-1].source  # type: ignore[attr-defined]
        sent = cloud_emulators.groq.bodies()[1]["messages"][-1]["content"]
        assert "after 1 earlier turn(s)" in shown and sent in shown  # exactly what the follow-up sent
        await submit(pilot, "/clear")
        await submit(pilot, "explain what total_area adds up")
        await wait_for(pilot, lambda: len(cloud_emulators.groq.bodies()) == 3, "the third request")
        assert roles(2) == ["system", "user"]


async def test_declining_the_consent_question_makes_no_call(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    app = make_app(sample_repo, offline=False, tiers=["groq"], confirm_above_usd=0.0000001)
    async with app.run_test() as pilot:
        await submit(pilot, "explain what make_report returns")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the consent question")
        await pilot.press("n")
        await wait_for(pilot, lambda: bool(app.query(Turn)) and last_turn(app).has_class("done"), "the stop")
        assert "declined" in last_turn(app).markdown.source + str(last_turn(app).badge.render())
        assert cloud_emulators.groq.bodies() == []


async def test_clear_waits_until_the_running_answer_is_done(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    cloud_emulators.groq.script(Reply(GOOD, pause_after=2))
    app = make_app(sample_repo, offline=False, tiers=["groq"])
    async with app.run_test() as pilot:
        await submit(pilot, "explain what make_report returns")
        await wait_for(pilot, lambda: len(cloud_emulators.groq.bodies()) == 1, "the request")
        await submit(pilot, "/clear")
        assert any("wait for it" in str(n.render()) for n in app.query(".notice"))
        cloud_emulators.groq.resume.set()
        await wait_for(pilot, lambda: bool(app.query(Turn)) and last_turn(app).has_class("done"), "the answer")
        assert len(app.dialogue.turns) == 1  # the answer that was running is remembered, not half-cleared


async def test_the_models_thinking_is_folded_above_its_answer(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    from textual.widgets import Collapsible

    thought = "The question is about make_report; its return value is the joined line, so say that."
    cloud_emulators.groq.script(Reply(GOOD, thinking=thought))
    app = make_app(sample_repo, offline=False, tiers=["groq"])
    async with app.run_test() as pilot:
        await submit(pilot, "explain what make_report returns")
        await wait_for(pilot, lambda: bool(app.query(Turn)) and last_turn(app).has_class("done"), "the answer")
        turn = last_turn(app)
        folded = turn.query_one(Collapsible)
        assert folded.collapsed and folded.title.startswith("thinking · ")
        assert thought in str(folded.query_one(".thinking").render())
        assert thought not in turn.markdown.source and turn.markdown.source.strip() == GOOD
        assert list(turn.children).index(folded) < list(turn.children).index(turn.markdown)


async def test_apply_says_why_an_answer_with_code_but_no_edit_has_nothing_to_write(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    from textual.widgets import Static

    cloud_emulators.groq.script(Reply("Rename it:\n\n```python\ndef sum_of_areas(shapes):\n    ...\n```\n"))
    app = make_app(sample_repo, offline=False, tiers=["groq"])
    async with app.run_test() as pilot:
        await submit(pilot, "/apply")
        await submit(pilot, "rename total_area to sum_of_areas")
        await wait_for(pilot, lambda: bool(app.query(Turn)) and last_turn(app).has_class("done"), "the answer")
        await submit(pilot, "/apply")
        notices = [str(s.render()) for s in app.query(".notice").results(Static)]
        said = [n for n in notices if n.startswith("nothing to apply: ")]
        assert said[0] == "nothing to apply: no answer yet; ask for a change first"
        assert said[1].startswith("nothing to apply: the answer shows code but no edit that says where it goes")
