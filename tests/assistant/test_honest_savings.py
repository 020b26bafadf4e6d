"""Honest savings: an index answer counts in the all-Sonnet counterfactual as the Sonnet call it saved
(issue 23, item 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.accounting.stats import compute_stats
from assistant.config import load_settings
from assistant.pipeline import Pipeline
from assistant.session import Session
from models import pricing
from models.base import Usage
from tests.assistant.test_ask_cli import tiercode
from tests.assistant.test_cascade import _big_repo


def test_an_index_answer_is_priced_as_the_sonnet_call_it_saved(sample_repo: Path) -> None:
    session = Session(sample_repo, load_settings(sample_repo, offline=True))
    try:
        answer = Pipeline(session).ask("where is Circle defined?")
        (record,) = session.ledger.records()
        stats = compute_stats(session.ledger, by="tier")
    finally:
        session.close()
    assert answer.tier == "index" and record.cost_usd == 0
    repo_tokens = sum(p.stat().st_size for p in sample_repo.rglob("*.py")) // 4
    floor = pricing.cost_usd(pricing.default_model("sonnet"), Usage(input_tokens=repo_tokens))
    assert record.counterfactual_usd is not None and record.counterfactual_usd > floor
    assert stats.totals.counterfactual_usd == pytest.approx(record.counterfactual_usd)
    assert stats.totals.savings_usd == pytest.approx(record.counterfactual_usd)
    assert stats.groups["index"].savings_usd == pytest.approx(record.counterfactual_usd)


def test_a_large_repository_is_priced_at_sonnets_budgets_not_its_size(tmp_path: Path) -> None:
    repo = _big_repo(tmp_path / "big", modules=200)
    session = Session(repo, load_settings(repo, offline=True))
    try:
        Pipeline(session).ask("where is handler_3_2 defined?")
        (record,) = session.ledger.records()
        budgets = session.tiers.spec("sonnet").budgets
    finally:
        session.close()
    ceiling = pricing.cost_usd(pricing.default_model("sonnet"), Usage(
        input_tokens=budgets.context_tokens + budgets.map_tokens + 200, output_tokens=400))
    assert record.counterfactual_usd is not None and 0 < record.counterfactual_usd < ceiling


def test_stats_json_reports_the_index_answers_savings(sample_repo: Path) -> None:
    assert tiercode("ask", "--offline", "where is Circle defined?", "--repo", str(sample_repo)).returncode == 0
    done = tiercode("stats", "--json")
    report = json.loads(done.stdout)
    assert report["savings_usd"] > 0 and report["counterfactual_usd"] == report["savings_usd"]
