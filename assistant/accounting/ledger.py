"""The ledger: one immutable record per model call, in an append-only SQLite table."""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO

from indexer.sqlitedb import Database

_SCHEMA_V1 = """
CREATE TABLE calls (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    session_id TEXT NOT NULL,
    query_id TEXT NOT NULL,
    tier TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT '',
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    latency_ms REAL NOT NULL DEFAULT 0,
    ttft_ms REAL,
    outcome TEXT NOT NULL,
    cached INTEGER NOT NULL DEFAULT 0,
    escalation_reason TEXT NOT NULL DEFAULT '',
    attempt INTEGER NOT NULL DEFAULT 1,
    error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX calls_ts ON calls(ts);
CREATE INDEX calls_query ON calls(query_id);
CREATE TRIGGER calls_no_update BEFORE UPDATE ON calls
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER calls_no_delete BEFORE DELETE ON calls
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
"""


_NO_REPLACE_V2 = """
CREATE TRIGGER calls_no_replace BEFORE INSERT ON calls
WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM calls WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
"""
"""REPLACE deletes the old row without firing DELETE triggers; refuse it before the insert."""


_ROUTE_V3 = """
ALTER TABLE calls ADD COLUMN route_stage TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN route_probability REAL;
"""
"""Which router stage chose the query's kind, and its probability for that label."""


_CONFIDENCE_V4 = """
ALTER TABLE calls ADD COLUMN confidence REAL;
"""
"""The confidence the cascade gave the call's answer (what its threshold was compared with)."""


_ENDPOINT_V5 = """
ALTER TABLE calls ADD COLUMN endpoint TEXT NOT NULL DEFAULT '';
"""
"""Where the call went (scheme, host, port, path; never a key): which server or gateway answered."""

_COUNTERFACTUAL_V6 = """
ALTER TABLE calls ADD COLUMN counterfactual_usd REAL;
"""
"""What an answer that used no model tokens (the index's) would have cost as a Sonnet call."""

_AGENT_V7 = """
ALTER TABLE calls ADD COLUMN tool TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN returned_tokens INTEGER NOT NULL DEFAULT 0;
"""
"""Which MCP tool an agent called (empty for Tiercode's own commands), and how many tokens its result held."""

_THINKING_V8 = """
ALTER TABLE calls ADD COLUMN thinking_tokens INTEGER NOT NULL DEFAULT 0;
"""
"""Of a call's output tokens, those the model spent thinking (billed as output, a part of output_tokens)."""

_BATCH_V9 = """
ALTER TABLE calls ADD COLUMN batch_id TEXT NOT NULL DEFAULT '';
CREATE INDEX calls_batch ON calls(batch_id) WHERE batch_id != '';
"""
"""The provider's batch a call was made in (`tiercode batch`; billed at the batch price); empty for calls made at
once."""


CLASSIFIER_TIER = "classifier"
"""The `tier` of the router's own model calls: recorded and priced like any call, never an answer."""
COMMIT_MESSAGE_TIER = "commit-message"
COMPACTION_TIER = "compaction"
"""The `tier` of a call that summarised a conversation's earlier turns: priced at the rates of the tier that
made it (its `provider` and `model` say which), never an answer."""
"""The `tier` of the local model's call that writes an applied edit's commit message: a call, never an answer."""


DELIVERED = "delivered"
"""The outcome of a record that is no call: what an MCP client was sent for a query whose calls (the
cascade's) are recorded apart; it carries the tool and the tokens returned, at $0."""


