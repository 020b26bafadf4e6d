"""The context an answer gets: a real index of the sample repository, real FAISS and the quick-start GGUF."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.context.builder import build_context
from indexer.build import build_index
from indexer.embed import VectorIndex, sync_vectors
from indexer.store import IndexStore
from models.embedder import LlamaEmbedder

LEDGER = '''"""Bookkeeping."""


def settle(entries):
    """Close the period."""
    # συμφωνία κάθε τιμολογίου με το αντίγραφο της τράπεζας πριν από τον έλεγχο
    unmatched = [e for e in entries if not e.matched]
    return unmatched
'''
PARAPHRASE = "συμφωνία τιμολογίων με το αντίγραφο της τράπεζας πριν από τον έλεγχο;"
"""Words that appear only in a comment of `settle`, in a script the full-text tables do not index (they
keep ASCII words): only an embedding sees them."""


def count_words(text: str) -> int:
    return len(text.split())


@pytest.fixture
def store(sample_repo: Path, tmp_path: Path) -> Iterator[IndexStore]:
    (sample_repo / "pkg" / "ledger.py").write_text(LEDGER)
    store = IndexStore(tmp_path / "index" / "index.sqlite")
    build_index(store, sample_repo)
    yield store
    store.close()


def test_the_named_definition_comes_with_what_it_calls_and_its_files_imports(
    store: IndexStore, sample_repo: Path
) -> None:
    context = build_context("explain make_report", store, sample_repo, 4000, count_words)

    assert "def make_report(radii: list[float]) -> str:" in context.text
    assert "### pkg/shapes.py:25 function total_area, used by make_report" in context.text
    assert "### pkg/shapes.py:14 class Circle, used by make_report" in context.text
    assert "### imports of pkg/report.py\n3: pkg.shapes" in context.text
    assert ("pkg/shapes.py", 25) in {(s.path, s.line) for s in context.sources}


def test_callees_are_trimmed_before_the_definition_asked_about(store: IndexStore, sample_repo: Path) -> None:
    full = build_context("explain make_report", store, sample_repo, 4000, count_words)
    definition_only = build_context("explain make_report", store, sample_repo, 50, count_words)

    assert "used by make_report" in full.text
    assert "def make_report" in definition_only.text
    assert "used by make_report" not in definition_only.text
    assert definition_only.trimmed > 0


@pytest.fixture
def embedded(
    store: IndexStore, sample_repo: Path, quickstart_gguf: Path
) -> Iterator[tuple[VectorIndex, LlamaEmbedder]]:
    """The sample repository's chunks embedded with the quick-start GGUF (mean pooling)."""
    embedder = LlamaEmbedder(quickstart_gguf)
    vectors = VectorIndex.for_store(store, embedder.dim)
    sync_vectors(store, sample_repo, vectors, embedder)
    yield vectors, embedder
    embedder.close()


def test_dense_hits_bring_code_whose_words_only_its_body_holds(
    store: IndexStore, sample_repo: Path, embedded: tuple[VectorIndex, LlamaEmbedder]
) -> None:
    vectors, embedder = embedded
    lexical = build_context(PARAPHRASE, store, sample_repo, 4000, count_words)
    hybrid = build_context(PARAPHRASE, store, sample_repo, 4000, count_words, vectors=vectors, embedder=embedder)

    assert ("pkg/ledger.py", 4) not in {(s.path, s.line) for s in lexical.sources}
    assert (hybrid.sources[0].path, hybrid.sources[0].line) == ("pkg/ledger.py", 4)
    assert '### pkg/ledger.py:4 function settle\ndef settle(entries):\n    """Close the period."""' in hybrid.text


def test_a_vector_of_a_definition_that_moved_is_not_sent_at_its_old_place(
    store: IndexStore, sample_repo: Path, embedded: tuple[VectorIndex, LlamaEmbedder]
) -> None:
    vectors, embedder = embedded
    (sample_repo / "pkg" / "ledger.py").write_text(LEDGER.replace("def settle(", "\n\ndef settle("))
    build_index(store, sample_repo)  # the vectors are not synced: they still say line 4
    context = build_context(PARAPHRASE, store, sample_repo, 4000, count_words, vectors=vectors, embedder=embedder)

    assert ("pkg/ledger.py", 6) in {(s.path, s.line) for s in context.sources}
    assert ("pkg/ledger.py", 4) not in {(s.path, s.line) for s in context.sources}


