"""The repo map: ranking by the reference graph, personalization, and the token budget (property test)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.build import build_index
from indexer.repomap import estimate_tokens, rank_definitions, render_map
from indexer.store import IndexStore

LANGS = Path(__file__).parents[1] / "fixtures" / "langs"

CORE = '''"""Core helpers everybody uses."""


def load_config(path):
    return open(path).read()


class Engine:
    def run(self):
        return load_config("x")
'''
USERS = {
    f"app/user{i}.py": f"from core import Engine, load_config\n\n\ndef task{i}():\n"
    f"    load_config('a')\n    return Engine().run()\n"
    for i in range(5)
}
LONELY = "def lonely_function():\n    return 0\n\n\ndef parse_invoice(text):\n    return text\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> IndexStore:
    root = tmp_path_factory.mktemp("maprepo")
    shutil.copytree(LANGS, root / "langs")
    (root / "core.py").write_text(CORE)
    (root / "app").mkdir()
    for rel, text in USERS.items():
        (root / rel).write_text(text)
    (root / "lonely.py").write_text(LONELY)
    index = IndexStore(root.parent / f"{root.name}.sqlite")
    build_index(index, root)
    return index


def test_heavily_referenced_definitions_rank_first(store: IndexStore) -> None:
    entries = rank_definitions(store)
    top = [e.text for e in entries[:3]]
    assert "def load_config(path)" in top
    assert entries[0].path == "core.py"
    lonely = next(i for i, e in enumerate(entries) if e.text == "def lonely_function()")
    assert lonely > 3


def test_query_and_focus_personalize_the_ranking(store: IndexStore) -> None:
    by_query = rank_definitions(store, query="where do we parse an invoice?")
    assert by_query[0].text == "def parse_invoice(text)"
    by_focus = rank_definitions(store, focus=["langs/go/server.go"])
    assert by_focus[0].path == "langs/go/server.go"


def test_map_format_and_large_budget_holds_everything(store: IndexStore) -> None:
    text = render_map(store, 100_000, estimate_tokens)
    assert text.startswith("core.py:\n")
    assert "    4│ def load_config(path)" in text
    assert "    9│   def run(self)" in text
    for path in store.paths():
        if store.outline(path):
            assert f"{path}:" in text


def test_zero_budget_and_tiny_budget(store: IndexStore) -> None:
    assert render_map(store, 0, len) == ""
    assert render_map(store, 5, len) == ""


COUNTERS: dict[str, Callable[[str], int]] = {
    "chars": len,
    "words": lambda t: len(t.split()),
    "estimate": estimate_tokens,
    "bytes/4": lambda t: len(t.encode()) // 4,
}


@settings(max_examples=60, deadline=None)
@given(
    budget=st.integers(min_value=0, max_value=3000),
    counter=st.sampled_from(sorted(COUNTERS)),
    query=st.one_of(st.none(), st.text(max_size=40)),
    focus=st.lists(st.sampled_from(["core.py", "lonely.py", "langs/rust/lib.rs", "missing.py"]), max_size=2),
)
def test_map_never_exceeds_the_budget(
    store: IndexStore, budget: int, counter: str, query: str | None, focus: list[str]
) -> None:
    count = COUNTERS[counter]
    text = render_map(store, budget, count, query=query, focus=focus)
    assert count(text) <= budget
    bigger = render_map(store, budget + 200, count, query=query, focus=focus)
    assert len(bigger.splitlines()) >= len(text.splitlines())


def test_budget_with_the_real_tokenizer(store: IndexStore, quickstart_gguf: Path) -> None:
    from models.local import LocalModel

    model = LocalModel(quickstart_gguf)

    def count(text: str) -> int:
        return len(model.tokenize(text))

    for budget in (1, 40, 150, 600):
        text = render_map(store, budget, count)
        assert count(text) <= budget
        assert (text == "") == (budget < 10)
