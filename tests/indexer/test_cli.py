"""`tiercode index`, `find`, `search` and `map` end to end through click."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest
from click.testing import CliRunner

from assistant import paths
from assistant.cli.main import cli
from indexer.store import IndexStore
from tests.models.tiny_bert import tiny_bert

LANGS = Path(__file__).parents[1] / "fixtures" / "langs"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(LANGS, root)
    (root / "huge.py").write_text("x = 1\n" * 300_000)
    return root


def run(*args: str) -> tuple[int, str]:
    """Exit code and everything printed (stdout and stderr)."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def run_json(*args: str, code: int = 0) -> object:
    """The JSON a command prints on stdout, with its exit code checked."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code
    return json.loads(result.stdout)


def test_index_lists_skipped_and_find_is_exact_then_fuzzy(repo: Path) -> None:
    code, out = run("index", "--repo", str(repo), "--no-embed", "--list-skipped")
    assert code == 0
    assert "indexed 10 files" in out and "1 skipped" in out
    assert "skipped huge.py: too large" in out
    expected = {"name": "Start", "qualified_name": "Server.Start", "kind": "method", "path": "go/server.go",
                "line": 24, "end_line": 27}
    assert run_json("find", "Server.Start", "--repo", str(repo), "--json") == [expected]
    rows = run_json("find", "Servre", "--repo", str(repo), "--json", code=1)  # close matches only: exit 1
    assert isinstance(rows, list) and {row["qualified_name"] for row in rows} >= {"Server", "Service"}
    code, out = run("find", "helper", "--repo", str(repo), "--refs")
    assert code == 0 and "python/shapes.py:15  decorated_top" in out
    assert run_json("find", "Zzzqqq", "--repo", str(repo), "--json", code=1) == []
    code, out = run("find", "Zzzqqq", "--repo", str(repo), "--refs")
    assert (code, out.strip()) == (1, "tiercode: no reference to Zzzqqq in the index")  # as grep: 1, not found


def test_index_lists_the_first_ten_skipped_paths_with_their_reasons(repo: Path) -> None:
    for n in range(11):
        (repo / f"blob{n:02}.py").write_bytes(b"\0binary")
    code, out = run("index", "--repo", str(repo), "--no-embed")
    listed = [line for line in out.splitlines() if line.startswith("skipped ")]
    assert code == 0 and "12 skipped" in out
    assert listed == [f"skipped blob{n:02}.py: binary" for n in range(10)]
    assert "… and 2 more (--list-skipped lists them all)" in out


def test_corrupt_index_is_rebuilt_with_a_notice(repo: Path) -> None:
    index = paths.index_dir(repo.resolve()) / "index.sqlite"
    index.parent.mkdir(parents=True)
    index.write_bytes(b"garbage, not sqlite" * 100)
    code, out = run("index", "--repo", str(repo), "--no-embed")
    assert code == 0 and "could not be used (file is not a database); rebuilding it" in out
    assert "indexed 10 files" in out
    assert IndexStore(index).counts()["files"] == 10


@pytest.mark.parametrize("command", [("index", "--no-embed"), ("find", "Account")])
def test_an_index_damaged_past_its_header_is_rebuilt_with_a_notice(repo: Path, command: tuple[str, ...]) -> None:
    assert run("index", "--repo", str(repo), "--no-embed")[0] == 0
    index = paths.index_dir(repo.resolve()) / "index.sqlite"
    data = index.read_bytes()
    index.write_bytes(data[:8192] + b"\xaa" * (len(data) - 8192))  # the header and schema page survive
    code, out = run(*command, "--repo", str(repo))
    assert code == 0 and "could not be used (database disk image is malformed); rebuilding it" in out
    assert IndexStore(index).counts()["files"] == 10


def test_damage_the_build_does_not_reach_is_a_one_line_error(repo: Path) -> None:
    assert run("index", "--repo", str(repo), "--no-embed")[0] == 0
    index = paths.index_dir(repo.resolve()) / "index.sqlite"
    with sqlite3.connect(index) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'symbols'").fetchone()[0]
    data = bytearray(index.read_bytes())
    data[(root - 1) * page_size : root * page_size] = b"\xaa" * page_size  # the definitions, not the files
    index.write_bytes(bytes(data))
    code, out = run("find", "Account", "--repo", str(repo))
    assert code == 2 and out.strip().splitlines() == [
        "tiercode: error: the index is damaged (database disk image is malformed);"
        " `tiercode index --rebuild` builds it anew"]


def test_a_damaged_ledger_is_named_and_kept(repo: Path) -> None:
    ledger = paths.data_dir() / "ledger.sqlite"
    assert run("stats")[0] == 0 and ledger.exists()
    with sqlite3.connect(ledger) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'calls'").fetchone()[0]
    data = bytearray(ledger.read_bytes())
    data[(root - 1) * page_size : root * page_size] = b"\xaa" * page_size
    ledger.write_bytes(bytes(data))
    code, out = run("stats")
    assert code == 2 and len(out.strip().splitlines()) == 1
    assert f"the ledger at {ledger} is damaged" in out and "move it aside to keep its records" in out
    assert ledger.read_bytes() == bytes(data)  # never deleted: it is the user's spend record


def test_index_embeds_with_an_embedding_model_and_search_fuses_its_hits(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIERCODE_LOCAL__EMBEDDER", str(tiny_bert(tmp_path / "tiny-bert.gguf", "cls")))
    before = CliRunner().invoke(cli, ["search", "deposit money", "--repo", str(repo)], catch_exceptions=False)
    assert "(run `tiercode index` to compute them)" in before.stderr  # a model is there: only the index is missing
    code, out = run("index", "--repo", str(repo))
    assert code == 0 and re.search(r"embedded \d+ chunks from 10 files \(\d+ vectors\)", out), out
    result = CliRunner().invoke(cli, ["search", "deposit money", "--repo", str(repo), "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0 and "no embeddings yet" not in result.stderr
    hits = json.loads(result.stdout)
    assert "Account.deposit" in [h["symbol"] for h in hits]  # BM25's best, fused with the (random) dense ranking
    assert len(hits) == 10  # dense hits fill the list past BM25's few


def test_the_configured_size_limit_decides_what_is_too_large(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (repo / "python" / "big.py").write_text("def big():\n    return 1\n" * 20)  # 520 bytes
    monkeypatch.setenv("TIERCODE_MAX_FILE_BYTES", "400")
    code, out = run("index", "--repo", str(repo), "--no-embed", "--list-skipped")
    assert code == 0 and "skipped python/big.py: too large" in out
    monkeypatch.setenv("TIERCODE_MAX_FILE_BYTES", "4000")
    assert "skipped python/big.py" not in run("index", "--repo", str(repo), "--no-embed", "--list-skipped")[1]


def test_index_shows_a_progress_bar_with_files_rate_and_skipped_on_a_terminal(repo: Path) -> None:
    (repo / "python" / "blob.py").write_bytes(b"\x00\x01 not text")  # found binary by a worker, not the scan
    rich_reads = {"TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS",
                  "LINES", "JUPYTER_COLUMNS", "JUPYTER_LINES", "DATABRICKS_RUNTIME_VERSION"}
    env = {name: value for name, value in os.environ.items() if name not in rich_reads}
    env |= {"TERM": "xterm-256color", "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "160",
            "LINES": "40"}  # rich draws as on a terminal, whatever terminal (or none) runs the tests
    done = subprocess.run([sys.executable, "-c", "from assistant.cli.main import main; main()", "index", "--no-embed",
                           "--repo", str(repo)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    bar = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", done.stderr)
    skipped = re.search(r"(\d+) skipped\)", done.stdout)
    assert skipped and int(skipped[1]) >= 1, done.stdout
    assert re.search(rf"indexing .*11/11 files \d+ files/s {skipped[1]} skipped", bar), bar  # the worker's too


def test_search_json_hits(repo: Path) -> None:
    result = CliRunner().invoke(cli, ["search", "deposit money", "--repo", str(repo), "-k", "3", "--json"],
                                catch_exceptions=False)
    assert "`tiercode models pull bge-small`, then `tiercode index`" in result.stderr  # no embedding model yet
    hits = json.loads(result.stdout)
    assert isinstance(hits, list)
    assert hits[0]["symbol"] == "Account.deposit" and hits[0]["path"] == "java/com/example/Account.java"
    assert set(hits[0]) == {"path", "line", "symbol", "score"} and len(hits) <= 3


def test_search_reads_a_bug_report_from_stdin_and_ranks_files_with_what_found_each(repo: Path) -> None:
    report = """Shape.area is wrong for subclasses

