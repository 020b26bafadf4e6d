"""The index database file: WAL journaling, migrations from an older schema, a newer schema rebuilt, and
BM25 over identifiers split into words, the definition around a line. Real SQLite files, built from real
sources by tree-sitter."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant import paths
from indexer.build import PARSER_VERSION, build_index
from indexer.search import Hit, bm25_hits
from indexer.sqlitedb import DatabaseCorrupt
from indexer.store import IndexStore

V1_INDEXES = {"symbols_name", "symbols_qualified", "symbols_file", "refs_name", "refs_file", "imports_file"}
"""The indexes migration 1 creates (migration 4 drops symbols_file and refs_file)."""
LATER_INDEXES = {"chunks_path", "refs_file_name", "symbols_name_exact", "symbols_file_line"}
"""The indexes migrations 2 and 3 add."""


def _built(repo: Path, index: Path) -> None:
    store = IndexStore(index)
    try:
        build_index(store, repo)
    finally:
        store.close()


def _indexes(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'")
    return {r[0] for r in rows}


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_the_index_file_is_in_wal_mode(sample_repo: Path, tmp_path: Path) -> None:
    index = tmp_path / "index" / "index.sqlite"
    _built(sample_repo, index)

    conn = sqlite3.connect(index)  # a plain connection that asked for nothing: the file's own mode
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_an_index_from_schema_version_1_is_migrated_on_open_and_lookups_work(
    sample_repo: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index" / "index.sqlite"
    _built(sample_repo, index)
    conn = sqlite3.connect(index, isolation_level=None)
    try:  # undo migrations 6 to 2, as a file written by the first release would be
        conn.execute("DELETE FROM migrations WHERE version > 1")
        conn.execute("DROP TABLE files_fts")
        conn.execute("DROP TABLE symbols_fts")
        conn.execute("CREATE VIRTUAL TABLE symbols_fts USING fts5(words, qualified_name, signature, doc, path)")
        conn.execute("CREATE INDEX refs_file ON refs(file_id)")
        conn.execute("CREATE INDEX symbols_file ON symbols(file_id)")
        for name in ("refs_file_name", "symbols_name_exact", "symbols_file_line"):
            conn.execute(f"DROP INDEX {name}")
        for name in ("meta", "vector_files", "chunks"):
            conn.execute(f"DROP TABLE {name}")
        assert _indexes(conn) == V1_INDEXES
        assert [r[0] for r in conn.execute("SELECT version FROM migrations")] == [1]
    finally:
        conn.close()

    store = IndexStore(index)
    try:
        assert store.schema_version() == len(IndexStore.migrations) == 6
        assert _indexes(store.conn) == (V1_INDEXES - {"refs_file", "symbols_file"}) | LATER_INDEXES
        assert {"meta", "vector_files", "chunks"} <= _tables(store.conn)
        (found,) = store.definitions("make_report")
        assert (found.path, found.line, found.kind) == ("pkg/report.py", 6, "function")
        assert [(u.path, u.enclosing) for u in store.usages("total_area")] == [("pkg/report.py", "make_report")]
        assert store.get_meta("parser_version") is None  # the meta table is new; the next build fills it
        report = build_index(store, sample_repo)
        assert report.parsed == 3  # no parser version recorded: every file is parsed again
        assert store.get_meta("parser_version") == PARSER_VERSION
        assert store.definitions("Circle.area")[0].path == "pkg/shapes.py"
        assert "make_report" in {h.symbol for h in bm25_hits(store, "make report")}  # full text filled again
        assert store.search_files(["report"])[0][0] == "pkg/report.py"  # and the whole-file table
    finally:
        store.close()


def test_an_index_from_a_newer_schema_will_not_open_in_process(sample_repo: Path, tmp_path: Path) -> None:
    index = tmp_path / "index" / "index.sqlite"
    _built(sample_repo, index)
    conn = sqlite3.connect(index, isolation_level=None)
    newer = len(IndexStore.migrations) + 5
    conn.execute("INSERT INTO migrations VALUES (?, ?)", (newer, time.time()))
    conn.close()

    with pytest.raises(DatabaseCorrupt, match=f"schema version {newer} is newer than this Tiercode knows"):
        IndexStore(index)


def test_find_rebuilds_an_index_from_a_newer_schema_with_a_one_line_notice(sample_repo: Path) -> None:
    repo = sample_repo.resolve()
    index = paths.index_dir(repo) / "index.sqlite"
    _built(repo, index)
    newer = len(IndexStore.migrations) + 1
    conn = sqlite3.connect(index, isolation_level=None)
    conn.execute("INSERT INTO meta VALUES ('written_by', 'a newer tiercode')")
    conn.execute("INSERT INTO migrations VALUES (?, ?)", (newer, time.time()))
    conn.close()

    proc = subprocess.run(
        [sys.executable, "-c", "from assistant.cli.main import main; main()", "find", "make_report", "--repo",
         str(repo)],
        capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=300,
    )

    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    notices = [line for line in proc.stderr.splitlines() if "rebuilding" in line]
    assert notices == [f"tiercode: the index at {index} could not be used (schema version {newer} is newer than this "
                       "Tiercode knows); rebuilding it"]
    assert proc.stdout.startswith("pkg/report.py:6  function make_report")
    store = IndexStore(index)
    try:
        assert store.schema_version() == newer - 1
        assert store.get_meta("written_by") is None  # built again, not patched
        assert store.counts()["files"] == 3
    finally:
        store.close()


def _bm25(tmp_path: Path, name: str, source: str, *queries: str) -> list[list[Hit]]:
    """BM25 hits for each query over a one-file repository, indexed for real."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / name).write_text(source)
    store = IndexStore(tmp_path / "index.sqlite")
    try:
        build_index(store, repo)
        return [bm25_hits(store, query) for query in queries]
    finally:
        store.close()


