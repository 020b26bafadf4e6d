"""The fast stages of classification (rules, lexical model) and the starting tier they pick."""

from __future__ import annotations

import pytest

from assistant.route.kind_model import KindModel, features, kind_model, load_examples
from assistant.route.router import (
    KINDS,
    LEXICAL_MIN_PROBABILITY,
    MODEL_MIN_PROBABILITY,
    classify,
    classify_fast,
    classify_lexical,
    difficulty_of,
    start_tier,
)


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
        ("which item does heapq.heappop remove from the heap?", "explain"),  # behaviour, not a place
        ("which module defines DictReader", "lookup"),
        ("which line is parse_config defined on?", "lookup"),
        ("which package is DictReader defined in?", "lookup"),
        ("which value does load_config return if the variable is not defined?", "explain"),
        ("which parser is parse_config defined with?", "lookup"),
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
    assert classify_lexical("hmm the tokens thing again") is None
    route = classify("hmm the tokens thing again")
    assert route.stage == "default" and route.kind == "explain"


def test_the_lexical_stage_decides_what_the_rules_leave() -> None:
    question = "the checkout page shows a blank screen after the last deploy"
    assert classify_fast(question) is None
    route = classify(question)
    assert route.stage == "lexical" and route.kind == "debug"
    assert LEXICAL_MIN_PROBABILITY <= route.probability <= 1.0


def test_the_shipped_examples_cover_every_kind_and_fit_themselves() -> None:
    examples = load_examples()
    assert {kind for kind, _ in examples} == set(KINDS)
    model = kind_model()
    fitted = sum(model.predict(text)[0] == kind for kind, text in examples) / len(examples)
    assert fitted > 0.9


def test_naive_bayes_learns_from_its_examples() -> None:
    model = KindModel.train([("debug", "it crashes with an error"), ("generate", "write a new parser"),
                             ("debug", "why does it crash"), ("generate", "write a function")])
    label, probability = model.predict("the app crashes")
    assert label == "debug" and 0.5 < probability <= 1.0
    assert model.predict("write me a parser")[0] == "generate"
    assert "<error>" in features("TypeError: x is undefined") and "^why does" in features("why does it")


def test_difficulty_and_start_tier_grow_with_scope() -> None:
    assert difficulty_of("where is main?", "lookup") == "simple"
    assert difficulty_of("migrate the whole codebase to async io across every file", "edit") == "complex"
    simple = classify_fast("write a helper that adds two numbers")
    hard = classify_fast("design the architecture for a distributed cache across the whole codebase")
    assert simple is not None and simple.start_tier == "local"
    assert hard is not None and hard.start_tier == "sonnet"


def test_an_unsure_label_never_starts_above_an_explanation() -> None:
    sure = start_tier("design", "complex")
    unsure = start_tier("design", "complex", MODEL_MIN_PROBABILITY - 0.01)
    assert sure == "sonnet"
    assert unsure == start_tier("explain", "complex") == "groq"
    assert start_tier("lookup", "simple", 0.0) == "local"


def test_design_without_scope_words_is_medium_and_starts_below_sonnet() -> None:
    route = classify_fast("how should we structure the plugin system?")
    assert route is not None and route.kind == "design"
    assert route.difficulty == "medium" and route.start_tier == "gemini"


@pytest.mark.parametrize("attached", [
    'Traceback (most recent call last):\n  File "app.py", line 3, in <module>\n    main()\nKeyError: \'x\'\n',
    "thread 'main' panicked at src/main.rs:4:5:\nindex out of bounds\n",
    'Exception in thread "main" java.lang.NullPointerException\n    at com.acme.App.run(App.java:12)\n',
    "E   ValueError: bad input\n",
])
def test_a_question_about_an_attached_error_is_a_debug_question(attached: str) -> None:
    assert classify("why does this happen?").kind != "debug"
    assert classify("why does this happen?", attached=attached).kind == "debug"


def test_attached_text_without_an_error_keeps_the_route() -> None:
    diff = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"
    assert classify("explain this change", attached=diff) == classify("explain this change")
