"""The response caches on real SQLite, real FAISS and a real llama.cpp embedding model."""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from assistant import paths
from assistant.accounting.cache import (
    SEMANTIC_THRESHOLD,
    ResponseCache,
    embedding_text,
    exact_key,
    file_ref,
    open_cache,
)
from models.base import Usage
from models.embedder import LlamaEmbedder

Embed = Callable[[str], np.ndarray]
EMBEDDER = "smollm2-mean"
CONTEXT = "ctx-1"


@pytest.fixture(scope="module")
def embed(quickstart_gguf: Path) -> Iterator[Embed]:
    """Embed a question with the quickstart GGUF through models.embedder (llama.cpp, mean pooling)."""
    embedder = LlamaEmbedder(quickstart_gguf, threads=2)

    @functools.cache
    def vector(text: str) -> np.ndarray:
        return embedder.embed([text])[0]

    yield lambda question: vector(embedding_text(question))
    embedder.close()


@pytest.fixture
def cache() -> ResponseCache:
    return open_cache(paths.data_dir())


def _store(cache: ResponseCache, prompt: str, **kwargs: object) -> int:
    defaults: dict[str, object] = {"model": "qwen-7b", "tier": "local", "context_hash": CONTEXT,
                                   "answer": f"answer to {prompt}", "params": {"temperature": 0.2}}
    defaults.update(kwargs)
    return cache.store(prompt=prompt, **defaults)  # type: ignore[arg-type]


# -- exact --------------------------------------------------------------------------------------


def test_exact_hit_needs_the_same_model_prompt_context_and_parameters(cache: ResponseCache) -> None:
    _store(cache, "where is  main\n defined?", usage={"input_tokens": 900, "output_tokens": 40}, cost_usd=0.0012,
           meta={"sources": [{"path": "pkg/app.py", "line": 3}]})
    hit = cache.lookup(model="qwen-7b", prompt=" where is main defined? ", context_hash=CONTEXT,
                       params={"temperature": 0.2})
    assert hit is not None and hit.match == "exact" and hit.similarity == 1.0
    assert hit.answer == "answer to where is  main\n defined?" and hit.tier == "local" and hit.model == "qwen-7b"
    assert (hit.input_tokens, hit.output_tokens, hit.cost_usd) == (900, 40, 0.0012)
    assert hit.meta == {"sources": [{"path": "pkg/app.py", "line": 3}]}
    for change in ({"model": "other"}, {"context_hash": "ctx-2"}, {"params": {"temperature": 0.7}},
                   {"prompt": "where is main called?"}):
        query: dict[str, object] = {"model": "qwen-7b", "prompt": "where is main defined?", "context_hash": CONTEXT,
                                    "params": {"temperature": 0.2}, **change}
        assert cache.lookup(**query) is None, change  # type: ignore[arg-type]


def test_the_key_ignores_whitespace_and_parameter_order_but_not_case() -> None:
    params = {"temperature": 0.2, "max_tokens": 512}
    same = exact_key("m", "a  b\n", "c", params)
    assert same == exact_key("m", "a b", "c", dict(reversed(params.items())))
    assert same != exact_key("m", "A b", "c", params)  # identifiers are case-sensitive


def test_storing_the_same_key_again_replaces_the_entry(cache: ResponseCache) -> None:
    _store(cache, "q", answer="old")
    _store(cache, "q", answer="new", usage=Usage(input_tokens=7, output_tokens=3, cache_write_1h_tokens=5))
    assert cache.count() == 1
    hit = cache.lookup(model="qwen-7b", prompt="q", context_hash=CONTEXT, params={"temperature": 0.2})
    assert hit is not None and hit.answer == "new"
    assert (hit.input_tokens, hit.output_tokens, hit.cache_write_tokens) == (7, 3, 5)


def test_an_entry_expires_after_its_ttl(cache: ResponseCache) -> None:
    _store(cache, "q", ttl_s=60.0, now=1000.0)
    _store(cache, "forever", ttl_s=None, now=1000.0)
    args = {"model": "qwen-7b", "context_hash": CONTEXT, "params": {"temperature": 0.2}}
    assert cache.lookup(prompt="q", now=1059.0, **args) is not None  # type: ignore[arg-type]
    assert cache.lookup(prompt="q", now=1060.5, **args) is None  # type: ignore[arg-type]
    assert cache.count() == 1  # the expired entry was dropped, the other one kept
    assert cache.lookup(prompt="forever", now=1e12, **args) is not None  # type: ignore[arg-type]


def test_the_default_ttl_is_configurable() -> None:
    short = ResponseCache(paths.data_dir() / "short.sqlite", ttl_s=5.0)
    _store(short, "q", now=100.0)
    args = {"model": "qwen-7b", "context_hash": CONTEXT, "params": {"temperature": 0.2}}
    assert short.lookup(prompt="q", now=104.0, **args) is not None  # type: ignore[arg-type]
    assert short.lookup(prompt="q", now=106.0, **args) is None  # type: ignore[arg-type]
    assert short.purge_expired() == 0


