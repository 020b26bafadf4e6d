"""The symbol store: files, definitions, references and imports in SQLite, with FTS5 over names and whole
files (the schema is indexer/store_schema.py; the words the full-text tables hold, indexer/words.py)."""

from __future__ import annotations

import re
import secrets
import shutil
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.sqlitedb import Database, DatabaseCorrupt
from indexer.store_schema import LOOKUP_INDEXES, MIGRATIONS
from indexer.words import STOPWORDS, body_words, file_words, match_any, split_identifier

if TYPE_CHECKING:
    from indexer.parse import ParsedFile


@dataclass(frozen=True)
class FileState:
    """What the store knows of a file on disk, to skip unchanged files."""

    size: int
    mtime_ns: int
    hash: str


@dataclass(frozen=True)
class FileRows:
    """One file's parse as the rows the store inserts. A build makes them in the worker process that
    parsed the file: plain tuples cross the process boundary cheaply, and the one writer only inserts."""

    language: str
    has_errors: bool
    symbols: tuple[tuple[str, str, str, int, int, str, str, str], ...]
    """(name, qualified_name, kind, line, end_line, signature, doc, container) of each definition."""
    words: tuple[str, ...]
    """Each definition's name as full-text words: split on case and underscores, then the name itself."""
    bodies: tuple[str, ...]
    """Each definition's body as full-text words: the names its own lines reference (not its nested
    definitions'), split the same way, each word once."""
    refs: tuple[tuple[str, int, str], ...]
    """(name, line, kind) of each reference."""
    imports: tuple[tuple[str, int], ...]
    """(module, line) of each import."""
    text: str = ""
    """The file's words for whole-file BM25 (`file_words`)."""

    @classmethod
    def of(cls, parsed: ParsedFile, data: bytes = b"") -> FileRows:
        """The rows of a parsed file whose content is `data`."""
        return cls(
            language=parsed.language,
            has_errors=parsed.has_errors,
            symbols=tuple(tuple(d) for d in parsed.definitions),  # type: ignore[misc]
            words=tuple(" ".join([*split_identifier(d.name), d.name]) for d in parsed.definitions),
            bodies=body_words(parsed),
            refs=tuple(tuple(r) for r in parsed.references),  # type: ignore[misc]
            imports=tuple(tuple(i) for i in parsed.imports),  # type: ignore[misc]
            text=file_words(data),
        )


@dataclass(frozen=True)
class Symbol:
    """A stored definition with its file."""

    name: str
    qualified_name: str
    kind: str
    path: str
    line: int
    end_line: int
    signature: str
    doc: str


@dataclass(frozen=True)
class Usage:
    """A stored reference with the definition that encloses it (empty at module level)."""

    name: str
    path: str
    line: int
    kind: str
    enclosing: str


