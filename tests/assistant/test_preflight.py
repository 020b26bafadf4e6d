"""Pre-flight answers from a real index of the sample repository, with no model."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.route.preflight import answer_lookup, preflight
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


@pytest.mark.parametrize("question", ["what is in shapes.py?", "outline of pkg/shapes.py", "outline shapes.py",
                                      "the outline of `pkg/shapes.py`?", "show the outline of shapes.py"])
def test_outline_of_a_file(question: str, store: IndexStore) -> None:
    answer = preflight(question, store)
    assert answer is not None, question
    assert [s.symbol for s in answer.sources] == ["Shape", "Shape.area", "Circle", "Circle.__init__", "Circle.area",
                                                  "total_area"]
    assert "\n  14: class Circle(Shape)\n" in answer.text  # the signature says what it is: not `class class Circle`
    assert "\n    9: def area(self) -> float\n" in answer.text


def test_list_all_classes(store: IndexStore) -> None:
    answer = preflight("list all classes", store)
    assert answer is not None
    assert {s.symbol for s in answer.sources} == {"Shape", "Circle"}
    one = preflight("list functions in report.py", store)
    assert one is not None and one.text.startswith("2 functions:")
    alone = preflight("list functions in shapes.py", store)
    assert alone is not None and alone.text.startswith("1 function:\n")  # not "1 functions"


@pytest.mark.parametrize("question", ["where is Circel defined?", "where is Circel?", "where's `Circel`?"])
def test_unknown_name_suggests_close_matches(question: str, store: IndexStore) -> None:
    answer = preflight(question, store)
    assert answer is not None
    assert "No definition of Circel" in answer.text and "Circle" in answer.text


@pytest.mark.parametrize(
    "question",
    ["explain how total_area works", "rename Circle to Disk", "why does make_report fail on empty input?",
     "write a Square class", "where is the bug?", "where's the problem?", "where is the leak"],
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


@pytest.mark.parametrize(
    "question",
    ["grep for total area", 'search the code for "total area"', "which files mention 'total area'?",
     "find all occurrences of `total area`", "rg total area"],
)
def test_grep_like_questions_list_each_line_with_its_enclosing_definition(
    question: str, store: IndexStore, sample_repo: Path
) -> None:
    answer = preflight(question, store, sample_repo)
    assert answer is not None, question
    assert [(s.path, s.line, s.symbol) for s in answer.sources] == [
        ("pkg/report.py", 7, "make_report"), ("pkg/report.py", 9, "make_report")]
    assert answer.text.startswith("'total area' (any case) occurs 2 times in 1 file:")
    assert 'pkg/report.py:9 in make_report: return f"{len(circles)} circles, total area' in answer.text


def test_grep_is_case_sensitive_only_when_the_text_has_a_capital(store: IndexStore, sample_repo: Path) -> None:
    exact = preflight("grep Circle(", store, sample_repo)
    any_case = preflight("grep circle(", store, sample_repo)
    assert exact is not None and any_case is not None
    assert [(s.path, s.line) for s in exact.sources] == [("pkg/report.py", 8), ("pkg/shapes.py", 14)]
    assert [(s.path, s.line) for s in any_case.sources] == [("pkg/report.py", 8), ("pkg/shapes.py", 14)]
    none = preflight("grep CIRCLE(", store, sample_repo)
    assert none is not None and none.sources == ()
    assert none.text == "No line of the 3 indexed files contains 'CIRCLE('."


def test_todo_markers_are_found_in_comments(store: IndexStore, sample_repo: Path) -> None:
    (sample_repo / "pkg" / "todo.py").write_text("def later():\n    # TODO: handle squares\n    return None\n")
    build_index(store, sample_repo)
    answer = preflight("find all TODO comments", store, sample_repo)
    assert answer is not None
    assert [(s.path, s.line, s.symbol) for s in answer.sources] == [("pkg/todo.py", 2, "later")]


@pytest.mark.parametrize(
    "question",
    ["search for a faster way to sum the areas", "find all occurrences of the bug in make_report",
     "which files mention area and radius together, and why?"],
)
def test_questions_that_only_sound_like_grep_pass_through(question: str, store: IndexStore, sample_repo: Path) -> None:
    assert preflight(question, store, sample_repo) is None


def test_without_a_root_grep_questions_are_left_to_the_model(store: IndexStore) -> None:
    assert preflight("grep for total area", store) is None


def test_a_lookup_names_its_symbols_definitions_and_references(store: IndexStore) -> None:
    answer = answer_lookup("in which file do make_report and `total_area` live?", store)
    assert answer is not None
    assert [(s.path, s.line, s.symbol) for s in answer.sources] == [
        ("pkg/report.py", 6, "make_report"), ("pkg/report.py", 13, "main"),
        ("pkg/shapes.py", 25, "total_area"), ("pkg/report.py", 9, "make_report")]
    assert "make_report is defined at:\n  pkg/report.py:6  def make_report(radii: list[float]) -> str\n" in answer.text
    assert "total_area is defined at:\n  pkg/shapes.py:25" in answer.text
    assert "    pkg/report.py:9 in make_report" in answer.text


@pytest.mark.parametrize("question", [
    "which file is the report printed in?", "where is the `nothing_here` helper defined?",
    "where does make_report print to?", "which item does total_area add first?",  # behaviour, not a place
])
def test_a_lookup_that_names_nothing_the_index_defines_is_left_to_the_model(question: str, store: IndexStore) -> None:
    assert answer_lookup(question, store) is None


@pytest.mark.parametrize(("question", "earlier", "resolved"), [
    ("and who calls it?", "where is Circle defined?", "who calls Circle?"),
    ("what's in it?", "outline of pkg/shapes.py", "what's in pkg/shapes.py?"),
    ("so where is it defined?", "explain what `total_area` computes", "where is total_area defined?"),
    ("who calls it?", "how are areas computed?", None),  # the earlier question names nothing
    ("who calls Circle?", "where is Shape defined?", None),  # no pronoun: not a follow-up
])
def test_a_follow_ups_pronoun_stands_for_what_the_earlier_question_named(
    question: str, earlier: str, resolved: str | None
) -> None:
    from assistant.route.preflight import follow_up

    assert follow_up(question, earlier) == resolved
