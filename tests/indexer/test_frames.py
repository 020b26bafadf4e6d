"""A pasted traceback's frames point at definitions: by the source line Python prints under each frame when
the file has moved on since the crash, and a missing attribute at the methods that set it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from indexer.build import build_index
from indexer.clues import read_question
from indexer.localize import localize
from indexer.store import IndexStore

CLASS = '''class {name}:
    """Scores of one kind."""

    def evaluate(self, total, count):
        """The score of a total over a count."""
        {body}
        return result

'''
BODIES = {"Mean": "result = total / max(count, 1)", "Ratio": "result = total / (count or 1)",
          "Share": "result = total / count * self.scale"}


def scores_module(shift: int = 0) -> str:
    """Three classes with an `evaluate` method each, every class as long as `shift` lines of comment."""
    classes = "".join(CLASS.format(name=name, body=body) for name, body in BODIES.items())
    return '"""Scores."""\n' + "# moved\n" * shift + "\n\n" + classes


def crash(repo: Path) -> str:
    """The traceback Python prints when `Share.evaluate` divides by a count of zero."""
    script = "from scoring.scores import Share\nShare().evaluate(3, 0)\n"
    done = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "ZeroDivisionError" in done.stderr
    return done.stderr


def index(repo: Path, store_path: Path) -> IndexStore:
    store = IndexStore(store_path)
    build_index(store, repo)
    return store


def test_a_frame_prints_the_source_line_it_ran() -> None:
    text = ('Traceback (most recent call last):\n  File "<string>", line 2, in <module>\n'
            '  File "/srv/app/scoring/scores.py", line 23, in evaluate\n    result = total / count * self.scale\n'
            "             ~~~~~~^~~~~~~\nZeroDivisionError: division by zero\n")

    frames = read_question(text).frames

    assert [(f.path, f.line, f.function, f.code) for f in frames] == [
        ("<string>", 2, "<module>", ""),
        ("/srv/app/scoring/scores.py", 23, "evaluate", "result = total / count * self.scale")]


def test_after_an_edit_moves_the_lines_the_frame_s_source_line_still_finds_its_method(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "scoring").mkdir(parents=True)
    (repo / "scoring" / "__init__.py").write_text("")
    scores = repo / "scoring" / "scores.py"
    scores.write_text(scores_module())
    report = crash(repo)
    scores.write_text(scores_module(shift=CLASS.count("\n")))  # the crashing line now sits in Ratio.evaluate
    store = index(repo, tmp_path / "index.sqlite")

    found = localize(store, report, root=repo)

    assert [s.qualified_name for s in found.pinned] == ["Share.evaluate"]
    assert localize(store, report).pinned[0].qualified_name == "Ratio.evaluate"  # by line number alone


LINES = '''"""Lines drawn in three dimensions."""


class Line3D:
    """A line with depth."""

    def __init__(self, xs, ys):
        self.xs = xs
        self.ys = ys

    def set_depth(self, zs):
        """Give the line its depths: the points to draw."""
        self._points = list(zip(self.xs, self.ys, zs))

    def draw(self, canvas):
        """Draw the points on a canvas."""
        for point in self._points:
            canvas.append(point)

    def clear(self, canvas):
        """Remove the line's points from a canvas."""
        canvas.clear()

    def bounds(self):
        """The smallest and largest x of the line."""
        return min(self.xs), max(self.xs)
'''


def test_a_missing_attribute_points_at_the_method_that_sets_it(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "plot3d").mkdir(parents=True)
    (repo / "plot3d" / "__init__.py").write_text("")
    (repo / "plot3d" / "lines.py").write_text(LINES)
    script = "from plot3d.lines import Line3D\nLine3D([1], [2]).draw([])\n"
    done = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, timeout=60)
    assert "AttributeError: 'Line3D' object has no attribute '_points'" in done.stderr
    store = index(repo, tmp_path / "index.sqlite")

    found = localize(store, "Drawing a line fails\n" + done.stderr, root=repo)

    assert {s.qualified_name for s, _ in found.definitions[:2]} == {"Line3D.draw", "Line3D.set_depth"}