Traceback (most recent call last):
  File "/usr/lib/python3/site-packages/python/shapes.py", line 22, in area
ValueError: negative
"""
    result = CliRunner().invoke(cli, ["search", "-", "--files", "--json", "--repo", str(repo), "-k", "3"],
                                input=report, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)
    assert files[0]["path"] == "python/shapes.py" and "frames" in files[0]["reasons"]
    assert set(files[0]) == {"path", "score", "reasons"} and len(files) <= 3
    empty = CliRunner().invoke(cli, ["search", "-", "--repo", str(repo)], input="  \n")
    assert empty.exit_code == 2 and "stdin, which was empty" in empty.output


@pytest.mark.parametrize("command", [["find", ""], ["find", "  "], ["search", ""], ["find", "", "--refs"]])
def test_an_empty_name_or_search_text_is_a_usage_error(repo: Path, command: list[str]) -> None:
    code, output = run(*command, "--repo", str(repo))
    assert code == 2
    assert "is empty; give a name or some text" in output
    assert "Traceback" not in output


def test_map_fits_the_real_tokenizer(repo: Path, installed_model: Path) -> None:
    from models.local import LocalModel

    data = run_json("map", "--repo", str(repo), "--tokens", "120", "--json")
    assert isinstance(data, dict) and data["tokenizer"] == "the smollm2 tokenizer"
    assert 0 < len(LocalModel(installed_model).tokenize(data["map"])) <= 120 == data["budget"]


def test_map_without_a_model_says_it_estimates(repo: Path) -> None:
    code, out = run("map", "--repo", str(repo), "--tokens", "60", "--query", "rust store")
    assert code == 0 and "rust/lib.rs:" in out and "counted with an estimate" in out


def test_map_focus_takes_a_path_relative_to_the_repository_the_current_folder_or_absolute(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = next(p for p in sorted((repo / "go").iterdir()) if p.suffix == ".go")
    relative = target.relative_to(repo).as_posix()
    plain = run_json("map", "--repo", str(repo), "--tokens", "200", "--json")["map"]  # type: ignore[index]
    focused = run_json("map", "--repo", str(repo), "--tokens", "200", "--json", "--focus", relative)["map"]  # type: ignore[index]
    assert focused.startswith(relative) and focused != plain
    monkeypatch.chdir(repo / "go")
    for given in (f"./{target.name}", str(target), relative):
        again = run_json("map", "--repo", str(repo), "--tokens", "200", "--json", "--focus", given)
        assert again["map"] == focused, given  # type: ignore[index]
    code, out = run("map", "--repo", str(repo), "--focus", "no/such/file.go")
    assert code == 2 and "--focus no/such/file.go: not a file in the index" in out


def _start_watching(repo: Path, sigint: str = "restored") -> tuple[subprocess.Popen[str], Lines, Lines]:
    """`tiercode index --watch` in a child whose SIGINT starts restored to the default, or ignored (as a
    non-interactive shell's `&` job, `nohup` or a CI runner leaves it), once it says it is watching."""
    command = [sys.executable, "-c", "from assistant.cli.main import main; main()", "index", "--watch", "--no-embed",
               "--repo", str(repo)]
    if sigint == "ignored":
        command = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *command]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) if sigint == "restored" else None,
    )
    assert proc.stderr is not None and proc.stdout is not None
    stdout, stderr = Lines(proc.stdout), Lines(proc.stderr)  # drained to the end: no pipe ever fills
    if not stderr.wait_for("watching"):
        proc.kill()
        pytest.fail("the watcher never said it was watching: " + stderr.text())
    return proc, stdout, stderr


