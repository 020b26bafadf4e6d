"""Pre-flight answers from a real index of the sample repository, with no model."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.preflight import preflight
from indexer.build import build_index
from indexer.store import IndexStore


@pytest.fixture
def store(sample_repo: Path, tmp_path: Path) -> IndexStore:
    store = IndexStore(tmp_path / "index.sqlite")
    build_index(store, sample_repo)
    return store


@pytest.mark.parametrize(
    "question",
    ["where is Circle defined?", "Where's Circle?", "find class Circle", "definition of `Circle`",
     "which file is Circle defined in?".replace(" in?", "?"), "go to Circle", "where is the class Circle defined"],
)
def test_definition_questions(question: str, store: IndexStore) -> None:
    answer = preflight(question, store)
    assert answer is not None, question
    assert [(s.path, s.line, s.symbol) for s in answer.sources] == [("pkg/shapes.py", 14, "Circle")]


def test_qualified_method_lookup(store: IndexStore) -> None:
    answer = preflight("where is Circle.area defined?", store)
    assert answer is not None
    assert [(s.path, s.line) for s in answer.sources] == [("pkg/shapes.py", 20)]


def test_a_name_defined_twice_lists_both(store: IndexStore) -> None:
    answer = preflight("where is area defined?", store)
    assert answer is not None
    assert {s.symbol for s in answer.sources} == {"Shape.area", "Circle.area"}


def test_callers_name_their_enclosing_function(store: IndexStore) -> None:
    answer = preflight("who calls total_area?", store)
    assert answer is not None
    assert [(s.path, s.line, s.symbol) for s in answer.sources] == [("pkg/report.py", 9, "make_report")]


def test_outline_of_a_file(store: IndexStore) -> None:
    answer = preflight("what is in shapes.py?", store)
    assert answer is not None
    assert [s.symbol for s in answer.sources] == ["Shape", "Shape.area", "Circle", "Circle.__init__", "Circle.area",
                                                  "total_area"]


def test_list_all_classes(store: IndexStore) -> None:
    answer = preflight("list all classes", store)
    assert answer is not None
    assert {s.symbol for s in answer.sources} == {"Shape", "Circle"}


def test_unknown_name_suggests_close_matches(store: IndexStore) -> None:
    answer = preflight("where is Circel defined?", store)
    assert answer is not None
    assert "No definition of Circel" in answer.text and "Circle" in answer.text


@pytest.mark.parametrize(
    "question",
    ["explain how total_area works", "rename Circle to Disk", "why does make_report fail on empty input?",
     "write a Square class"],
)
def test_questions_that_need_a_model_pass_through(question: str, store: IndexStore) -> None:
    assert preflight(question, store) is None


@pytest.mark.parametrize("question", ["which module defines `Circle`", "what file has Circle?", "show Circle"])
def test_module_and_show_questions(question: str, store: IndexStore) -> None:
    answer = preflight(question, store)
    assert answer is not None, question
    assert [(s.path, s.line) for s in answer.sources] == [("pkg/shapes.py", 14)]


def test_a_module_qualified_name_finds_the_definition_in_that_module(store: IndexStore) -> None:
    answer = preflight("where is shapes.total_area defined?", store)
    assert answer is not None
    assert [(s.path, s.line) for s in answer.sources] == [("pkg/shapes.py", 25)]


def test_callers_can_be_limited_to_one_file(store: IndexStore) -> None:
    inside = preflight("who calls total_area in pkg/report.py?", store)
    elsewhere = preflight("who calls total_area inside shapes.py", store)
    assert inside is not None and [(s.path, s.line) for s in inside.sources] == [("pkg/report.py", 9)]
    assert elsewhere is not None and elsewhere.sources == ()
    assert "No references to total_area in pkg/shapes.py" in elsewhere.text


def test_a_scope_that_is_not_a_path_restricts_nothing(store: IndexStore) -> None:
    answer = preflight("who uses total_area in the repo?", store)
    assert answer is not None and ("pkg/report.py", 9) in {(s.path, s.line) for s in answer.sources}


@pytest.mark.parametrize("question", ["show me the tests", "show tests", "where is EnumShape defined"])
def test_plain_words_and_kind_prefixed_names_are_not_misread(question: str, store: IndexStore) -> None:
    answer = preflight(question, store)
    if answer is not None:  # a definition question about an unknown name: says so, and never drops a prefix
        assert "EnumShape" in answer.text and answer.sources == ()
