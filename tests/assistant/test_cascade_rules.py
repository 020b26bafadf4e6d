"""Rules of the cascade beyond escalation itself: how far it may go, offline, the symbol verifier, trimmed
context, local models loaded once, and the semantic cache in front of the tiers.

Everything runs for real: the pipeline, the index, llama.cpp with the quick-start GGUF, the cloud SDKs
against the loopback emulators, the SQLite ledger and caches.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from assistant.accounting.stats import stats_from_records
from assistant.config import load_settings
from assistant.pipeline import Pipeline
from assistant.session import Session
from tests.emulators import fixtures
from tests.emulators.server import Fail, Reply

CloudEmulators = fixtures.CloudEmulators

pytestmark = pytest.mark.usefixtures("loopback_only")

QUESTION = "explain what make_report returns"
GOOD = "`make_report` returns a one-line summary of the circles and their total area (pkg/report.py:6)."
HEDGE = "I'm not sure; I cannot answer that without more context."
BROKEN_CODE = "Here it is:\n```python\ndef make_report(:\n    return\n```\n"




def _calls(cloud_emulators: CloudEmulators) -> dict[str, int]:
    """Requests each emulator received."""
    return {"groq": len(cloud_emulators.groq.bodies()), "gemini": len(cloud_emulators.gemini.bodies()),
            "sonnet": len(cloud_emulators.anthropic.bodies())}


# -- max_escalations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_escalations", "kept", "reason", "called"),
    [
        (1, "gemini", "a python code block does not parse", {"groq": 1, "gemini": 1, "sonnet": 0}),
        (0, "groq", "the answer hedges or refuses", {"groq": 1, "gemini": 0, "sonnet": 0}),
    ],
    ids=["one-escalation", "no-escalation"],
)
def test_max_escalations_stops_the_cascade_and_keeps_the_last_weak_answer_with_the_reason(
    open_session: Any, cloud_emulators: CloudEmulators, max_escalations: int, kept: str, reason: str,
    called: dict[str, int],
) -> None:
    texts = {"groq": HEDGE, "gemini": BROKEN_CODE, "sonnet": GOOD}
    cloud_emulators.groq.script(Reply(texts["groq"]))
    cloud_emulators.gemini.script(Reply(texts["gemini"]))
    cloud_emulators.anthropic.script(Reply(texts["sonnet"]))
    session = open_session(max_escalations=max_escalations)

    answer = Pipeline(session).ask(QUESTION)

    assert _calls(cloud_emulators) == called
    assert answer.tier == kept and answer.answer == texts[kept]
    assert len(answer.escalations) == max_escalations
    assert f"kept {kept}'s answer, the last the cascade allows, although {reason}" in answer.notes
    records = list(session.ledger.records())
    assert [r.tier for r in records] == [t for t, n in called.items() if n]
    assert records[-1].escalation_reason == ""  # the kept answer did not move the question on


def test_a_failed_tier_does_not_carry_the_question_past_the_escalation_limit(
    open_session: Any, cloud_emulators: CloudEmulators
) -> None:
    cloud_emulators.groq.script(Reply(HEDGE))
    cloud_emulators.gemini.script(Fail(400, message="bad request"))
    cloud_emulators.anthropic.script(Reply(GOOD))
    session = open_session(max_escalations=1)

    answer = Pipeline(session).ask(QUESTION)

    assert _calls(cloud_emulators) == {"groq": 1, "gemini": 1, "sonnet": 0}
    assert answer.tier == "groq" and answer.answer == HEDGE
    assert any(n.startswith("kept groq's answer although") and "allows 1 escalation(s)" in n for n in answer.notes)


# -- offline ------------------------------------------------------------------------------------


def test_an_offline_session_calls_no_cloud_tier_even_with_every_key_set(
    open_session: Any, cloud_emulators: CloudEmulators, installed_model: Path
) -> None:
    session = open_session(offline=True, tiers=["local", "groq", "gemini", "sonnet"],
                           local={"min_confidence": 1.0}, max_output_tokens=24)
    settings = session.settings
    assert settings.groq_api_key and settings.gemini_api_key and settings.anthropic_api_key

    answer = Pipeline(session).ask(QUESTION)

    assert _calls(cloud_emulators) == {"groq": 0, "gemini": 0, "sonnet": 0}
    assert answer.tier == "local" and answer.escalations == ()
    assert any(n.startswith("kept local's answer, the last the cascade allows, although low token confidence")
               for n in answer.notes)  # a weak answer that would have escalated online
    assert [(r.tier, r.provider) for r in session.ledger.records()] == [("local", "local")]


def test_a_weak_answer_kept_offline_is_not_taken_from_the_cache_once_online(
    open_session: Any, cloud_emulators: CloudEmulators, installed_model: Path
) -> None:
    settings = {"tiers": ["local", "groq"], "local": {"min_confidence": 1.0}, "max_output_tokens": 24}
    offline_answer = Pipeline(open_session(offline=True, **settings)).ask(QUESTION)
    assert offline_answer.tier == "local"
    cloud_emulators.groq.script(Reply(GOOD))
    session = open_session(**settings)

    answer = Pipeline(session).ask(QUESTION)

    assert answer.tier == "groq" and answer.answer == GOOD
    assert [(e.from_tier, e.to_tier) for e in answer.escalations] == [("local", "groq")]
    assert [(r.tier, r.outcome) for r in session.ledger.records()][-2:] == [("local", "cache_hit"), ("groq", "ok")]
    again = Pipeline(open_session(offline=True, **settings)).ask(QUESTION)
    assert again.tier == "local" and again.cached  # offline, the kept answer is still served from the cache


# -- the missing-symbol verifier ------------------------------------------------------------------


def test_a_cloud_answer_naming_two_symbols_the_index_lacks_escalates_with_their_names(
    open_session: Any, cloud_emulators: CloudEmulators
) -> None:
    cloud_emulators.groq.script(Reply("Call `pkg.nothing_here` first, then `make_unicorns` builds the report."))
    cloud_emulators.gemini.script(Reply(GOOD))
    session = open_session(tiers=["groq", "gemini"])

    answer = Pipeline(session).ask(QUESTION)

    assert answer.tier == "gemini" and answer.answer == GOOD
    reason = "names symbols the index does not have (pkg.nothing_here, make_unicorns)"
    assert [(e.from_tier, e.to_tier, e.reason) for e in answer.escalations] == [("groq", "gemini", reason)]
    groq, gemini = session.ledger.records()
    assert (groq.escalation_reason, groq.confidence) == (reason, 0.4)
    assert (gemini.escalation_reason, gemini.confidence) == ("", 1.0)


def test_library_calls_files_and_members_of_known_names_are_not_missing_symbols(
    open_session: Any, cloud_emulators: CloudEmulators
) -> None:
    text = ("`make_report` in `report.py` joins lines with `str.join`, then `json.dumps` and `functools.wraps` "
            "(again: `functools.wraps`) and `pkg.report.make_report` and `self.total_area`; `response.json` "
            "and `self.h` are members, not files.")
    cloud_emulators.groq.script(Reply(text))
    session = open_session(tiers=["groq", "gemini"])

    answer = Pipeline(session).ask(QUESTION)

    assert [e.reason for e in answer.escalations] == [] and answer.tier == "groq"
    assert _calls(cloud_emulators)["gemini"] == 0


def test_members_the_repositorys_own_class_or_module_lacks_are_missing_symbols(
    open_session: Any, cloud_emulators: CloudEmulators
) -> None:
    cloud_emulators.groq.script(Reply("Use `Circle.perimeter` and then `pkg.report.render_all`."))
    cloud_emulators.gemini.script(Reply(GOOD))
    session = open_session(tiers=["groq", "gemini"])

    answer = Pipeline(session).ask(QUESTION)

    assert [e.reason for e in answer.escalations] == [
        "names symbols the index does not have (Circle.perimeter, pkg.report.render_all)"]


@pytest.mark.parametrize(
    "text",
    [
        "`make_report` adds up `total_area` of the circles, each from `Circle.area` in `pkg.shapes`.",
        "`make_report` formats the total; `pkg.nothing_here` is not involved.",  # one unknown name is tolerated
    ],
    ids=["all-known", "one-unknown"],
)
def test_a_cloud_answer_naming_symbols_the_index_has_does_not_escalate(
    open_session: Any, cloud_emulators: CloudEmulators, text: str
) -> None:
    cloud_emulators.groq.script(Reply(text))
    session = open_session(tiers=["groq", "gemini"])

    answer = Pipeline(session).ask(QUESTION)

    assert answer.tier == "groq" and answer.answer == text
    assert answer.escalations == () and answer.confidence == 1.0
    assert _calls(cloud_emulators) == {"groq": 1, "gemini": 0, "sonnet": 0}


# -- trimmed context ------------------------------------------------------------------------------


def test_a_definition_too_large_for_the_tiers_budget_is_left_out_with_a_note(
    open_session: Any, cloud_emulators: CloudEmulators
) -> None:
    session = open_session(tiers=["groq"])
    row = "x" * 2000
    rows = "".join(f'        "{i:03d} {row}",\n' for i in range(80))
    (session.repo / "pkg" / "bulky.py").write_text(
        f'def bulky_table() -> list[str]:\n    """Rows too long for any context budget."""\n    return [\n{rows}    ]\n'
    )
    cloud_emulators.groq.script(Reply("`bulky_table` returns a list of long rows."))

    answer = Pipeline(session).ask("explain what bulky_table returns")

    trimmed = re.compile(r"(\d+) context piece\(s\) left out to fit the groq tier's budget")
    notes = [m for m in map(trimmed.fullmatch, answer.notes) if m]
    assert len(notes) == 1 and int(notes[0][1]) >= 1
    (body,) = cloud_emulators.groq.bodies()
    sent = body["messages"][-1]["content"]
    assert row not in sent  # the definition is not sent whole; its signature goes instead
    assert "def bulky_table() -> list[str]" in sent and "Rows too long for any context budget." in sent


def test_a_context_that_fits_gives_no_trimmed_note(open_session: Any, cloud_emulators: CloudEmulators) -> None:
    cloud_emulators.groq.script(Reply(GOOD))

    answer = Pipeline(open_session(tiers=["groq"])).ask(QUESTION)

    assert not [n for n in answer.notes if "left out to fit" in n]
    assert "def make_report" in cloud_emulators.groq.bodies()[0]["messages"][-1]["content"]


# -- local models load once -----------------------------------------------------------------------


def test_two_questions_in_one_session_use_the_same_loaded_local_model(
    open_session: Any, installed_model: Path
) -> None:
    session = open_session(tiers=["local"], max_output_tokens=16, local={"context_tokens": 1024})
    pipeline = Pipeline(session)
    assert session.tiers.loaded_models() == []

    pipeline.ask(QUESTION)
    backend = session.tiers.get("local")
    (model,) = session.tiers.loaded_models()  # the coder and the classifier share the one file
    llm = model.llm
    pipeline.ask("explain what total_area computes")

    assert session.tiers.get("local") is backend
    assert session.tiers.loaded_models() == [model]
    assert model.llm is llm
    assert [(r.tier, r.outcome) for r in session.ledger.records()] == [("local", "ok"), ("local", "ok")]


# -- the semantic cache inside the pipeline --------------------------------------------------------


@pytest.fixture
def semantic_session(open_session: Any, quickstart_gguf: Path) -> Session:
    """A groq-only session with the semantic cache on and the quick-start model named as the embedder."""
    session: Session = open_session(tiers=["groq"], semantic_cache="on", local={"embedder": str(quickstart_gguf)})
    return session


def test_a_politer_wording_of_an_earlier_question_is_answered_from_the_semantic_cache_at_no_cost(
    semantic_session: Session, cloud_emulators: CloudEmulators
) -> None:
    cloud_emulators.groq.script(Reply(GOOD))
    pipeline = Pipeline(semantic_session)

    first = pipeline.ask("Explain make_report")
    second = pipeline.ask("please explain make_report")

    assert first.cached is False and second.cached is True
    assert (second.answer, second.tier, second.cost_usd) == (GOOD, "groq", 0.0)
    assert len(cloud_emulators.groq.bodies()) == 1
    (note,) = [n for n in second.notes if n.startswith("semantic cache hit")]
    assert re.fullmatch(r'semantic cache hit \(0\.9\d\d\): answered earlier as "Explain make_report"', note)
    asked, hit = semantic_session.ledger.records()
    assert (asked.outcome, asked.cost_usd > 0) == ("ok", True)
    assert (hit.tier, hit.provider, hit.outcome, hit.cached, hit.cost_usd) == ("groq", "cache", "cache_hit", True, 0.0)


@pytest.mark.parametrize("other", ["explain why make_report is not called", "what does make_report return"])
def test_a_question_that_asks_something_else_is_not_answered_from_the_semantic_cache(
    semantic_session: Session, cloud_emulators: CloudEmulators, other: str
) -> None:
    cloud_emulators.groq.script(Reply(GOOD), Reply("It is called from `main` in pkg/report.py:13."))
    pipeline = Pipeline(semantic_session)

    pipeline.ask("Explain make_report")
    again = pipeline.ask(other)

    assert again.cached is False and not [n for n in again.notes if n.startswith("semantic cache hit")]
    assert len(cloud_emulators.groq.bodies()) == 2
    assert [r.outcome for r in semantic_session.ledger.records()] == ["ok", "ok"]


@pytest.mark.parametrize(
    ("limit", "text", "escalates"),
    [
        (1, "`make_report` formats the total; `pkg.nothing_here` is not involved.", True),
        (0, "Call `pkg.nothing_here` first, then `make_unicorns` builds the report.", False),
    ],
    ids=["one-is-enough", "check-off"],
)
def test_the_unknown_symbol_limit_is_configurable(
    open_session: Any, cloud_emulators: CloudEmulators, limit: int, text: str, escalates: bool
) -> None:
    cloud_emulators.groq.script(Reply(text))
    cloud_emulators.gemini.script(Reply(GOOD))
    session = open_session(tiers=["groq", "gemini"], unknown_symbol_limit=limit)

    answer = Pipeline(session).ask(QUESTION)

    assert answer.tier == ("gemini" if escalates else "groq")
    assert [e.reason for e in answer.escalations] == (
        ["names symbols the index does not have (pkg.nothing_here)"] if escalates else [])


def test_a_cached_answer_is_kept_when_every_later_tier_is_unavailable(sample_repo: Path, installed_model: Path) -> None:
    settings = load_settings(sample_repo, tiers=["local", "groq"], local={"min_confidence": 1.0},
                             max_output_tokens=24)
    assert settings.groq_api_key is None  # groq is skipped: no key
    session = Session(sample_repo, settings)
    try:
        first = Pipeline(session).ask(QUESTION)
        again = Pipeline(session).ask(QUESTION)  # local's answer is cached with its rejected verdict

        assert (first.tier, first.cached) == ("local", False)
        assert (again.tier, again.cached, again.answer) == ("local", True, first.answer)
        assert any(n.startswith("kept local's answer although low token confidence") and
                   n.endswith("no later tier answered") for n in again.notes)
        records = list(session.ledger.records())
    finally:
        session.close()
    assert [(r.tier, r.outcome) for r in records] == [("local", "ok"), ("local", "cache_hit")]
    assert stats_from_records(records).answered_by == {"local": 1, "cache": 1}
