"""The rules stage of classification and the starting tier it picks."""

from __future__ import annotations

import pytest

from assistant.router import classify, classify_fast, difficulty_of


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("where is the config loaded?", "lookup"),
        ("who calls parse_source?", "lookup"),
        ("explain how the ledger stays append-only", "explain"),
        ("what does build_index return?", "explain"),
        ("rename Session.store to Session.index", "edit"),
        ("refactor the scan function into two functions", "edit"),
        ("write a unit test for the budget guard", "generate"),
        ("implement a JSON exporter for the stats", "generate"),
        ("I get a KeyError traceback when I run index, why?", "debug"),
        ("review this diff for bugs", "review"),
        ("how should we structure the plugin architecture?", "design"),
    ],
)
def test_clear_questions_are_decided_by_the_rules(question: str, kind: str) -> None:
    route = classify_fast(question)
    assert route is not None, question
    assert route.kind == kind
    assert route.stage == "rules"
    assert 0.5 < route.probability <= 1.0


def test_unclear_questions_are_left_to_the_classifier() -> None:
    assert classify_fast("hmm the tokens thing again") is None
    route = classify("hmm the tokens thing again")
    assert route.stage == "default" and route.kind == "explain"


def test_difficulty_and_start_tier_grow_with_scope() -> None:
    assert difficulty_of("where is main?", "lookup") == "simple"
    assert difficulty_of("migrate the whole codebase to async io across every file", "edit") == "complex"
    simple = classify_fast("write a helper that adds two numbers")
    hard = classify_fast("design the architecture for a distributed cache across the whole codebase")
    assert simple is not None and simple.start_tier == "local"
    assert hard is not None and hard.start_tier == "sonnet"