def test_editing_a_file_in_the_context_invalidates_the_entry(cache: ResponseCache, sample_repo: Path) -> None:
    shapes = sample_repo / "pkg" / "shapes.py"
    files = [file_ref(shapes, sample_repo), file_ref(sample_repo / "pkg" / "report.py", sample_repo)]
    assert files[0][0] == "pkg/shapes.py"
    _store(cache, "what does area do?", files=files)
    args = {"model": "qwen-7b", "prompt": "what does area do?", "context_hash": CONTEXT,
            "params": {"temperature": 0.2}, "root": sample_repo}
    assert cache.lookup(**args) is not None  # type: ignore[arg-type]
    original = shapes.read_text()
    shapes.write_text(original + "\n# changed\n")
    assert cache.lookup(**args) is None  # type: ignore[arg-type]
    assert cache.count() == 0
    shapes.write_text(original)  # the entry is gone for good, not merely hidden
    assert cache.lookup(**args) is None  # type: ignore[arg-type]


def test_hashes_the_caller_passes_are_trusted_and_a_deleted_file_invalidates(
    cache: ResponseCache, sample_repo: Path
) -> None:
    report = sample_repo / "pkg" / "report.py"
    ref = file_ref(report, sample_repo)
    _store(cache, "q1", files=[ref])
    _store(cache, "q2", files=[ref])
    args = {"model": "qwen-7b", "context_hash": CONTEXT, "params": {"temperature": 0.2}, "root": sample_repo}
    assert cache.lookup(prompt="q1", files=[ref], **args) is not None  # type: ignore[arg-type]
    assert cache.lookup(prompt="q1", files=[(ref[0], "other-hash")], **args) is None  # type: ignore[arg-type]
    report.unlink()
    assert cache.lookup(prompt="q2", **args) is None  # type: ignore[arg-type]


def test_invalidate_paths_drops_every_entry_built_from_them(cache: ResponseCache) -> None:
    _store(cache, "a", files=[("pkg/a.py", "h1")])
    _store(cache, "b", files=[("pkg/a.py", "h1"), ("pkg/b.py", "h2")])
    _store(cache, "c", files=[("pkg/c.py", "h3")])
    assert cache.invalidate_paths(["pkg/a.py"]) == 2
    assert cache.count() == 1


# -- semantic -----------------------------------------------------------------------------------


def _store_semantic(cache: ResponseCache, embed: Embed, question: str, **kwargs: object) -> int:
    return _store(cache, question, question=question, embedding=embed(question), embedder=EMBEDDER,
                  model="llama-3.3-70b", tier="groq", kind=kwargs.pop("kind", "explain"), **kwargs)


def _ask(cache: ResponseCache, embed: Embed, question: str, **kwargs: object):  # type: ignore[no-untyped-def]
    return cache.semantic_lookup(question=question, embedding=embed(question), embedder=EMBEDDER,
                                 **{"context_hash": CONTEXT, "kind": "explain", **kwargs})  # type: ignore[arg-type]


def test_semantic_hit_on_a_paraphrase_shows_the_original_question(cache: ResponseCache, embed: Embed) -> None:
    _store_semantic(cache, embed, "convert celsius to fahrenheit")
    hit = _ask(cache, embed, "How to convert Celsius to Fahrenheit?")
    assert hit is not None, "a paraphrase should hit"
    assert hit.match == "semantic" and hit.question == "convert celsius to fahrenheit"
    assert hit.answer == "answer to convert celsius to fahrenheit"
    assert (hit.tier, hit.model) == ("groq", "llama-3.3-70b")
    assert SEMANTIC_THRESHOLD <= hit.similarity <= 1.0001


def test_semantic_miss_on_the_reversed_question(cache: ResponseCache, embed: Embed) -> None:
    _store_semantic(cache, embed, "convert celsius to fahrenheit")
    reversed_question = "convert fahrenheit to celsius"
    # with the quickstart embedder the reversed question is nearer than most paraphrases (~0.986):
    # the lexical agreement check, not the cosine threshold, is what refuses it
    assert _ask(cache, embed, reversed_question) is None
    assert _ask(cache, embed, "how do I convert fahrenheit to celsius?") is None


def test_semantic_hit_needs_the_same_context_and_model(cache: ResponseCache, embed: Embed) -> None:
    _store_semantic(cache, embed, "where is main defined?")
    assert _ask(cache, embed, "where is the main function defined?") is not None
    assert _ask(cache, embed, "where is the main function defined?", context_hash="ctx-2") is None
    assert _ask(cache, embed, "where is the main function defined?", model="claude-sonnet") is None
    assert _ask(cache, embed, "where is the main function defined?", model="llama-3.3-70b") is not None