def _stopped(proc: subprocess.Popen[str], signal_number: int) -> int:
    """The child's exit code after `signal_number`; a child that does not stop is killed and the test fails."""
    proc.send_signal(signal_number)
    try:
        return proc.wait(timeout=STOP_GUARD)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"index --watch did not stop on {signal.Signals(signal_number).name}")


def test_index_watch_reports_updates_until_interrupted_however_busy(repo: Path) -> None:
    proc, stdout, stderr = _start_watching(repo)
    try:
        (repo / "python" / "fresh.py").write_text("def fresh_function():\n    pass\n")
        assert stdout.wait_for("fresh.py").strip() == "updated python/fresh.py"
        for n in range(300):  # keep it busy: Ctrl-C lands while batches are pending or running
            (repo / "python" / f"busy_{n}.py").write_text(f"def busy_{n}():\n    return {n}\n" * 50)
    finally:
        code = _stopped(proc, signal.SIGINT)
    assert code == 0, stderr.text()
    assert "Traceback" not in stderr.text()
    index = paths.index_dir(repo.resolve()) / "index.sqlite"
    assert [s.path for s in IndexStore(index).definitions("fresh_function")] == ["python/fresh.py"]


def test_index_watch_stops_on_sigint_even_when_started_with_sigint_ignored(repo: Path) -> None:
    proc, _, stderr = _start_watching(repo, sigint="ignored")
    assert _stopped(proc, signal.SIGINT) == 0, stderr.text()
    assert "Traceback" not in stderr.text()


def test_index_watch_stops_cleanly_on_sigterm(repo: Path) -> None:
    proc, stdout, stderr = _start_watching(repo)
    (repo / "python" / "fresh.py").write_text("def fresh_function():\n    pass\n")
    assert stdout.wait_for("fresh.py").strip() == "updated python/fresh.py"
    assert _stopped(proc, signal.SIGTERM) == 0, stderr.text()
    assert "Traceback" not in stderr.text()


HANG_GUARD = 300.0
"""Seconds before a wait gives up: a guard against a hang, not a timing assertion."""
STOP_GUARD = 120.0
"""Seconds a signalled child has to stop before it is killed (also a hang guard, not a timing assertion)."""


class Lines:
    """Every line of a child's stream, read on a thread to its end."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self._seen: list[str] = []
        threading.Thread(target=lambda: [self._lines.put(line) for line in stream], daemon=True).start()

    def wait_for(self, needle: str) -> str:
        """The first line containing `needle`, or "" when none comes before the hang guard."""
        deadline = time.monotonic() + HANG_GUARD
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            self._seen.append(line)
            if needle in line:
                return line
        return ""

    def text(self) -> str:
        """What was read so far, and what is waiting to be."""
        while not self._lines.empty():
            self._seen.append(self._lines.get())
        return "".join(self._seen)
