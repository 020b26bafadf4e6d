"""The ledger on real SQLite: append-only, survives kill -9, takes several writers, exports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from dataclasses import asdict, fields, replace
from pathlib import Path

import pytest

from assistant import paths
from assistant.accounting.ledger import CallRecord, Ledger, open_ledger
from tests.emulators.fixtures import CloudEmulators
from tests.emulators.server import Reply

_WRITER = """
import sys
from pathlib import Path
from assistant.accounting.ledger import CallRecord, Ledger

path, writer, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ledger = Ledger(path)
i = 0
while count < 0 or i < count:
    ledger.record(CallRecord(
        session_id=writer, query_id=f"{writer}-{i}", tier="groq", provider="groq", model="llama-3.3-70b",
        outcome="ok", kind="explain", input_tokens=1000 + i, output_tokens=i, cost_usd=i / 1e6,
        latency_ms=float(i), escalation_reason="r" * (i % 7), error="x" * 2000, ts=1.7e9 + i,
    ))
    print(i, flush=True)
    i += 1
"""


def _expected(writer: str, i: int) -> CallRecord:
    """The record writer `writer` wrote as its i-th."""
    return CallRecord(
        session_id=writer, query_id=f"{writer}-{i}", tier="groq", provider="groq", model="llama-3.3-70b",
        outcome="ok", kind="explain", input_tokens=1000 + i, output_tokens=i, cost_usd=i / 1e6,
        latency_ms=float(i), escalation_reason="r" * (i % 7), error="x" * 2000, ts=1.7e9 + i,
    )


def _writer(path: Path, name: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _WRITER, str(path), name, str(count)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def _call(n: int, **kwargs: object) -> CallRecord:
    values: dict[str, object] = {"session_id": "s1", "query_id": f"q{n}", "tier": "local", "provider": "local",
                                 "model": "smollm2", "outcome": "ok"}
    values.update(kwargs)
    return CallRecord(**values)  # type: ignore[arg-type]


def test_records_cannot_be_updated_or_deleted(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.record(_call(1, cost_usd=0.5))
    for statement in ("UPDATE calls SET cost_usd = 0", "DELETE FROM calls", "UPDATE OR REPLACE calls SET id = 2"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            ledger.conn.execute(statement)
    # the triggers live in the file: a connection that bypasses the Ledger class is refused too
    raw = sqlite3.connect(tmp_path / "ledger.sqlite")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute("UPDATE calls SET outcome = 'error'")
    raw.close()
    [kept] = list(ledger.records())
    assert kept.cost_usd == 0.5 and kept.outcome == "ok"


def test_insert_or_replace_cannot_overwrite_a_record(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.record(_call(1, cost_usd=0.5))
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        ledger.conn.execute("INSERT OR REPLACE INTO calls (id, ts, session_id, query_id, tier, provider, model, "
                            "outcome) VALUES (1, 0, 's', 'q', 't', 'p', 'm', 'ok')")
    [kept] = list(ledger.records())
    assert kept.cost_usd == 0.5


def test_a_correction_is_a_new_record(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path)
    first = ledger.record(_call(1, cost_usd=0.10))
    second = ledger.record(_call(1, cost_usd=-0.02, outcome="error", error=f"correction of record {first}"))
    assert second > first
    assert [r.cost_usd for r in ledger.records()] == [0.10, -0.02]
    assert ledger.spent(0.0) == pytest.approx(0.08)


def test_kill_9_while_writing_leaves_a_consistent_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    acknowledged = 0
    for _ in range(3):  # three writers in turn, each killed mid-stream, appending to the same file
        proc = _writer(path, "w", -1)
        assert proc.stdout is not None
        for line in proc.stdout:
            done = int(line) + 1
            if done >= 150:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        acknowledged += done
        assert _integrity(path) == "ok"
    ledger = Ledger(path)
    rows = list(ledger.records())
    # every write the writers saw committed is there, whatever the kill interrupted
    assert len(rows) >= acknowledged
    # and every row is whole: exactly what one writer wrote as its i-th record, nothing half-written
    runs: list[list[int]] = [[]]
    for row in rows:
        i = int(row.query_id.split("-")[1])
        if i == 0 and runs[-1]:
            runs.append([])
        runs[-1].append(i)
        assert row == _expected("w", i)
    assert len(runs) == 3
    assert all(run == list(range(len(run))) for run in runs)
    # the file still takes appends after the crashes
    ledger.record(_call(99))
    assert ledger.conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == len(rows) + 1


def test_several_processes_write_at_once_and_every_record_lands(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    Ledger(path).close()  # create the schema first so that the writers race on records, not migrations
    writers = [_writer(path, f"p{n}", 120) for n in range(4)]
    for proc in writers:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    rows = list(Ledger(path).records())
    assert len(rows) == 4 * 120
    assert {(r.session_id, r.query_id) for r in rows} == {(f"p{n}", f"p{n}-{i}") for n in range(4) for i in range(120)}
    assert all(r == _expected(r.session_id, int(r.query_id.split("-")[1])) for r in rows)
    assert _integrity(path) == "ok"


def test_processes_race_on_a_fresh_file(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite"
    writers = [_writer(path, f"p{n}", 20) for n in range(3)]
    for proc in writers:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    ledger = Ledger(path)
    assert ledger.schema_version() == len(Ledger.migrations)
    assert len(list(ledger.records())) == 60


def test_threads_of_one_process_share_a_ledger(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")

    def work(n: int) -> None:
        for i in range(50):
            ledger.record(_call(i, session_id=f"t{n}"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ledger.conn.execute("SELECT COUNT(DISTINCT session_id || query_id) FROM calls").fetchone()[0] == 200


def _sample(ledger: Ledger) -> list[CallRecord]:
    ledger.record(_call(1, ts=1000.0, ttft_ms=12.5, latency_ms=234.123456789, input_tokens=300, output_tokens=20))
    ledger.record(_call(2, ts=2000.0, tier="sonnet", provider="anthropic", model="claude-sonnet-4-5", outcome="error",
                        error='HTTP 529: "overloaded",\nretry later; ünïcode', attempt=2, cost_usd=0.0))
    ledger.record(_call(3, ts=3000.0, outcome="cache_hit", cached=True, input_tokens=300, output_tokens=20,
                        escalation_reason="low confidence, 0.21"))
    return list(ledger.records())


def test_jsonl_export_round_trips(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    records = _sample(ledger)
    out = io.StringIO()
    assert ledger.export(out, "jsonl") == 3
    lines = out.getvalue().splitlines()
    assert [CallRecord(**json.loads(line)) for line in lines] == records
    since = io.StringIO()
    assert ledger.export(since, "jsonl", since=2000.0) == 2
    assert [json.loads(line)["query_id"] for line in since.getvalue().splitlines()] == ["q2", "q3"]


def test_csv_export_is_for_spreadsheets_iso_8601_times_and_whole_milliseconds(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    records = _sample(ledger)
    out = io.StringIO()
    assert ledger.export(out, "csv") == 3
    types = {f.name: f.type for f in fields(CallRecord)}
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", rows[0]["ts"])
    assert (rows[0]["latency_ms"], rows[0]["ttft_ms"], rows[1]["ttft_ms"]) == ("234", "12", "")
    parsed = []
    for row in rows:
        values: dict[str, object] = {}
        for name, text in row.items():
            kind = str(types[name])
            if name == "ts":
                values[name] = dt.datetime.fromisoformat(text).timestamp()
            elif kind == "bool":
                values[name] = text == "True"
            elif kind == "int":
                values[name] = int(text)
            elif kind.startswith("float"):
                values[name] = None if text == "" else float(text)
            else:
                values[name] = text
        parsed.append(CallRecord(**values))  # type: ignore[arg-type]
    whole_ms = [replace(r, latency_ms=round(r.latency_ms), ttft_ms=None if r.ttft_ms is None else round(r.ttft_ms))
                for r in records]
    assert parsed == whole_ms
    assert list(asdict(records[0])) == out.getvalue().splitlines()[0].split(",")


def test_kill_9_in_the_middle_of_a_streamed_call_keeps_the_ledger_whole(
    sample_repo: Path, cloud_emulators: CloudEmulators
) -> None:

    def ask(question: str) -> subprocess.Popen[str]:
        command = [sys.executable, "-c", "from assistant.cli.main import main; main()", "ask", "--tier", "groq",
                   "--yes", "--no-cache", "--repo", str(sample_repo), question]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})

    cloud_emulators.groq.script(Reply("First answer, whole."), Reply("Second answer " * 20, pause_after=3),
                                Reply("Third answer, after the crash."))
    first = ask("explain make_report")
    assert first.wait(timeout=300) == 0
    second = ask("explain total_area")
    assert second.stdout is not None
    seen = ""
    while "Second answer" not in seen:  # the call is streaming: its first deltas have reached the client
        chunk = second.stdout.read(1)
        assert chunk, second.stderr.read() if second.stderr else "the ask ended early"
        seen += chunk
    os.kill(second.pid, signal.SIGKILL)
    second.wait(timeout=30)
    cloud_emulators.groq.resume.set()

    path = paths.data_dir() / "ledger.sqlite"
    assert _integrity(path) == "ok"
    before = list(Ledger(path).records())
    assert [(r.tier, r.outcome) for r in before] == [("groq", "ok")]  # the killed call left no half record
    third = ask("explain Circle")
    assert third.wait(timeout=300) == 0  # the file still takes appends from a new process
    after = list(Ledger(path).records())
    assert after[0] == before[0] and [(r.tier, r.outcome) for r in after] == [("groq", "ok"), ("groq", "ok")]
