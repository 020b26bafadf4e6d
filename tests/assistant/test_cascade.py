"""The cascade across tiers: the real pipeline, the real SDKs and the loopback API emulators.

Every rule is checked where the user would see it: the answer, its escalation trail, and the ledger.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from assistant.accounting.ledger import CallRecord
from assistant.cli.main import cli
from assistant.config import load_settings
from assistant.errors import BudgetStop
from assistant.pipeline import Pipeline
from assistant.session import Session
from models import pricing
from models.base import Usage
from tests.emulators import fixtures
from tests.emulators.server import Drop, Fail, Reply

CloudEmulators = fixtures.CloudEmulators

pytestmark = pytest.mark.usefixtures("loopback_only")

QUESTION = "explain what make_report returns"
GOOD = "`make_report` returns a one-line summary of the circles and their total area (pkg/report.py:6)."




def _records(session: Session) -> list[CallRecord]:
    return list(session.ledger.records())


def _usage(record: CallRecord) -> Usage:
    return Usage(record.input_tokens, record.output_tokens, record.cache_read_tokens, record.cache_write_tokens)


def test_weak_answers_escalate_with_their_reasons_and_every_call_is_priced(
    open_session: Any, cloud_emulators: CloudEmulators
) -> None:
    cloud_emulators.groq.script(Reply("I'm not sure; I cannot answer that without more context."))
    cloud_emulators.gemini.script(Reply("Here it is:\n```python\ndef make_report(:\n    return\n```\n"))
    cloud_emulators.anthropic.script(Reply(GOOD))
    session = open_session()

    answer = Pipeline(session).ask(QUESTION)

    assert answer.tier == "sonnet" and answer.answer == GOOD
    assert [(e.from_tier, e.to_tier) for e in answer.escalations] == [("groq", "gemini"), ("gemini", "sonnet")]
    assert [e.reason for e in answer.escalations] == [
        "the answer hedges or refuses", "a python code block does not parse"]
    records = _records(session)
    assert [(r.tier, r.outcome) for r in records] == [("groq", "ok"), ("gemini", "ok"), ("sonnet", "ok")]
    assert [r.escalation_reason for r in records] == [e.reason for e in answer.escalations] + [""]
    for record in records:
        assert record.cost_usd == pytest.approx(pricing.cost_usd(record.model, _usage(record)))
        assert record.cost_usd > 0 and record.input_tokens > 0
    assert answer.cost_usd == pytest.approx(sum(r.cost_usd for r in records))
    assert len({r.query_id for r in records}) == 1
    assert {(r.kind, r.route_stage) for r in records} == {("explain", "rules")}  # who labelled the question
    assert all(r.route_probability is not None and 0 < r.route_probability <= 1 for r in records)
    assert [r.confidence for r in records] == [0.2, 0.3, 1.0]  # what each verdict scored, kept per call
    assert answer.confidence == 1.0


def test_a_low_confidence_local_answer_escalates_to_the_cloud(
    open_session: Any, cloud_emulators: CloudEmulators, installed_model: Path
) -> None:
    cloud_emulators.groq.script(Reply(GOOD))
    session = open_session(tiers=["local", "groq"], local={"min_confidence": 1.0}, max_output_tokens=24)

    answer = Pipeline(session).ask(QUESTION)

    assert answer.tier == "groq" and answer.answer == GOOD
    local, groq = _records(session)
    assert (local.tier, local.cost_usd, groq.tier) == ("local", 0.0, "groq")
    assert local.escalation_reason and answer.escalations[0].reason == local.escalation_reason
    assert local.confidence is not None and 0 < local.confidence < 1  # the answer's token probability
    assert f"({local.confidence:.2f} < 1.00)" in local.escalation_reason


def test_transient_failures_are_retried_and_each_attempt_is_a_ledger_record(
    open_session: Any, cloud_emulators: CloudEmulators
) -> None:
    cloud_emulators.groq.script(Fail(429, retry_after=0), Fail(503, retry_after=0), Reply(GOOD))
    session = open_session()

    answer = Pipeline(session).ask(QUESTION)

    assert answer.tier == "groq" and answer.answer == GOOD
    assert len(cloud_emulators.groq.bodies()) == 3
    records = _records(session)
    assert [(r.outcome, r.attempt) for r in records] == [("error", 1), ("error", 2), ("ok", 3)]
    assert "429" in records[0].error and "503" in records[1].error


def test_a_stream_dropped_after_text_is_recorded_with_its_usage_and_the_next_tier_answers(
    open_session: Any, cloud_emulators: CloudEmulators
) -> None:
    cloud_emulators.gemini.script(Drop(after=3))
    cloud_emulators.anthropic.script(Reply(GOOD))
    session = open_session(tiers=["gemini", "sonnet"])

    answer = Pipeline(session).ask(QUESTION)

    assert answer.tier == "sonnet" and answer.answer == GOOD
    assert len(cloud_emulators.gemini.requests) == 1  # its text reached the user: a retry would print another
    dropped, ok = _records(session)
    assert (dropped.tier, dropped.outcome, ok.outcome) == ("gemini", "error", "ok")
    assert dropped.input_tokens > 0 and dropped.cost_usd > 0  # the provider bills what it streamed
    assert answer.cost_usd == pytest.approx(dropped.cost_usd + ok.cost_usd)


def test_a_rejected_key_fails_at_once_and_the_next_tier_answers(
    open_session: Any, cloud_emulators: CloudEmulators, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "gsk_wrong_key")
    cloud_emulators.gemini.script(Reply(GOOD))
    session = open_session()

    answer = Pipeline(session).ask(QUESTION)

    assert answer.tier == "gemini"
    assert len(cloud_emulators.groq.bodies()) == 1  # no retry for a 401
    rejected = _records(session)[0]
    assert rejected.outcome == "error" and "401" in rejected.error
    assert "gsk_wrong_key" not in rejected.error
    assert answer.escalations[0].from_tier == "groq" and "401" in answer.escalations[0].reason


def test_a_tier_without_a_key_is_skipped_with_a_note(
    open_session: Any, cloud_emulators: CloudEmulators, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GROQ_API_KEY")
    cloud_emulators.gemini.script(Reply(GOOD))
    session = open_session()

    answer = Pipeline(session).ask(QUESTION)

    assert answer.tier == "gemini"
    assert any("GROQ_API_KEY" in note for note in answer.notes)
    assert [r.tier for r in _records(session)] == ["gemini"]


def test_a_budget_in_fail_mode_stops_before_the_call(open_session: Any, cloud_emulators: CloudEmulators) -> None:
    session = open_session(budget={"per_query": 0.000001, "action": "fail"})

    with pytest.raises(BudgetStop, match="per-query budget"):
        Pipeline(session).ask(QUESTION)

    assert cloud_emulators.groq.bodies() == []
    (stop,) = _records(session)
    assert (stop.outcome, stop.cost_usd) == ("budget_stop", 0.0)


def test_downgrade_answers_with_the_cheaper_tier_that_fits(
    open_session: Any, cloud_emulators: CloudEmulators
) -> None:
    cloud_emulators.groq.script(Reply(GOOD))
    session = open_session(tiers=["groq", "sonnet"], budget={"per_query": 0.002, "action": "downgrade"})

    answer = Pipeline(session).ask(QUESTION, tier="sonnet")

    assert answer.tier == "groq" and answer.answer == GOOD
    assert cloud_emulators.anthropic.bodies() == []
    assert any("downgraded from sonnet to groq" in note for note in answer.notes)
    assert [r.tier for r in _records(session)] == ["groq"]


@pytest.mark.parametrize(
    ("tiers", "limit", "action", "says"),
    [
        ('["groq"]', "0.000001", "pause", "per-query budget"),
        ('["groq", "sonnet"]', "0.0000001", "downgrade",
         "no tier cheaper than groq fits the budget and no tier has answered"),
    ],
    ids=["pause-not-confirmed", "downgrade-with-nothing-cheaper"],
)
def test_ask_exits_3_when_a_budget_stops_the_first_call(
    sample_repo: Path, cloud_emulators: CloudEmulators, monkeypatch: pytest.MonkeyPatch,
    tiers: str, limit: str, action: str, says: str,
) -> None:
    monkeypatch.setenv("TIERCODE_TIERS", tiers)
    monkeypatch.setenv("TIERCODE_BUDGET__PER_QUERY", limit)
    monkeypatch.setenv("TIERCODE_BUDGET__ACTION", action)

    result = CliRunner().invoke(cli, ["ask", "--repo", str(sample_repo), QUESTION])

    assert result.exit_code == 3
    assert says in result.stderr
    assert cloud_emulators.groq.bodies() == [] and cloud_emulators.anthropic.bodies() == []


def test_a_cloud_call_above_confirm_above_usd_is_not_made_without_consent(
    sample_repo: Path, cloud_emulators: CloudEmulators, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIERCODE_TIERS", '["groq"]')
    monkeypatch.setenv("TIERCODE_CONFIRM_ABOVE_USD", "0.0000001")

    refused = CliRunner().invoke(cli, ["ask", "--repo", str(sample_repo), QUESTION])
    cloud_emulators.groq.script(Reply(GOOD))
    accepted = CliRunner().invoke(cli, ["ask", "--repo", str(sample_repo), "--yes", QUESTION])

    assert refused.exit_code == 3
    assert "groq call declined (estimated $" in refused.stderr and "--yes" in refused.stderr
    assert accepted.exit_code == 0, accepted.stderr
    assert GOOD in accepted.stdout
    assert len(cloud_emulators.groq.bodies()) == 1  # only the consented call was made


def test_yes_accepts_the_paused_budget_and_the_call_is_made(
    sample_repo: Path, cloud_emulators: CloudEmulators, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIERCODE_TIERS", '["groq"]')
    monkeypatch.setenv("TIERCODE_BUDGET__PER_QUERY", "0.000001")
    monkeypatch.setenv("TIERCODE_BUDGET__ACTION", "pause")
    cloud_emulators.groq.script(Reply(GOOD))

    result = CliRunner().invoke(cli, ["ask", "--repo", str(sample_repo), "--yes", QUESTION])

    assert result.exit_code == 0, result.stderr
    assert GOOD in result.stdout
    assert len(cloud_emulators.groq.bodies()) == 1


def _big_repo(root: Path, modules: int = 40) -> Path:
    """A repository whose repo map is long enough for the provider's prompt cache."""
    for m in range(modules):
        lines = [f"from lib.mod{(m + 1) % modules} import handler_{(m + 1) % modules}_0\n"]
        for f in range(6):
            lines.append(f"def handler_{m}_{f}(request_payload, retry_policy=None):\n"
                         f"    return handler_{(m + 1) % modules}_0(request_payload)\n\n")
        (root / "lib").mkdir(parents=True, exist_ok=True)
        (root / "lib" / f"mod{m}.py").write_text("".join(lines))
    return root