def test_words_only_a_comment_holds_find_the_definition_through_its_file(store: IndexStore, sample_repo: Path) -> None:
    (sample_repo / "pkg" / "ledger.py").write_text(LEDGER.replace(
        "# συμφωνία κάθε τιμολογίου με το αντίγραφο της τράπεζας πριν από τον έλεγχο",
        "# reconcile every invoice against the bank statement before the auditors arrive"))
    build_index(store, sample_repo)
    context = build_context("how do we reconcile invoices with the bank statement before an audit?", store,
                            sample_repo, 4000, count_words)
    assert (context.sources[0].path, context.sources[0].symbol) == ("pkg/ledger.py", "settle")
    assert "# reconcile every invoice" in context.text  # sent whole


def test_the_context_says_where_each_sent_block_comes_from(store: IndexStore, sample_repo: Path) -> None:
    context = build_context("explain make_report", store, sample_repo, 4000, count_words)
    (report,) = store.definitions("make_report")

    first = context.spans[0]
    assert (first.path, first.line, first.end_line, first.symbol, first.part) == (
        "pkg/report.py", report.line, report.end_line, "make_report", "definition")
    sent = {(s.path, s.line, s.symbol, s.part) for s in context.spans}
    assert ("pkg/shapes.py", 25, "total_area", "signature") in sent
    assert all(s.tokens > 0 for s in context.spans)
    assert sum(s.tokens for s in context.spans) < context.tokens  # the imports block has no source span


def test_the_innermost_frame_of_a_piped_traceback_is_sent_whole_first(store: IndexStore, sample_repo: Path) -> None:
    crash = subprocess.run([sys.executable, "-c", "from pkg.shapes import Shape, total_area; total_area([Shape()])"],
                           cwd=sample_repo, capture_output=True, text=True)
    assert "NotImplementedError" in crash.stderr  # a real traceback of the fixture's code

    context = build_context("why does this fail, and how do I fix it?", store, sample_repo, 120, count_words,
                            extra=crash.stderr)

    (area,) = [s for s in store.outline("pkg/shapes.py") if s.qualified_name == "Shape.area"]
    first = context.spans[0]  # the frame's function, or its class when that fits too (holding it, in its place)
    assert (first.path, first.part) == ("pkg/shapes.py", "definition")
    assert first.line <= area.line and area.end_line <= first.end_line
    assert "raise NotImplementedError" in context.text


def test_attached_text_too_long_for_the_budget_keeps_its_ends_and_leaves_room_for_code(
    store: IndexStore, sample_repo: Path
) -> None:
    from assistant.context.builder import fit_attached

    report = "Title: make_report crashes\n" + "".join(f"log line {i}\n" for i in range(400)) + "KeyError: 'radius'\n"
    kept = fit_attached(report, 200, count_words)
    assert kept.startswith("Title: make_report crashes") and kept.endswith("KeyError: 'radius'")
    assert "lines of the attached text left out" in kept and count_words(kept) <= 200
    context = build_context("why does make_report fail?", store, sample_repo, 400, count_words, report)
    assert "KeyError: 'radius'" in context.text  # the attached text is cut, not dropped
    assert any(span.symbol == "make_report" for span in context.spans)  # and the code still fits


def test_with_room_the_ranked_definitions_go_whole_and_each_line_of_code_is_sent_once(
    store: IndexStore, sample_repo: Path
) -> None:
    question = "how is the area of each shape computed for the report?"
    roomy = build_context(question, store, sample_repo, 4000, count_words)
    tight = build_context(question, store, sample_repo, 60, count_words)

    assert "return math.pi * self.radius**2" in roomy.text  # Circle.area, past the first four, whole
    assert roomy.text.count("def area(self) -> float:") == 2  # Shape.area and Circle.area, once each
    assert [s.part for s in roomy.spans if s.part == "signature"] == []  # no signature beside its code
    sources = {(s.path, s.symbol) for s in roomy.sources}
    assert {("pkg/shapes.py", "Circle.area"), ("pkg/shapes.py", "Circle")} <= sources
    assert "return math.pi" not in tight.text and tight.tokens <= 60


def test_code_of_a_pinned_file_is_not_sent_again(store: IndexStore, sample_repo: Path) -> None:
    shapes = (sample_repo / "pkg" / "shapes.py").read_text()
    context = build_context("explain make_report", store, sample_repo, 4000, count_words,
                            pinned=[("pkg/shapes.py", shapes)])

    assert context.text.count("def total_area(") == 1  # in the pinned file, not again as make_report's callee
    assert "def make_report(" in context.text
    assert [s.path for s in context.spans].count("pkg/shapes.py") == 1
