"""The response cache inside the real pipeline: hits are $0 ledger records; an edit invalidates them."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.config import load_settings
from assistant.pipeline import Pipeline
from assistant.session import Session

QUESTION = "explain what make_report returns"


@pytest.fixture
def session(sample_repo: Path, installed_model: Path) -> Session:
    session = Session(sample_repo, load_settings(sample_repo, offline=True, max_output_tokens=24))
    yield session
    session.close()


def test_the_same_question_again_is_a_cache_hit_at_no_cost(session: Session) -> None:
    pipeline = Pipeline(session)
    first = pipeline.ask(QUESTION)
    second = pipeline.ask(QUESTION)
    assert first.cached is False and second.cached is True
    assert second.answer == first.answer and second.tier == "local"
    assert second.cost_usd == 0.0 and second.usage.output_tokens == 0
    records = list(session.ledger.records())
    assert [r.outcome for r in records] == ["ok", "cache_hit"]
    assert records[1].cached and records[1].cost_usd == 0.0
    assert records[1].output_tokens == records[0].output_tokens  # what the hit saved


def test_editing_a_file_in_the_context_invalidates_the_entry(session: Session, sample_repo: Path) -> None:
    pipeline = Pipeline(session)
    first = pipeline.ask(QUESTION)
    assert any(s.path == "pkg/report.py" for s in first.sources)
    report = sample_repo / "pkg" / "report.py"
    report.write_text(report.read_text().replace("circles, total area", "circles with total area"))
    session.refresh_index()
    again = pipeline.ask(QUESTION)
    assert again.cached is False
    assert [r.outcome for r in session.ledger.records()] == ["ok", "ok"]


def test_no_cache_neither_reads_nor_writes(session: Session) -> None:
    pipeline = Pipeline(session)
    pipeline.ask(QUESTION, use_cache=False)
    assert session.cache().count() == 0
    pipeline.ask(QUESTION)
    assert pipeline.ask(QUESTION, use_cache=False).cached is False