def test_the_repo_map_is_a_cached_prefix_for_sonnet(
    tmp_path: Path, cloud_emulators: CloudEmulators
) -> None:
    repo = _big_repo(tmp_path / "big")
    cloud_emulators.anthropic.script(Reply(GOOD), Reply(GOOD))
    session = Session(repo, load_settings(repo, tiers=["sonnet"], max_output_tokens=128))
    try:
        pipeline = Pipeline(session)
        pipeline.ask("explain how handler_3_2 passes the payload on")
        pipeline.ask("explain what retry_policy is for in handler_7_1")
    finally:
        session.close()

    first, second = cloud_emulators.anthropic.bodies()
    assert "Repository map" in first["system"][0]["text"]
    assert first["system"][0]["cache_control"]["type"] == "ephemeral"
    assert second["system"] == first["system"]  # the stable prefix is byte-identical across questions
    write, read = _records(session)
    assert write.cache_write_tokens > 0 and write.cache_read_tokens == 0
    assert read.cache_read_tokens == write.cache_write_tokens
    assert read.cost_usd == pytest.approx(pricing.cost_usd(read.model, _usage(read)))


def test_a_prefix_below_the_minimum_gets_no_cache_breakpoint(
    open_session: Any, cloud_emulators: CloudEmulators
) -> None:
    cloud_emulators.anthropic.script(Reply(GOOD))
    Pipeline(open_session(tiers=["sonnet"])).ask(QUESTION)

    (body,) = cloud_emulators.anthropic.bodies()
    assert "cache_control" not in body["system"][0]


