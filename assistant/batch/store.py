"""The batch store: every batch submitted to a provider and every request in it, in `batches.sqlite` in the
data folder, so `tiercode batch status|collect|cancel` work from any later run and an interrupted collect
resumes where it stopped.

A request is settled once: `settle` writes its ledger record and marks it collected inside one write
transaction of this file, and the ledger is asked first whether that record is already there (a collect
killed between the two writes), so however often or however interrupted `collect` runs, each request is
one ledger record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from indexer.sqlitedb import Database

_SCHEMA_V1 = """
CREATE TABLE batches (
    batch_id TEXT PRIMARY KEY,
    tier TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    repo TEXT NOT NULL,
    created_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'in_progress',
    canceled INTEGER NOT NULL DEFAULT 0,
    estimated_usd REAL NOT NULL DEFAULT 0
);
CREATE TABLE requests (
    batch_id TEXT NOT NULL REFERENCES batches(batch_id),
    custom_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    query_id TEXT NOT NULL,
    question TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT '',
    route_stage TEXT NOT NULL DEFAULT '',
    route_probability REAL,
    estimated_usd REAL NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'submitted',
    answer TEXT NOT NULL DEFAULT '',
    cost_usd REAL NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    collected_at REAL,
    PRIMARY KEY (batch_id, custom_id)
);
CREATE INDEX requests_open ON requests(batch_id) WHERE collected_at IS NULL;
"""
_CACHE_KEY_V2 = """
ALTER TABLE requests ADD COLUMN cache_key TEXT NOT NULL DEFAULT '';
"""


@dataclass(frozen=True)
class StoredBatch:
    """One batch as submitted, and the provider's last word on it."""

    batch_id: str
    """The provider's id (`msgbatch_...`, `batches/...`)."""
    tier: str
    provider: str
    model: str
    repo: str
    created_at: float
    state: str = "in_progress"
    """`in_progress`, `canceling` or `ended`, as the provider last said."""
    canceled: bool = False
    """Whether `batch cancel` was asked for it."""
    estimated_usd: float = 0.0
    """The most it can cost, at the batch price."""


@dataclass(frozen=True)
class StoredRequest:
    """One question in a batch, and once collected what became of it."""

    batch_id: str
    custom_id: str
    position: int
    """Its place in the batch as sent (Gemini's answers come back in this order)."""
    query_id: str
    """The question's id in the ledger: its index, classifier and free-tier records carry it too."""
    question: str
    kind: str = ""
    route_stage: str = ""
    route_probability: float | None = None
    estimated_usd: float = 0.0
    status: str = "submitted"
    """`submitted` until collected; then `succeeded`, `errored`, `canceled` or `expired`."""
    answer: str = ""
    cost_usd: float = 0.0
    error: str = ""
    collected_at: float | None = None
    cache_key: str = ""
    """What its answer is cached under once collected (`CacheKey.to_json`), so the same question asked again,
    in a batch or not, is answered from the cache."""


_BATCH_COLUMNS = [f.name for f in fields(StoredBatch)]
_REQUEST_COLUMNS = [f.name for f in fields(StoredRequest)]


class BatchStore(Database):
    """The batches submitted from this machine and their requests."""

    migrations = (_SCHEMA_V1, _CACHE_KEY_V2)

    def add(self, batch: StoredBatch, requests: Sequence[StoredRequest]) -> None:
        """Keep a batch the provider accepted, with its requests."""
        with self.transaction() as tx:
            tx.execute(f"INSERT INTO batches ({', '.join(_BATCH_COLUMNS)}) VALUES "
                       f"({', '.join('?' for _ in _BATCH_COLUMNS)})", [getattr(batch, c) for c in _BATCH_COLUMNS])
            tx.executemany(f"INSERT INTO requests ({', '.join(_REQUEST_COLUMNS)}) VALUES "
                           f"({', '.join('?' for _ in _REQUEST_COLUMNS)})",
                           [[getattr(r, c) for c in _REQUEST_COLUMNS] for r in requests])

    def batches(self, ids: Sequence[str] = (), include_collected: bool = False) -> list[StoredBatch]:
        """The batches named (all when none are), oldest first; without `include_collected`, only those with a
        request not yet collected."""
        query = f"SELECT {', '.join(_BATCH_COLUMNS)} FROM batches b"
        conditions, args = [], list(ids)
        if ids:
            conditions.append(f"batch_id IN ({', '.join('?' for _ in ids)})")
        if not include_collected:
            conditions.append("EXISTS (SELECT 1 FROM requests r WHERE r.batch_id = b.batch_id AND "
                              "r.collected_at IS NULL)")
        if conditions:
            query += " WHERE " + " AND ".join(conditions)
        rows = self.conn.execute(query + " ORDER BY created_at, batch_id", args)
        return [StoredBatch(**{**dict(row), "canceled": bool(row["canceled"])}) for row in rows]

    def requests(self, batch_id: str) -> list[StoredRequest]:
        """A batch's requests in the order they were sent."""
        rows = self.conn.execute(f"SELECT {', '.join(_REQUEST_COLUMNS)} FROM requests WHERE batch_id = ? "
                                 "ORDER BY position", (batch_id,))
        return [StoredRequest(**dict(row)) for row in rows]

    def set_state(self, batch_id: str, state: str, canceled: bool | None = None) -> None:
        """What the provider now says of a batch (and whether cancelling it was asked)."""
        with self.transaction() as tx:
            tx.execute("UPDATE batches SET state = ?, canceled = COALESCE(?, canceled) WHERE batch_id = ?",
                       (state, None if canceled is None else int(canceled), batch_id))

    def outstanding_usd(self) -> float:
        """The most the requests not collected yet can still cost (what a new batch's budget check adds)."""
        row = self.conn.execute("SELECT COALESCE(SUM(estimated_usd), 0) FROM requests WHERE collected_at IS NULL")
        return float(row.fetchone()[0])

    def settle(self, request: StoredRequest, status: str, answer: str, cost_usd: float, error: str,
               record: Callable[[], None]) -> bool:
        """Mark a request collected with its outcome, calling `record` (its ledger record) in the same write
        transaction; False, and no call, when it was collected already (by another run)."""
        with self.transaction() as tx:
            done = tx.execute("SELECT collected_at FROM requests WHERE batch_id = ? AND custom_id = ?",
                              (request.batch_id, request.custom_id)).fetchone()
            if done is None or done[0] is not None:
                return False
            record()
            tx.execute("UPDATE requests SET status = ?, answer = ?, cost_usd = ?, error = ?, collected_at = ? "
                       "WHERE batch_id = ? AND custom_id = ?",
                       (status, answer, cost_usd, error, time.time(), request.batch_id, request.custom_id))
        return True


def open_batch_store(data_dir: Path) -> BatchStore:
    """The batch store under the data folder."""
    return BatchStore(data_dir / "batches.sqlite")
