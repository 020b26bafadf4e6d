"""A conversation's memory: earlier turns go with the next question, and unchanged context is not sent twice.

The real pipeline, index and Groq SDK against the loopback emulator; the requests the emulator received
are the evidence.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.config import load_settings
from assistant.context.conversation import Conversation
from assistant.pipeline import Pipeline
from assistant.session import Session
from tests.emulators import fixtures
from tests.emulators.server import Reply

pytestmark = pytest.mark.usefixtures("loopback_only")

FIRST = "explain what make_report returns"
SECOND = "explain how make_report formats the area"
GOOD = "`make_report` returns one line with the circle count and the total area (pkg/report.py:6)."
DEFINITION = "def make_report(radii: list[float]) -> str"


@pytest.fixture
def session(sample_repo: Path, cloud_emulators: fixtures.CloudEmulators) -> Iterator[Session]:
    cloud_emulators.groq.default = Reply(GOOD)
    opened = Session(sample_repo, load_settings(sample_repo, tiers=["groq"], max_output_tokens=128))
    yield opened
    opened.close()


def _messages(body: Any) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in body["messages"]]


def test_a_follow_up_carries_the_earlier_turn_and_leaves_out_its_unchanged_context(
    session: Session, cloud_emulators: fixtures.CloudEmulators
) -> None:
    pipeline = Pipeline(session)
    conversation = Conversation()
    pipeline.ask(FIRST, conversation=conversation)
    pipeline.ask(SECOND, conversation=conversation)

    first, second = (_messages(body) for body in cloud_emulators.groq.bodies())
    assert [role for role, _ in second] == ["system", "user", "assistant", "user"]
    assert second[1] == first[1]  # the earlier question exactly as it was sent
    assert second[2] == ("assistant", GOOD)
    assert DEFINITION in first[1][1]
    follow_up = second[3][1]
    assert DEFINITION not in follow_up
    assert "Sent earlier in this conversation and unchanged: pkg/report.py" in follow_up
    assert f"Question: {SECOND}" in follow_up and follow_up.endswith("no preamble, no summary at the end.")


def test_a_changed_file_is_sent_again(
    session: Session, sample_repo: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    pipeline = Pipeline(session)
    conversation = Conversation()
    pipeline.ask(FIRST, conversation=conversation)
    report = sample_repo / "pkg" / "report.py"
    report.write_text(report.read_text().replace("def make_report(radii: list[float])",
                                                 "def make_report(radii: list[float], unit: str = 'cm')"))
    session.refresh_index()
    pipeline.ask(SECOND, conversation=conversation)

    follow_up = _messages(cloud_emulators.groq.bodies()[1])[-1][1]
    assert "def make_report(radii: list[float], unit: str = 'cm') -> str" in follow_up


def test_clearing_the_conversation_starts_afresh(session: Session, cloud_emulators: fixtures.CloudEmulators) -> None:
    pipeline = Pipeline(session)
    conversation = Conversation()
    pipeline.ask(FIRST, conversation=conversation)
    conversation.clear()
    pipeline.ask(SECOND, conversation=conversation)

    second = _messages(cloud_emulators.groq.bodies()[1])
    assert [role for role, _ in second] == ["system", "user"]
    assert DEFINITION in second[1][1]


def test_without_a_conversation_each_question_stands_alone(
    session: Session, cloud_emulators: fixtures.CloudEmulators
) -> None:
    pipeline = Pipeline(session)
    pipeline.ask(FIRST)
    pipeline.ask(SECOND)

    assert [[role for role, _ in _messages(body)] for body in cloud_emulators.groq.bodies()] == [
        ["system", "user"], ["system", "user"]]


def test_history_keeps_the_latest_turns_that_fit_the_budget() -> None:
    from assistant.context.conversation import Turn

    conversation = Conversation()
    for n in range(5):
        conversation.add(Turn(f"q{n}", "word " * 100, "answer " * 20, frozenset({f"block{n}"})))
    history = conversation.recall(300, lambda text: len(text.split()))
    # two whole turns, then one more that only fits bare; the oldest two are left out
    assert [m.content for m in history.messages][::2] == ["q2", "word " * 100, "word " * 100]
    assert history.blocks == {"block3", "block4"}
    assert history.tokens == 2 * (100 + 20 + 8) + (1 + 20 + 8)


def test_a_turn_too_big_to_go_whole_goes_as_its_bare_question_and_answer() -> None:
    from assistant.context.conversation import Turn

    conversation = Conversation()
    conversation.add(Turn("what is x", "context " * 500 + "what is x", "x is one", frozenset({"big-block"})))
    history = conversation.recall(100, lambda text: len(text.split()))
    assert [m.content for m in history.messages] == ["what is x", "x is one"]
    assert history.blocks == frozenset()  # its context was not carried, so it is not "already sent"


def test_a_follow_up_answer_is_not_stored_for_semantic_reuse(
    sample_repo: Path, installed_model: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    cloud_emulators.groq.default = Reply(GOOD)
    session = Session(sample_repo, load_settings(sample_repo, tiers=["groq"], max_output_tokens=128,
                                                 semantic_cache="on"))
    try:
        pipeline = Pipeline(session)
        conversation = Conversation()
        pipeline.ask(FIRST, conversation=conversation)
        assert session.cache().count() == 2  # the exact entry and the semantic one
        pipeline.ask(SECOND, conversation=conversation)
        assert session.cache().count() == 3  # the follow-up's exact entry only
    finally:
        session.close()


def test_a_conversations_earlier_turns_are_read_from_sonnets_cache(
    tmp_path: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    from tests.assistant.test_cascade import _big_repo

    repo = _big_repo(tmp_path / "big")
    long_answer = GOOD + " " + "The payload passes through each handler in order. " * 120  # a turn worth caching
    cloud_emulators.anthropic.default = Reply(long_answer)
    session = Session(repo, load_settings(repo, tiers=["sonnet"], max_output_tokens=4096))
    try:
        pipeline, conversation = Pipeline(session), Conversation()
        for question in ("explain how handler_3_2 passes the payload on", "explain what retry_policy is for",
                         "explain how handler_7_1 differs from handler_3_2"):
            pipeline.ask(question, conversation=conversation)
        reads = [r.cache_read_tokens for r in session.ledger.records()]
    finally:
        session.close()

    first, second, third = cloud_emulators.anthropic.bodies()
    assert second["system"] == first["system"] and third["system"] == second["system"]
    assert [_text(m) for m in third["messages"][:2]] == [_text(m) for m in second["messages"][:2]]  # byte for byte
    assert reads[0] == 0 and 0 < reads[1] < reads[2]  # each turn reads the turns before it from the cache


def _text(message: dict[str, Any]) -> str:
    return "".join(block["text"] for block in message["content"])


def test_a_long_conversation_is_summarised_by_the_cheapest_tier_and_stays_one_prefix(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    from assistant.accounting.ledger import COMPACTION_TIER
    from assistant.accounting.stats import compute_stats
    from assistant.context.conversation import SUMMARY_HEADING

    cloud_emulators.groq.default = Reply(GOOD + " " + "More detail on the report. " * 40)
    session = Session(sample_repo, load_settings(sample_repo, tiers=["groq"], max_output_tokens=256, compact_at=0.1))
    try:
        pipeline, conversation = Pipeline(session), Conversation()
        for question in (FIRST, SECOND, "explain what main prints"):
            pipeline.ask(question, conversation=conversation)
        records = list(session.ledger.records())
        stats = compute_stats(session.ledger)
    finally:
        session.close()

    bodies = cloud_emulators.groq.bodies()
    summary_calls = [b for b in bodies if b["messages"][0]["content"].startswith("You condense a conversation")]
    assert len(summary_calls) >= 1 and FIRST in summary_calls[0]["messages"][1]["content"]
    last = _messages(bodies[-1])
    assert last[1][1].startswith(SUMMARY_HEADING)  # the folded turns, then the latest turn, then the question
    assert [r.tier for r in records].count(COMPACTION_TIER) == len(summary_calls)
    assert stats.totals.queries == 3 and stats.answered_by == {"groq": 3}  # a summary is a call, not a question