def test_the_context_carries_the_callers_of_the_symbol_asked_about(
    open_session: Any, cloud_emulators: CloudEmulators
) -> None:
    cloud_emulators.groq.script(Reply(GOOD))
    answer = Pipeline(open_session()).ask("explain what total_area computes")

    assert ("pkg/report.py", 9) in {(s.path, s.line) for s in answer.sources}
    (body,) = cloud_emulators.groq.bodies()
    content = body["messages"][-1]["content"]
    assert "total area {total_area(circles):.2f}" in content  # the caller's line, shown once:
    assert ("pkg/report.py:9 uses total_area in make_report" in content) != (
        "### pkg/report.py:6 function make_report" in content)  # alone, or within its definition sent whole


def test_the_context_carries_dense_hits_once_the_repository_is_embedded(
    open_session: Any, cloud_emulators: CloudEmulators, quickstart_gguf: Path
) -> None:
    from indexer.embed import sync_vectors

    (Path(open_session().repo) / "pkg" / "ledger.py").write_text(
        'def settle(entries):\n    """Close the period."""\n'
        "    # συμφωνία κάθε τιμολογίου με το αντίγραφο της τράπεζας πριν από τον έλεγχο\n"
        "    return [e for e in entries if not e.matched]\n", encoding="utf-8"
    )  # words in a script the full-text tables do not index: only an embedding sees them
    question = "συμφωνία τιμολογίων με το αντίγραφο της τράπεζας πριν από τον έλεγχο;"
    cloud_emulators.groq.script(Reply(GOOD), Reply(GOOD))
    before = Pipeline(open_session()).ask(question, use_cache=False)
    session = open_session(local={"embedder": str(quickstart_gguf)})  # named: the quick-start model embeds
    vectors = session.vectors(create=True)
    embedder = session.code_embedder()
    assert vectors is not None and embedder is not None
    sync_vectors(session.store(), session.repo, vectors, embedder)
    after = Pipeline(session).ask(question, use_cache=False)

    assert ("pkg/ledger.py", 1) not in {(s.path, s.line) for s in before.sources}
    assert ("pkg/ledger.py", 1) in {(s.path, s.line) for s in after.sources}
    sent = cloud_emulators.groq.bodies()[-1]["messages"][-1]["content"]
    assert "### pkg/ledger.py:1 function settle\ndef settle(entries):" in sent


