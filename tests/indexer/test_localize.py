"""Reading a bug report (clues) and ranking the files and definitions it is about, on small real indexes."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.build import build_index
from indexer.clues import code_names, read_question
from indexer.localize import FileRank, localize
from indexer.search import exact_hits, hybrid_search
from indexer.store import IndexStore

FILES = {
    "geo/shapes.py": '''"""Plane shapes."""


class Circle:
    """A circle with a radius."""

    def area(self):
        return 3.14159 * self.radius ** 2

    def scale(self, factor):
        if factor <= 0:
            raise ValueError("factor must be positive")
        return Circle(self.radius * factor)
''',
    "geo/render.py": '''"""Draw shapes as text: the plot of a shape, its area printed and its outline."""

from geo.shapes import Circle


def render_plot(shape):
    """Render a shape's plot as text, printing the area of the shape and the outline of the shape."""
    return f"shape with area {shape.area()} and outline"


def I(x):
    return x


class A:
    pass
''',
    "geo/units.py": '''def to_metres(value, unit):
    """Convert a length to metres."""
    return value * {"cm": 0.01, "m": 1.0}[unit]
''',
    "tests/test_shapes.py": '''from geo.shapes import Circle


def test_scale_of_a_circle_shape_area_plot_render():
    assert Circle(1).scale(2).area() > 0  # the plot and the area of the shape when rendered
''',
    "docs/vendor/plot.min.js": "function render(a){return a.area*a.outline}var shape={plot:1,area:2,render:3};"
                               "/* shape area plot render outline shape area plot render outline */\n",
}


@pytest.fixture
def store(tmp_path: Path) -> IndexStore:
    repo = tmp_path / "repo"
    for path, text in FILES.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    index = IndexStore(tmp_path / "index.sqlite")
    build_index(index, repo)
    return index


def rank_files(store: IndexStore, question: str) -> list[FileRank]:
    return list(localize(store, question).files)


def test_code_names_are_names_shaped_like_code_and_never_words_of_prose() -> None:
    text = ("I think A Python user sees `scale` fail: Circle.scale calls render_plot and LabelEncoder, "
            "then fit( breaks; see e.g. the docs. A `x` is too short, T too, and so is C.")
    assert code_names(text) == ["scale", "Circle.scale", "render_plot", "LabelEncoder", "fit"]


def test_a_one_letter_name_in_prose_never_produces_an_exact_hit(store: IndexStore) -> None:
    question = "When I call the function A raises an error. Is this expected? I use Python 3.11."
    assert [h for h in exact_hits(store, question) if h.symbol in ("I", "A")] == []
    assert {"I", "A"}.isdisjoint(h.symbol for h in hybrid_search(store, question, k=3))


def test_a_traceback_frame_outranks_prose_matches(store: IndexStore) -> None:
    question = """The plot of a shape is rendered wrong: the area of the shape and the outline of the shape
are missing from the rendered plot.

Traceback (most recent call last):
  File "/home/me/venv/lib/python3.11/site-packages/geo/units.py", line 3, in to_metres
    return value * {"cm": 0.01, "m": 1.0}[unit]
KeyError: 'km'
"""
    files = rank_files(store, question)
    assert files[0].path == "geo/units.py" and "frames" in files[0].reasons
    found = localize(store, question)
    assert found.definitions[0][0].qualified_name == "to_metres"


def test_a_minified_vendored_file_never_outranks_a_source_file_for_a_question_in_prose(store: IndexStore) -> None:
    question = "How is a shape's plot rendered with its area and outline? The render of the plot looks off."
    ranked = [f.path for f in rank_files(store, question)]
    assert ranked.index("geo/render.py") < ranked.index("docs/vendor/plot.min.js")
    assert ranked.index("geo/render.py") < ranked.index("tests/test_shapes.py")


def test_tests_are_not_demoted_when_the_question_is_about_tests(store: IndexStore) -> None:
    question = "the test for scaling a circle shape fails: test_scale_of_a_circle_shape_area_plot_render"
    assert rank_files(store, question)[0].path == "tests/test_shapes.py"


def test_a_dotted_module_path_and_member_find_their_file(store: IndexStore) -> None:
    files = rank_files(store, "Calling geo.shapes.Circle.scale with zero gives a confusing message")
    assert files[0].path == "geo/shapes.py" and "names" in files[0].reasons
    found = localize(store, "Calling geo.shapes.Circle.scale with zero gives a confusing message")
    assert "Circle.scale" in [d.qualified_name for d, _ in found.definitions[:3]]


def test_read_question_finds_frames_of_python_and_pytest_tracebacks_and_named_files() -> None:
    clues = read_question('''see geo/render.py and units.py
  File "C:\\\\env\\\\Lib\\\\site-packages\\\\geo\\\\shapes.py", line 12, in scale
geo/units.py:3: in to_metres
''')
    assert [(f.path.replace("\\\\", "\\"), f.line, f.function) for f in clues.frames] == [
        ("C:\\env\\Lib\\site-packages\\geo\\shapes.py", 12, "scale"), ("geo/units.py", 3, "to_metres")]
    assert clues.files == ("geo/render.py", "units.py")


def test_a_long_report_that_says_test_in_passing_still_ranks_the_source_above_the_tests(store: IndexStore) -> None:
    report = ("Rendering the plot of a circle shape prints the wrong area\n\n"
              "When I render the plot of a circle shape after I scale it, the area printed for the shape is wrong"
              " and the outline is off. My test shows it: the plot of the shape, when rendered, does not print the"
              " area of the scaled circle shape. I expected the plot render to print the area of the scaled shape"
              " and its outline.")
    ranked = [f.path for f in rank_files(store, report)]
    assert ranked.index("geo/shapes.py") < ranked.index("tests/test_shapes.py")
