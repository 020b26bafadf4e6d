"""Thinking is counted apart: each provider's thinking tokens (exact where it reports them, estimated from the
output the answer does not use where it does not) reach the answer's usage, `--json`, the ledger and `stats`,
and the text the model showed of its thinking goes with the answer, never into it (issue 23, item 3). Gemini
streams its thought summaries only when a request asks for them (`include_thoughts`), which Tiercode does with
the effort the answer's shape gives (its thinking level).

The real pipeline and the official SDKs against the loopback emulators, which stream thinking as each API does.
"""

from __future__ import annotations

from typing import Any

import pytest

from assistant.accounting.stats import compute_stats
from assistant.pipeline import Pipeline
from models.base import approx_tokens
from tests.emulators.fixtures import CloudEmulators
from tests.emulators.server import Reply

pytestmark = pytest.mark.usefixtures("loopback_only")

QUESTION = "explain what make_report returns"
GOOD = "`make_report` returns a one-line summary of the circles and their total area (pkg/report.py:6)."
THOUGHT = ("The user asks what make_report returns. It builds a string from the circle count and the total "
           "area, so the answer is that line; cite pkg/report.py.")


@pytest.mark.parametrize("tier", ["sonnet", "gemini", "groq"])
def test_thinking_tokens_are_recorded_apart_from_the_answer(
    open_session: Any, cloud_emulators: CloudEmulators, tier: str
) -> None:
    getattr(cloud_emulators, "anthropic" if tier == "sonnet" else tier).default = Reply(GOOD, thinking=THOUGHT)
    session = open_session(tiers=[tier], max_output_tokens=4096)
    answer = Pipeline(session).ask(QUESTION, tier=tier)

    assert answer.answer.strip() == GOOD and THOUGHT not in answer.answer
    assert answer.thinking == THOUGHT
    usage = answer.usage
    assert 0 < usage.thinking_tokens < usage.output_tokens
    if tier != "sonnet":  # Gemini's thoughtsTokenCount and Groq's reasoning_tokens are exact
        assert usage.thinking_tokens == approx_tokens(THOUGHT)
    (record,) = [r for r in session.ledger.records() if r.outcome == "ok"]
    assert record.thinking_tokens == usage.thinking_tokens
    assert answer.to_json()["usage"]["thinking_tokens"] == usage.thinking_tokens
    totals = compute_stats(session.ledger).totals
    assert totals.thinking_tokens == usage.thinking_tokens
    assert f"({usage.thinking_tokens:,} thinking)" in compute_stats(session.ledger).to_text()


def test_an_answer_without_thinking_records_none(open_session: Any, cloud_emulators: CloudEmulators) -> None:
    cloud_emulators.anthropic.default = Reply(GOOD)
    session = open_session(tiers=["sonnet"], max_output_tokens=4096)
    answer = Pipeline(session).ask(QUESTION, tier="sonnet")
    assert answer.usage.thinking_tokens == 0 and answer.thinking == ""
    assert [r.thinking_tokens for r in session.ledger.records()] == [0]


def test_gemini_is_sent_the_effort_as_its_thinking_level(open_session: Any, cloud_emulators: CloudEmulators) -> None:
    cloud_emulators.gemini.default = Reply(GOOD, thinking=THOUGHT)
    pipeline = Pipeline(open_session(tiers=["gemini"], max_output_tokens=4096))
    pipeline.ask(QUESTION, tier="gemini")
    pipeline.ask("design a plugin architecture for the shapes package so third parties can add new shapes across"
                 " the whole system", tier="gemini")

    explain, design = (body["generationConfig"]["thinkingConfig"] for body in cloud_emulators.gemini.bodies())
    assert explain == {"thinking_level": "LOW", "include_thoughts": True}  # protobuf JSON, as the SDK sends it
    assert design == {"thinking_level": "HIGH", "include_thoughts": True}


def test_groq_is_sent_an_effort_only_for_a_model_that_reasons(
    open_session: Any, cloud_emulators: CloudEmulators
) -> None:
    cloud_emulators.groq.default = Reply(GOOD)
    fast = {"provider": "groq", "model": "llama-3.3-70b-versatile", "input": 0.59, "output": 0.79}
    session = open_session(tiers=["groq", "fast"], tier={"fast": fast}, max_output_tokens=4096)
    pipeline = Pipeline(session)
    pipeline.ask(QUESTION, tier="groq")  # openai/gpt-oss-120b: `thinks` in prices.toml
    pipeline.ask(QUESTION, tier="fast")

    reasoning, plain = cloud_emulators.groq.bodies()
    assert (reasoning["model"], reasoning["reasoning_effort"]) == ("openai/gpt-oss-120b", "low")
    assert plain["model"] == "llama-3.3-70b-versatile" and "reasoning_effort" not in plain  # it would reject one
