"""The best files' definitions reranked by their own code: words only a body holds (attributes, strings)."""

from __future__ import annotations

from pathlib import Path

from indexer.localize import DEFAULT_WEIGHTS, Weights, localize
from indexer.rerank import own_lines, rank_by_code
from indexer.store import IndexStore

FILES = {
    "draw3d/lines.py": '''"""Lines in three dimensions."""


class Line3D:
    """A line with depth."""

    def __init__(self, xs, ys):
        self.xs = xs
        self.ys = ys

    def prepare(self, zs):
        self._verts3d = (self.xs, self.ys, zs)

    def draw(self, renderer):
        """Draw the line's points."""
        xs, ys, zs = self._verts3d
        return renderer.points(xs, ys)

    def bounds(self):
        return min(self.xs), max(self.xs)

    def scale(self, factor):
        return Line3D([x * factor for x in self.xs], self.ys)

    def copy(self):
        return Line3D(list(self.xs), list(self.ys))
''',
    "draw3d/render.py": '''def points(xs, ys):
    """Draw points of a line."""
    return list(zip(xs, ys))
''',
}
REPORT = "Line3D loses its depth\n\nAttributeError: 'Line3D' object has no attribute '_verts3d'\n"


def test_a_class_owns_its_header_and_docstring_and_each_method_its_body(indexed: IndexStore) -> None:
    owned = {s.qualified_name: lines for s, lines in own_lines(indexed.outline("draw3d/lines.py")).items()}

    assert owned["Line3D.prepare"] == [11, 12]
    assert {4, 5}.issubset(owned["Line3D"]) and not {7, 8, 9, 11, 12}.intersection(owned["Line3D"])


def test_an_attribute_only_a_body_holds_ranks_the_methods_that_use_it(indexed: IndexStore, repo: Path) -> None:
    ranked = rank_by_code(repo, indexed.outline("draw3d/lines.py"), ["verts3d"])

    assert {s.qualified_name for s in ranked} == {"Line3D.prepare", "Line3D.draw"}


def test_the_methods_whose_code_holds_the_missing_attribute_rank_above_those_that_do_not(
    indexed: IndexStore, repo: Path
) -> None:
    def order(weights: Weights) -> list[str]:
        return [s.qualified_name for s, _ in localize(indexed, REPORT, weights=weights, root=repo).definitions]

    reranked, tables_only = order(DEFAULT_WEIGHTS), order(Weights(code=0.0))
    holding = ("Line3D.prepare", "Line3D.draw")
    assert all(reranked.index(name) < reranked.index("Line3D.__init__") for name in holding)
    assert reranked.index("Line3D.draw") < tables_only.index("Line3D.draw") == len(tables_only) - 1
