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
