"""The index database's schema: its numbered migrations, and the lookup indexes a first build makes last."""

_SCHEMA_V1 = """
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT NOT NULL,
    language TEXT NOT NULL,
    has_errors INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE symbols (
    id INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    qualified_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    signature TEXT NOT NULL,
    doc TEXT NOT NULL,
    container TEXT NOT NULL
);
CREATE INDEX symbols_name ON symbols(name COLLATE NOCASE);
CREATE INDEX symbols_qualified ON symbols(qualified_name);
CREATE INDEX symbols_file ON symbols(file_id);
CREATE TABLE refs (
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    line INTEGER NOT NULL,
    kind TEXT NOT NULL
);
CREATE INDEX refs_name ON refs(name);
CREATE INDEX refs_file ON refs(file_id);
CREATE TABLE imports (
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    module TEXT NOT NULL,
    line INTEGER NOT NULL
);
CREATE INDEX imports_file ON imports(file_id);
CREATE TABLE skipped (path TEXT PRIMARY KEY, reason TEXT NOT NULL);
CREATE VIRTUAL TABLE symbols_fts USING fts5(words, qualified_name, signature, doc, path);
"""

_SCHEMA_V2 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE vector_files (path TEXT PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    symbol TEXT NOT NULL,
    line INTEGER NOT NULL
);
CREATE INDEX chunks_path ON chunks(path);
CREATE INDEX refs_file_name ON refs(file_id, name);
CREATE INDEX symbols_name_exact ON symbols(name);
"""
_SCHEMA_V3 = """
CREATE INDEX symbols_file_line ON symbols(file_id, line);
"""
"""Finds the definition enclosing a reference without scanning the file's symbols."""

_SCHEMA_V4 = """
DROP INDEX refs_file;
DROP INDEX symbols_file;
"""
"""Both are prefixes of refs_file_name and symbols_file_line, which serve the same lookups (and the
cascading deletes); each index kept costs every insert of a build."""

_SCHEMA_V5 = """
DROP TABLE symbols_fts;
CREATE VIRTUAL TABLE symbols_fts USING fts5(
    words, qualified_name, signature, doc, path, body, tokenize = 'porter unicode61'
);
"""
"""`body`: the words of the names each definition's own body calls and uses, so "check if a file exists"
finds the function that calls `os.path.exists`; Porter stemming, so "reading files" meets `read_file`.
The parser version moves with it: every file is parsed again, which fills the new table."""

_SCHEMA_V6 = """
CREATE VIRTUAL TABLE files_fts USING fts5(path, words, tokenize = 'porter unicode61');
"""
"""Whole files for BM25: the words of a file's path and of its text (names, comments, strings, error
messages), so a bug report in prose finds the file it is about (per-definition rows miss module text,
and a file's evidence is spread over its definitions). The row's id is the file's id."""

LOOKUP_INDEXES = {
    "symbols_name": "symbols(name COLLATE NOCASE)",
    "symbols_qualified": "symbols(qualified_name)",
    "symbols_name_exact": "symbols(name)",
    "symbols_file_line": "symbols(file_id, line)",
    "refs_name": "refs(name)",
    "refs_file_name": "refs(file_id, name)",
}
"""The indexes lookups use (as the migrations made them). A first build drops them and makes them again
at the end: sorting once is cheaper than keeping six B-trees ordered through 400,000 inserts."""

MIGRATIONS = (_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3, _SCHEMA_V4, _SCHEMA_V5, _SCHEMA_V6)
"""The index's schema, one numbered migration each (indexer/sqlitedb.py runs the ones a file lacks)."""
