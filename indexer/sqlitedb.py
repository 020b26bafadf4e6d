"""A SQLite database with one connection per thread, WAL, and numbered migrations.

Every Tiercode database (the index, the ledger, the caches) is a subclass: it lists its
migrations, and the base class applies the missing ones when the file opens.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


class DatabaseCorrupt(Exception):
    """The file exists but is not a usable SQLite database of this kind."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        """The damaged file."""
        self.reason = reason
        """What is wrong with it, e.g. "file is not a database" or a schema newer than this Tiercode."""


def is_corruption(exc: BaseException) -> bool:
    """True for SQLite's "database disk image is malformed" and "file is not a database" errors."""
    code = getattr(exc, "sqlite_errorcode", None) if isinstance(exc, sqlite3.DatabaseError) else None
    return code is not None and (code & 0xFF) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)  # extended codes too


def set_aside_file(path: Path) -> Path:
    """Move a damaged database file with its WAL and shared memory to `<name>.damaged` (replacing an earlier one);
    returns where it went."""
    aside = path.with_name(f"{path.name}.damaged")
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(path.with_name(path.name + suffix), aside.with_name(aside.name + suffix))
    os.replace(path, aside)
    return aside


class Database:
    """Owns one SQLite file: connections per thread, migrations, transactions."""

    migrations: Sequence[str] = ()
    """SQL scripts; migration N is `migrations[N-1]`. Append only, never edit a shipped one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        try:
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise DatabaseCorrupt(path, str(exc)) from exc

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE): committed on success, rolled back on error."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same state of the file, whatever another
        thread or process writes meanwhile."""
        conn = self.conn
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def schema_version(self) -> int:
        """The number of migrations applied to the file."""
        row = self.conn.execute("SELECT COALESCE(MAX(version), 0) FROM migrations").fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close every connection this object opened."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def _migrate(self) -> None:
        conn = self.conn
        conn.execute("CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
        current = self.schema_version()
        if current > len(self.migrations):
            raise sqlite3.DatabaseError(f"schema version {current} is newer than this Tiercode knows")
        for version in range(current + 1, len(self.migrations) + 1):
            with self.transaction() as tx:
                if tx.execute("SELECT 1 FROM migrations WHERE version = ?", (version,)).fetchone():
                    continue  # another process applied it while we waited for the lock
                for statement in _split_sql(self.migrations[version - 1]):
                    tx.execute(statement)
                tx.execute("INSERT INTO migrations VALUES (?, ?)", (version, time.time()))


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