def test_edit_requests_skip_the_semantic_cache_unless_enabled(embed: Embed) -> None:
    off = open_cache(paths.data_dir())
    _store_semantic(off, embed, "rename area to compute_area", kind="edit")
    assert _ask(off, embed, "rename area to compute_area", kind="edit") is None
    assert _ask(off, embed, "rename area to compute_area", kind="explain") is None  # stored without a vector
    off.close()
    on = ResponseCache(paths.data_dir() / "edits.sqlite", semantic_edits=True)
    _store_semantic(on, embed, "rename area to compute_area", kind="edit")
    assert _ask(on, embed, "please rename area to compute_area", kind="edit") is not None


def test_semantic_entries_follow_file_changes(cache: ResponseCache, embed: Embed, sample_repo: Path) -> None:
    shapes = sample_repo / "pkg" / "shapes.py"
    _store_semantic(cache, embed, "what does area do?", files=[file_ref(shapes, sample_repo)])
    assert _ask(cache, embed, "what does the area function do?", root=sample_repo) is not None
    shapes.write_text(shapes.read_text() + "\n# changed\n")
    assert _ask(cache, embed, "what does the area function do?", root=sample_repo) is None


def test_near_miss_questions_never_hit(cache: ResponseCache, embed: Embed) -> None:
    """Questions that embed close together (cosine 0.97-0.998 with the quickstart model) but ask
    something else must all miss; measured: with cosine alone 19 of these 20 pairs hit at 0.92."""
    pairs = [
        ("how do I parse json in python", "how do I write json in python"),
        ("sort a list ascending", "sort a list descending"),
        ("add a cache to the pipeline", "remove the cache from the pipeline"),
        ("why does the test pass", "why does the test not pass"),
        ("where is main defined?", "where is main called?"),
        ("copy files from src to dst", "copy files from dst to src"),
        ("how do I reverse a list", "how do I reverse a string"),
        ("how do I install dependencies", "how do I uninstall dependencies"),
        ("encode a string to base64", "decode a string from base64"),
        ("explain the build_index function", "explain the build_context function"),
        ("how to convert a list to a tuple", "how to convert a tuple to a list"),
        ("merge branch main into dev", "merge branch dev into main"),
        ("what does Router.route do?", "what does Pipeline.ask do?"),
        ("retry 3 times", "retry 5 times"),
    ]
    for first, _ in pairs:
        _store_semantic(cache, embed, first)
    wrong = [(second, hit.question) for _, second in pairs if (hit := _ask(cache, embed, second)) is not None]
    assert wrong == []
    assert _ask(cache, embed, "how do I reverse a list?") is not None  # the cache does answer


def test_the_faiss_mirror_persists_and_other_processes_entries_are_found(embed: Embed) -> None:
    first = open_cache(paths.data_dir())
    _store_semantic(first, embed, "how do I install dependencies")
    assert _ask(first, embed, "how to install the dependencies") is not None
    first.close()
    assert first.faiss_path.is_file()
    second = open_cache(paths.data_dir())
    assert _ask(second, embed, "how to install the dependencies") is not None  # loaded from cache.faiss
    # a different process stores an entry after `second` loaded its index
    vector = embed("why is my test failing with KeyError").tolist()
    script = (
        "import numpy as np; from pathlib import Path; from assistant.accounting.cache import open_cache\n"
        f"c = open_cache(Path({str(paths.data_dir())!r}))\n"
        f"c.store(model='m', tier='local', prompt='q', context_hash={CONTEXT!r}, answer='from the other process',"
        f" question='why is my test failing with KeyError', embedding=np.array({vector}), embedder={EMBEDDER!r})\n"
        "c.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    hit = _ask(second, embed, "why does my test fail with a KeyError")
    assert hit is not None and hit.answer == "from the other process"


def test_a_corrupt_faiss_file_is_rebuilt_from_sqlite(embed: Embed) -> None:
    first = open_cache(paths.data_dir())
    _store_semantic(first, embed, "how do I read a file line by line")
    _ask(first, embed, "read a file line by line")
    first.close()
    first.faiss_path.write_bytes(b"not a faiss index")
    again = open_cache(paths.data_dir())
    assert _ask(again, embed, "read a file line by line") is not None


def test_an_embedder_change_never_compares_vectors_across_models(cache: ResponseCache, embed: Embed) -> None:
    _store_semantic(cache, embed, "how do I read a file line by line")
    other = cache.semantic_lookup(question="read a file line by line", embedding=embed("read a file line by line"),
                                  embedder="bge-small", context_hash=CONTEXT)
    assert other is None
    assert _ask(cache, embed, "read a file line by line") is not None