def test_the_classifier_models_call_is_a_ledger_record_that_never_counts_as_the_answer(
    open_session: Any, cloud_emulators: CloudEmulators, installed_model: Path
) -> None:
    from assistant.accounting.stats import stats_from_records

    cloud_emulators.groq.script(Reply(GOOD))
    session = open_session(tiers=["groq"])  # the classifier still runs on the local model

    answer = Pipeline(session).ask("hmm the tokens thing again")  # neither the rules nor the lexical stage decide

    classified, answered = _records(session)
    assert (classified.tier, classified.provider, classified.outcome) == ("classifier", "local", "ok")
    assert classified.route_stage == "classifier" and classified.cost_usd == 0.0
    assert classified.input_tokens > 0 and classified.output_tokens > 0 and classified.latency_ms > 0
    assert classified.query_id == answered.query_id == answer.query_id
    stats = stats_from_records(_records(session))
    assert stats.answered_by == {"groq": 1} and stats.escalated == 0 and stats.totals.calls == 2


def test_a_question_labelled_lookup_that_names_known_symbols_is_answered_by_the_index(
    open_session: Any, cloud_emulators: CloudEmulators
) -> None:
    cloud_emulators.groq.script(Reply(GOOD))
    session = open_session()
    pipeline = Pipeline(session)

    answer = pipeline.ask("in which file do make_report and `total_area` live?")
    assert (answer.tier, answer.cost_usd, answer.kind) == ("index", 0.0, "lookup")
    assert ("pkg/report.py", 9) in {(s.path, s.line) for s in answer.sources}
    (record,) = _records(session)
    assert (record.tier, record.route_stage) == ("index", "rules")  # the router's label, not a pattern
    assert cloud_emulators.groq.bodies() == []
    assert pipeline.plan("in which file do make_report and `total_area` live?").preflight

    behaviour = pipeline.ask("where does make_report print to?")  # labelled lookup, but it asks what code does
    assert behaviour.tier == "groq" and len(cloud_emulators.groq.bodies()) == 1


def test_a_configured_base_url_sends_the_tier_through_a_gateway(
    open_session: Any, cloud_emulators: CloudEmulators, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GROQ_BASE_URL", "http://127.0.0.1:9")  # nothing listens there: only the setting can work
    cloud_emulators.groq.script(Reply(GOOD))
    session = open_session(tiers=["groq"], groq_base_url=cloud_emulators.groq.base_url)

    assert Pipeline(session).ask(QUESTION).answer == GOOD
    assert len(cloud_emulators.groq.bodies()) == 1


def test_each_tiers_context_budget_comes_from_the_settings(open_session: Any, cloud_emulators: CloudEmulators) -> None:
    cloud_emulators.groq.script(Reply(GOOD), Reply(GOOD))
    roomy = Pipeline(open_session(tiers=["groq"])).ask(QUESTION, use_cache=False)
    tight = Pipeline(open_session(tiers=["groq"], context={"groq": 40})).ask(QUESTION, use_cache=False)

    assert not any("left out" in note for note in roomy.notes)
    assert any(note.endswith("context piece(s) left out to fit the groq tier's budget") for note in tight.notes)
    wide, narrow = (body["messages"][-1]["content"] for body in cloud_emulators.groq.bodies())
    called = "pkg/shapes.py:25 function total_area"  # what make_report calls: its signature, or whole with room
    assert called in wide and called not in narrow