class IndexStore(Database):
    """The per-repository index database."""

    migrations = MIGRATIONS

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._create_lookup_indexes()  # a no-op, unless a first build was killed before it made them

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Fill an empty index faster: the lookup indexes are dropped for the duration and made again
        after (also on an error; lookups meanwhile scan). Does nothing to an index that holds files."""
        if self.conn.execute("SELECT 1 FROM files LIMIT 1").fetchone():
            yield
            return
        with self.transaction() as tx:
            for name in LOOKUP_INDEXES:
                tx.execute(f"DROP INDEX IF EXISTS {name}")
        try:
            yield
        finally:
            self._create_lookup_indexes()

    def _create_lookup_indexes(self) -> None:
        present = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        if present.issuperset(LOOKUP_INDEXES):
            return  # the usual open: no write, so readers never wait on a build
        with self.transaction() as tx:
            for name, columns in LOOKUP_INDEXES.items():
                tx.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {columns}")

    @classmethod
    def open_or_rebuild(cls, path: Path, notify: Callable[[str], None]) -> IndexStore:
        """The index at `path`; one that cannot be used (corrupt, or from a newer Tiercode) is thrown away
        with its folder, after `notify` is told why, and a new empty one is opened: it is only a cache."""
        try:
            return cls(path)
        except DatabaseCorrupt as exc:
            return cls._replace(path, exc.reason, notify)

    def discard(self, reason: str, notify: Callable[[str], None]) -> IndexStore:
        """Close this index, throw it away with its folder (after `notify` is told why) and open a new
        empty one: for an index found damaged while in use."""
        self.close()
        return self._replace(self.path, reason, notify)

    @classmethod
    def _replace(cls, path: Path, reason: str, notify: Callable[[str], None]) -> IndexStore:
        notify(f"the index at {path} could not be used ({reason}); rebuilding it")
        shutil.rmtree(path.parent, ignore_errors=True)
        return cls(path)

    def file_states(self) -> dict[str, FileState]:
        """Every indexed file's size, mtime and hash, by repo-relative path."""
        rows = self.conn.execute("SELECT path, size, mtime_ns, hash FROM files")
        return {r["path"]: FileState(r["size"], r["mtime_ns"], r["hash"]) for r in rows}

    def file_state(self, path: str) -> FileState | None:
        """One indexed file's size, mtime and hash, or None when it is not indexed."""
        r = self.conn.execute("SELECT size, mtime_ns, hash FROM files WHERE path = ?", (path,)).fetchone()
        return FileState(r["size"], r["mtime_ns"], r["hash"]) if r else None

    def get_meta(self, key: str) -> str | None:
        """A value the index keeps about itself (parser version, embedding model), or None."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Record a value the index keeps about itself."""
        with self.transaction() as tx:
            tx.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def file_hashes(self, paths: Iterable[str]) -> dict[str, str]:
        """The content hash of each of these files the index holds."""
        wanted = sorted(set(paths))
        found: dict[str, str] = {}
        for at in range(0, len(wanted), 500):  # within SQLite's limit on parameters
            chunk = wanted[at : at + 500]
            rows = self.conn.execute(
                f"SELECT path, hash FROM files WHERE path IN ({','.join('?' * len(chunk))})", chunk)
            found.update((r[0], r[1]) for r in rows)
        return found

    def generation(self) -> int:
        """A number that changes whenever a file's rows are stored or removed (what depends on the whole
        index, such as a repo map, is kept until it moves)."""
        return int(self.get_meta("generation") or 0)

    def put_files(self, files: Sequence[tuple[str, FileState, FileRows]]) -> None:
        """Store several files' rows in one transaction (a build writes in batches: far fewer commits,
        and FTS5 merges its terms once per batch)."""
        if not files:
            return
        with self.transaction() as tx:
            _next_generation(tx)
            next_id = tx.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM symbols").fetchone()[0]
            symbols: list[tuple[object, ...]] = []
            words: list[tuple[object, ...]] = []
            refs: list[tuple[object, ...]] = []
            imports: list[tuple[object, ...]] = []
            texts: list[tuple[object, ...]] = []
            for path, state, rows in files:
                self._delete(tx, path)
                file_id = tx.execute(
                    "INSERT INTO files (path, size, mtime_ns, hash, language, has_errors) VALUES (?,?,?,?,?,?)",
                    (path, state.size, state.mtime_ns, state.hash, rows.language, int(rows.has_errors)),
                ).lastrowid
                path_words = " ".join(split_identifier(path))
                texts.append((file_id, path_words, rows.text))
                for symbol, name_words, body in zip(rows.symbols, rows.words, rows.bodies, strict=True):
                    symbols.append((next_id, file_id, *symbol))
                    words.append((next_id, name_words, symbol[1], symbol[5], symbol[6], path_words, body))
                    next_id += 1
                refs.extend((file_id, *ref) for ref in rows.refs)
                imports.extend((file_id, *imp) for imp in rows.imports)
            tx.executemany(
                "INSERT INTO symbols (id, file_id, name, qualified_name, kind, line, end_line, signature, doc,"
                " container) VALUES (?,?,?,?,?,?,?,?,?,?)", symbols)
            tx.executemany(
                "INSERT INTO symbols_fts (rowid, words, qualified_name, signature, doc, path, body)"
                " VALUES (?,?,?,?,?,?,?)",
                words)
            tx.executemany("INSERT INTO refs (file_id, name, line, kind) VALUES (?,?,?,?)", refs)
            tx.executemany("INSERT INTO imports (file_id, module, line) VALUES (?,?,?)", imports)
            tx.executemany("INSERT INTO files_fts (rowid, path, words) VALUES (?,?,?)", texts)

    def touch_files(self, files: Sequence[tuple[str, FileState]]) -> None:
        """Record new sizes and mtimes for files whose content hash did not change."""
        if not files:
            return
        with self.transaction() as tx:
            tx.executemany("UPDATE files SET size = ?, mtime_ns = ? WHERE path = ?",
                           [(state.size, state.mtime_ns, path) for path, state in files])

    def remove_files(self, paths: Iterable[str]) -> None:
        """Forget files (deleted or now ignored) and everything derived from them."""
        with self.transaction() as tx:
            if any([self._delete(tx, path) for path in paths]):
                _next_generation(tx)

    def set_skipped(self, skipped: dict[str, str]) -> None:
        """Replace the list of files the last scan skipped, with the reason for each."""
        with self.transaction() as tx:
            tx.execute("DELETE FROM skipped")
            tx.executemany("INSERT INTO skipped VALUES (?, ?)", skipped.items())

    def add_skipped(self, path: str, reason: str) -> None:
        """Record one file as skipped (an update found it binary, too large or unparsable)."""
        with self.transaction() as tx:
            tx.execute("INSERT OR REPLACE INTO skipped VALUES (?, ?)", (path, reason))

    def skipped(self) -> dict[str, str]:
        """Files the last scan skipped, with the reason for each."""
        return {r["path"]: r["reason"] for r in self.conn.execute("SELECT path, reason FROM skipped")}

    def counts(self) -> dict[str, int]:
        """How many files, symbols, references and skipped files the index holds."""
        one = self.conn.execute
        return {
            "files": one("SELECT COUNT(*) FROM files").fetchone()[0],
            "symbols": one("SELECT COUNT(*) FROM symbols").fetchone()[0],
            "references": one("SELECT COUNT(*) FROM refs").fetchone()[0],
            "skipped": one("SELECT COUNT(*) FROM skipped").fetchone()[0],
        }

    def total_bytes(self) -> int:
        """The size of every indexed file together."""
        return int(self.conn.execute("SELECT COALESCE(SUM(size), 0) FROM files").fetchone()[0])

    def definitions(self, name: str) -> list[Symbol]:
        """Definitions named `name`: exact name or qualified name first, then case-insensitive."""
        query = _SYMBOL_SELECT + " WHERE s.name = ? OR s.qualified_name = ? ORDER BY f.path, s.line"
        rows = self.conn.execute(query, (name, name)).fetchall()
        if not rows:
            query = _SYMBOL_SELECT + " WHERE s.name = ? COLLATE NOCASE ORDER BY f.path, s.line"
            rows = self.conn.execute(query, (name,)).fetchall()
        return [_symbol(r) for r in rows]

    def symbol_names(self) -> list[str]:
        """Every distinct definition name (for fuzzy matching)."""
        return [r[0] for r in self.conn.execute("SELECT DISTINCT name FROM symbols")]

    def symbols_of_kind(self, kind: str) -> list[Symbol]:
        """Every definition of one kind (class, function, ...), by path and line."""
        query = _SYMBOL_SELECT + " WHERE s.kind = ? ORDER BY f.path, s.line"
        return [_symbol(r) for r in self.conn.execute(query, (kind,))]

    def outline(self, path: str) -> list[Symbol]:
        """The definitions of one file, in order."""
        query = _SYMBOL_SELECT + " WHERE f.path = ? ORDER BY s.line"
        return [_symbol(r) for r in self.conn.execute(query, (path,))]

    def symbol_named_in(self, path: str, qualified_name: str, near_line: int = 0) -> Symbol | None:
        """The definition `qualified_name` in file `path` (the one closest to `near_line` when several)."""
        query = _SYMBOL_SELECT + " WHERE f.path = ? AND s.qualified_name = ? ORDER BY ABS(s.line - ?) LIMIT 1"
        row = self.conn.execute(query, (path, qualified_name, near_line)).fetchone()
        return _symbol(row) if row else None

    def names_used_in(self, path: str, first_line: int, last_line: int) -> list[str]:
        """Distinct names referenced between two lines of a file, in order of first use."""
        rows = self.conn.execute(
            "SELECT r.name FROM refs r JOIN files f ON f.id = r.file_id"
            " WHERE f.path = ? AND r.line BETWEEN ? AND ? ORDER BY r.line",
            (path, first_line, last_line),
        )
        return list(dict.fromkeys(r[0] for r in rows))

    def definition_at(self, path: str, line: int) -> Symbol | None:
        """The innermost definition around a line of a file (None at module level)."""
        query = _SYMBOL_SELECT + " WHERE f.path = ? AND s.line <= ? AND s.end_line >= ? ORDER BY s.line DESC LIMIT 1"
        row = self.conn.execute(query, (path, line, line)).fetchone()
        return _symbol(row) if row else None

    def enclosing(self, path: str, line: int) -> str:
        """The qualified name of the innermost definition around a line of a file ('' at module level)."""
        symbol = self.definition_at(path, line)
        return symbol.qualified_name if symbol else ""

    def imports_of(self, path: str) -> list[tuple[str, int]]:
        """The modules one file imports, with their lines."""
        rows = self.conn.execute(
            "SELECT i.module, i.line FROM imports i JOIN files f ON f.id = i.file_id WHERE f.path = ? ORDER BY i.line",
            (path,),
        )
        return [(r[0], r[1]) for r in rows]

    def paths(self) -> list[str]:
        """Every indexed file's repo-relative path."""
        return [r[0] for r in self.conn.execute("SELECT path FROM files ORDER BY path")]

    def file_languages(self) -> dict[str, str]:
        """Every indexed file's language, by repo-relative path."""
        return {r[0]: r[1] for r in self.conn.execute("SELECT path, language FROM files")}

    def usages(self, name: str, limit: int | None = None) -> list[Usage]:
        """References to `name` (its last dotted part), each with its enclosing definition; `limit` caps them."""
        short = name.rsplit(".", 1)[-1]
        rows = self.conn.execute(
            """
            SELECT r.name, f.path, r.line, r.kind,
                   (SELECT s.qualified_name FROM symbols s
                     WHERE s.file_id = r.file_id AND s.line <= r.line AND s.end_line >= r.line
                     ORDER BY s.line DESC LIMIT 1) AS enclosing
            FROM refs r JOIN files f ON f.id = r.file_id
            WHERE r.name = ? ORDER BY f.path, r.line LIMIT ?
            """,
            (short, -1 if limit is None else limit),
        )
        return [Usage(r["name"], r["path"], r["line"], r["kind"], r["enclosing"] or "") for r in rows]

    def search_text(self, text: str, limit: int = 20, paths: Sequence[str] = ()) -> list[tuple[Symbol, float]]:
        """BM25 search over symbol names, signatures, docstrings, paths and the names their bodies use for
        the words of `text` (identifiers split too), best first; only in `paths` when given."""
        words = {w for token in re.findall(r"\w+", text) for w in [token.lower(), *split_identifier(token)]}
        return self.search_symbols(sorted(w for w in words if len(w) > 1 and w not in STOPWORDS), limit, paths)

    def search_symbols(
        self, terms: Sequence[str], limit: int = 20, paths: Sequence[str] = ()
    ) -> list[tuple[Symbol, float]]:
        """BM25 over the definitions for any of `terms` (a term given twice counts twice), best first; only
        in `paths` when given."""
        match = match_any(terms)
        if not match:
            return []
        within = f" AND f.path IN ({','.join('?' * len(paths))})" if paths else ""
        rows = self.conn.execute(
            "SELECT s.name, s.qualified_name, s.kind, f.path, s.line, s.end_line, s.signature, s.doc,"
            " bm25(symbols_fts) AS rank FROM symbols_fts JOIN symbols s ON s.id = symbols_fts.rowid"
            f" JOIN files f ON f.id = s.file_id WHERE symbols_fts MATCH ?{within} ORDER BY rank LIMIT ?",
            (match, *paths, limit),
        )
        return [(_symbol(r), -float(r["rank"])) for r in rows]

    def search_files(self, terms: Sequence[str], limit: int = 100) -> list[tuple[str, float]]:
        """BM25 over whole files (their path's words and their text) for any of `terms` (a term given twice
        counts twice); best first."""
        match = match_any(terms)
        if not match:
            return []
        rows = self.conn.execute(
            "SELECT f.path, bm25(files_fts) AS rank FROM files_fts JOIN files f ON f.id = files_fts.rowid"
            " WHERE files_fts MATCH ? ORDER BY rank LIMIT ?", (match, limit))
        return [(r[0], -float(r[1])) for r in rows]

    def files_with_phrase(self, words: Sequence[str], limit: int = 10) -> list[str]:
        """The files whose text holds `words` in a row (punctuation, case and `_` between them aside)."""
        phrase = " ".join(w.lower() for w in words if w.isascii() and w.isalnum())
        if not phrase:
            return []
        rows = self.conn.execute(
            "SELECT f.path FROM files_fts JOIN files f ON f.id = files_fts.rowid WHERE files_fts MATCH ?"
            " ORDER BY f.path LIMIT ?", (f'words : "{phrase}"', limit))
        return [r[0] for r in rows]

    def files_referencing(self, name: str) -> int:
        """How many files reference `name` (its last dotted part)."""
        row = self.conn.execute("SELECT COUNT(DISTINCT file_id) FROM refs WHERE name = ?", (name.rsplit(".", 1)[-1],))
        return int(row.fetchone()[0])

    @staticmethod
    def _delete(tx: sqlite3.Connection, path: str) -> bool:
        """Delete one file's rows (and its skipped entry); True when the index held the file."""
        tx.execute("DELETE FROM skipped WHERE path = ?", (path,))
        row = tx.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
        if row is None:  # a file new to the index (most of a first build): nothing to delete
            return False
        tx.execute("DELETE FROM symbols_fts WHERE rowid IN (SELECT id FROM symbols WHERE file_id = ?)", (row[0],))
        tx.execute("DELETE FROM files_fts WHERE rowid = ?", (row[0],))
        tx.execute("DELETE FROM files WHERE id = ?", (row[0],))
        return True


def _next_generation(tx: sqlite3.Connection) -> None:
    """Move the generation on; a new index starts it at a random number, so an index rebuilt from
    scratch never repeats the numbers of the one it replaced."""
    tx.execute("INSERT INTO meta VALUES ('generation', ?) ON CONFLICT(key) DO UPDATE SET"
               " value = CAST(value AS INTEGER) + 1", (str(secrets.randbits(48)),))


_SYMBOL_SELECT = (
    "SELECT s.name, s.qualified_name, s.kind, f.path, s.line, s.end_line, s.signature, s.doc"
    " FROM symbols s JOIN files f ON f.id = s.file_id"
)


def _symbol(r: sqlite3.Row) -> Symbol:
    return Symbol(
        r["name"], r["qualified_name"], r["kind"], r["path"], r["line"], r["end_line"], r["signature"], r["doc"]
    )