def new_id() -> str:
    """A fresh id for a session or a query."""
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class CallRecord:
    """One model call (or cache hit, or failed attempt) as the ledger keeps it."""

    session_id: str
    query_id: str
    tier: str
    provider: str
    model: str
    outcome: str
    """`ok`, `error`, `cancelled`, `cache_hit`, `budget_stop` or `delivered`."""
    kind: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    cached: bool = False
    escalation_reason: str = ""
    """Why the query moved on from this call's tier, if it did."""
    attempt: int = 1
    error: str = ""
    route_stage: str = ""
    """Which router stage labelled the query: `index`, `rules`, `lexical`, `classifier` or `default`."""
    route_probability: float | None = None
    """That stage's probability for the label."""
    confidence: float | None = None
    """0..1, the score the cascade judged the answer by (token logprobs on the local tier, 1.0 for a
    cloud answer that passed every verifier); None for calls that gave no answer."""
    endpoint: str = ""
    """The URL the call went to, without credentials or a query; empty for in-process models, the index
    and cache hits."""
    counterfactual_usd: float | None = None
    """For an answer that used no model tokens (the index's): what the same question would have cost as a
    Sonnet call (its context and map budgets, the question in, the answer's length out); None otherwise."""
    tool: str = ""
    """The MCP tool an agent called (`find_definition`, `ask_cheap`, ...); empty for Tiercode's own commands."""
    returned_tokens: int = 0
    """Tokens of the result the MCP tool returned to the agent."""
    thinking_tokens: int = 0
    """Of `output_tokens`, those the model spent thinking (exact where the provider reports them, else the output
    the answer's text does not account for)."""
    batch_id: str = ""
    """The provider's id of the batch the call was made in, at the batch price; empty for a call made at once."""
    ts: float = 0.0
    """Unix time; filled in when the record is written."""


_COLUMNS = [f.name for f in fields(CallRecord)]


class Ledger(Database):
    """The append-only call ledger (several processes may write at once)."""

    migrations = (_SCHEMA_V1, _NO_REPLACE_V2, _ROUTE_V3, _CONFIDENCE_V4, _ENDPOINT_V5, _COUNTERFACTUAL_V6, _AGENT_V7,
                  _THINKING_V8, _BATCH_V9)

    def record(self, call: CallRecord) -> int:
        """Append one record; returns its id."""
        values = asdict(call)
        values["ts"] = call.ts or time.time()
        values["cached"] = int(call.cached)
        placeholders = ", ".join("?" for _ in _COLUMNS)
        with self.transaction() as tx:
            cursor = tx.execute(
                f"INSERT INTO calls ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                [values[c] for c in _COLUMNS],
            )
        return int(cursor.lastrowid or 0)

    def records(self, since: float | None = None) -> Iterator[CallRecord]:
        """Every record, oldest first, optionally since a Unix time."""
        rows = self.conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM calls WHERE ts >= ? ORDER BY id", (since or 0.0,)
        )
        for row in rows:
            values = dict(row)
            values["cached"] = bool(values["cached"])
            yield CallRecord(**values)

    def has_batch_record(self, batch_id: str, query_id: str) -> bool:
        """Whether a call of this query in this batch is recorded (what makes collecting a batch twice record once)."""
        query = "SELECT 1 FROM calls WHERE batch_id = ? AND query_id = ? LIMIT 1"
        return self.conn.execute(query, (batch_id, query_id)).fetchone() is not None

    def spent(self, since: float, session_id: str | None = None) -> float:
        """Dollars spent since a Unix time, optionally in one session only."""
        query = "SELECT COALESCE(SUM(cost_usd), 0) FROM calls WHERE ts >= ?"
        args: list[object] = [since]
        if session_id:
            query += " AND session_id = ?"
            args.append(session_id)
        return float(self.conn.execute(query, args).fetchone()[0])

    def export(self, out: IO[str], fmt: str = "jsonl", since: float | None = None) -> int:
        """Write records as JSONL (the exact values: `ts` in Unix seconds) or CSV (for spreadsheets:
        `spreadsheet_row`); returns how many."""
        count = 0
        writer = csv.DictWriter(out, fieldnames=_COLUMNS) if fmt == "csv" else None
        if writer:
            writer.writeheader()
        for record in self.records(since):
            if writer:
                writer.writerow(spreadsheet_row(record))
            else:
                out.write(json.dumps(asdict(record)) + "\n")
            count += 1
        return count


def spreadsheet_row(record: CallRecord) -> dict[str, object]:
    """A record as a spreadsheet reads it: `ts` in ISO 8601 (local time with its UTC offset, to the
    millisecond) and the latencies in whole milliseconds."""
    row = asdict(record)
    row["ts"] = dt.datetime.fromtimestamp(record.ts).astimezone().isoformat(timespec="milliseconds")
    row["latency_ms"] = round(record.latency_ms)
    row["ttft_ms"] = None if record.ttft_ms is None else round(record.ttft_ms)
    return row


def open_ledger(data_dir: Path) -> Ledger:
    """The user's ledger under the data dir."""
    return Ledger(data_dir / "ledger.sqlite")