def test_bm25_finds_a_camel_case_name_from_its_words(tmp_path: Path) -> None:
    source = (
        "class HttpClientFactory:\n"
        '    """Makes configured connections."""\n\n'
        "    def build(self) -> object:\n"
        "        return object()\n\n\n"
        "def http_get(url: str) -> bytes:\n"
        '    """One request."""\n'
        "    return b''\n\n\n"
        "def read_config() -> dict[str, str]:\n"
        '    """Settings from the environment."""\n'
        "    return {}\n"
    )
    hits, one_word = _bm25(tmp_path, "net.py", source, "http client factory", "client")

    assert (hits[0].symbol, hits[0].path, hits[0].line) == ("HttpClientFactory", "net.py", 1)
    assert {h.symbol for h in hits} == {"HttpClientFactory", "http_get"}  # http_get shares one word only
    assert hits[0].score > hits[1].score
    assert [h.symbol for h in one_word] == ["HttpClientFactory"]  # a word from inside the name is enough


def test_bm25_finds_a_definition_by_the_names_its_own_body_uses(tmp_path: Path) -> None:
    source = (
        "import os\n\n\n"
        "class Cache:\n"
        "    LIMIT = DEFAULT_LIMIT\n\n"
        "    def fresh(self, path):\n"
        "        return os.path.exists(path) and os.path.getmtime(path) > 0\n\n\n"
        "def load(path):\n"
        "    return open(path).read()\n"
    )
    exists, limit = _bm25(tmp_path, "files.py", source, "check that the file exists", "default limit")

    assert [h.symbol for h in exists] == ["Cache.fresh"]  # the method's call, not given to its class too
    assert [h.symbol for h in limit] == ["Cache"]  # a use on the class's own lines


def test_bm25_matches_inflected_words_through_stemming(tmp_path: Path) -> None:
    source = "def read_line(stream):\n    return stream.readline()\n\n\ndef close(stream):\n    stream.close()\n"
    (hits,) = _bm25(tmp_path, "io.py", source, "reading lines")

    assert [h.symbol for h in hits] == ["read_line"]


def test_a_first_build_makes_the_lookup_indexes_at_the_end_and_a_killed_one_gets_them_back(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    for i in range(600):  # enough files for a bulk load
        (repo / f"m{i}.py").write_text(f"class Shape{i}:\n    pass\n\ndef area{i}():\n    return Shape{i}()\n")
    index = tmp_path / "index" / "index.sqlite"
    store = IndexStore(index)
    dropped: list[set[str]] = []
    build_index(store, repo, workers=1, on_progress=lambda done, total: dropped.append(_indexes(store.conn)))
    every = (V1_INDEXES - {"refs_file", "symbols_file"}) | LATER_INDEXES
    assert "refs_name" not in dropped[1] and "symbols_name" not in dropped[1]  # mid-build: none to keep up
    assert _indexes(store.conn) == every
    assert [s.path for s in store.definitions("area7")] == ["m7.py"]
    assert [u.path for u in store.usages("Shape7")] == ["m7.py"]
    store.conn.execute("DROP INDEX refs_name")  # as a build killed before its end leaves the file
    store.close()
    reopened = IndexStore(index)
    assert _indexes(reopened.conn) == every
    reopened.close()


def test_opening_an_index_does_not_wait_for_another_processs_write(sample_repo: Path, tmp_path: Path) -> None:
    index = tmp_path / "index" / "index.sqlite"
    _built(sample_repo, index)
    writer = sqlite3.connect(index, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process building: it holds the write lock
    try:
        store = IndexStore(index)  # an open that wrote would wait for the lock and then fail
        assert [s.path for s in store.definitions("Circle")] == ["pkg/shapes.py"]
        store.close()
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_the_definition_at_a_line_is_the_innermost_one_around_it(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "shapes.py").write_text(
        "RATIO = 2\n\n\n"
        "class Square:\n"
        '    """A square."""\n\n'
        "    def area(self) -> int:\n"
        "        side = 3\n"
        "        return side * side\n"
    )
    store = IndexStore(tmp_path / "index.sqlite")
    try:
        build_index(store, repo)
        at = {line: store.definition_at("shapes.py", line) for line in (1, 2, 5, 8)}
    finally:
        store.close()

    assert at[1] is not None and at[1].kind == "constant"
    assert at[2] is None  # module level
    assert at[5] is not None and at[5].qualified_name == "Square"
    assert at[8] is not None and (at[8].qualified_name, at[8].line) == ("Square.area", 7)
