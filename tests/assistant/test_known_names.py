"""The missing-symbol verifier's test of names, against a real index of the sample repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.cascade.known_names import known_to
from indexer.build import build_index
from indexer.store import IndexStore


@pytest.fixture
def known(sample_repo: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    store = IndexStore(tmp_path / "index.sqlite")
    build_index(store, sample_repo)
    yield known_to(store)
    store.close()


@pytest.mark.parametrize("name", ["total_area", "Circle.area", "report.py", "pkg/report.py", "pkg.report.make_report",
                                  "self.total_area", "json.dumps", "str.join", "self.h", "response.json",
                                  "circle.perimeter"])
def test_names_the_index_has_or_cannot_vouch_for(known, name: str) -> None:  # type: ignore[no-untyped-def]
    assert known(name), name


@pytest.mark.parametrize("name", ["make_unicorns", "helpers.py", "pkg.nothing_here", "Circle.perimeter",
                                  "shapes.render_all"])
def test_names_an_answer_made_up(known, name: str) -> None:  # type: ignore[no-untyped-def]
    assert not known(name), name
