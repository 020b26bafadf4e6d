"""`tiercode ask` end to end, through the real console script: answers, JSON shape and bad input."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from assistant import paths

JSON_KEYS = {"answer", "tier", "model", "cached", "kind", "difficulty", "escalations", "usage", "cost_usd",
             "sources", "duration_ms", "notes", "confidence", "budget_stop", "fallback_from", "error", "finish_reason"}
USAGE_KEYS = {"input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "thinking_tokens"}


def tiercode(*args: str, cwd: Path | None = None, stdin: str | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed entry point the way a user does."""
    command = [sys.executable, "-c", "from assistant.cli.main import main; main()", *args]
    return subprocess.run(command, cwd=cwd, input=stdin if stdin is not None else "", capture_output=True,
                          text=True, timeout=300, env=env or dict(os.environ))


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("tiercode: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in done.stderr


def test_definition_question_is_answered_by_the_index(sample_repo: Path) -> None:
    done = tiercode("ask", "--offline", "where is Circle defined?", "--repo", str(sample_repo))
    assert done.returncode == 0, done.stderr
    assert "pkg/shapes.py:14" in done.stdout
    assert "tier index" in done.stderr


def test_json_prints_exactly_one_object_of_the_documented_shape(sample_repo: Path) -> None:
    done = tiercode("ask", "--offline", "--json", "where is total_area defined?", "--repo", str(sample_repo))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)  # the whole of stdout is one JSON document
    assert set(answer) == JSON_KEYS
    assert set(answer["usage"]) == USAGE_KEYS
    assert answer["tier"] == "index" and answer["model"] == "index" and answer["kind"] == "lookup"
    assert answer["cost_usd"] == 0.0
    assert answer["sources"] == [{"path": "pkg/shapes.py", "line": 25, "symbol": "total_area"}]


def test_who_calls_lists_callers_with_their_enclosing_function(sample_repo: Path) -> None:
    done = tiercode("ask", "--offline", "--json", "who calls total_area?", "--repo", str(sample_repo))
    answer = json.loads(done.stdout)
    assert answer["tier"] == "index"
    assert {"path": "pkg/report.py", "line": 9, "symbol": "make_report"} in answer["sources"]


def test_free_form_question_streams_a_local_answer_and_records_it(sample_repo: Path, installed_model: Path) -> None:
    env = dict(os.environ, TIERCODE_MAX_OUTPUT_TOKENS="40")
    done = tiercode("ask", "--offline", "--json", "explain what make_report returns", "--repo", str(sample_repo),
                    env=env)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["tier"] == "local" and answer["model"] == "smollm2"
    assert answer["answer"].strip()
    assert answer["usage"]["input_tokens"] > 0 and 0 < answer["usage"]["output_tokens"] <= 40
    assert answer["cost_usd"] == 0.0
    assert any(s["symbol"] == "make_report" for s in answer["sources"])
    with sqlite3.connect(paths.data_dir() / "ledger.sqlite") as db:
        rows = db.execute("SELECT tier, model, input_tokens, output_tokens, cost_usd, latency_ms FROM calls").fetchall()
    assert [r[:2] for r in rows] == [("local", "smollm2")]
    assert rows[0][2] == answer["usage"]["input_tokens"] and rows[0][4] == 0.0 and rows[0][5] > 0


def test_plain_output_streams_the_answer_on_stdout_and_metadata_on_stderr(
    sample_repo: Path, installed_model: Path
) -> None:
    env = dict(os.environ, TIERCODE_MAX_OUTPUT_TOKENS="24")
    done = tiercode("ask", "--offline", "describe the Shape class", "--repo", str(sample_repo), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert "tier local · smollm2" in done.stderr
    assert "tier" not in done.stdout.splitlines()[-1]


def test_the_index_is_reused_on_later_runs(sample_repo: Path) -> None:
    tiercode("ask", "--offline", "where is Shape defined?", "--repo", str(sample_repo))
    index = next(paths.cache_dir().glob("repo-*/index.sqlite"))
    done = tiercode("index", "--repo", str(sample_repo))
    assert "0 parsed" in done.stdout and "3 unchanged" in done.stdout
    assert index.is_file()


def test_missing_repo_path(tmp_path: Path) -> None:
    done = tiercode("ask", "where is x defined?", "--repo", str(tmp_path / "nowhere"))
    assert_one_line_error(done, 2, "does not exist")


def test_repo_path_that_is_a_file(sample_repo: Path) -> None:
    done = tiercode("ask", "where is x defined?", "--repo", str(sample_repo / "pkg" / "shapes.py"))
    assert_one_line_error(done, 2, "is not a folder")


def test_empty_repo(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no code here")
    done = tiercode("ask", "where is x defined?", "--repo", str(tmp_path / "empty"))
    assert_one_line_error(done, 2, "no source files")


def test_unknown_option() -> None:
    done = tiercode("ask", "--frobnicate", "hello")
    assert_one_line_error(done, 2, "No such option '--frobnicate'")
    assert "--help" in done.stderr


def test_missing_model_says_how_to_get_it(sample_repo: Path) -> None:
    done = tiercode("ask", "--offline", "explain the Circle class in detail", "--repo", str(sample_repo))
    assert_one_line_error(done, 1, "tiercode models pull")  # no tier could answer: exit 1, whatever the cause


def test_corrupt_model_is_reported_and_nothing_stored_is_damaged(sample_repo: Path, installed_model: Path) -> None:
    env = dict(os.environ, TIERCODE_MAX_OUTPUT_TOKENS="16")
    first = tiercode("ask", "--offline", "explain total_area", "--repo", str(sample_repo), env=env)
    assert first.returncode == 0, first.stderr
    ledger = paths.data_dir() / "ledger.sqlite"
    index = next(paths.cache_dir().glob("repo-*/index.sqlite"))
    ledger_before, index_before = _rows(ledger, "calls"), _rows(index, "symbols")
    installed_model.unlink()
    installed_model.write_bytes(b"GGUF" + os.urandom(256))
    done = tiercode("ask", "--offline", "explain total_area", "--repo", str(sample_repo), env=env)
    assert_one_line_error(done, 2, "corrupt")
    assert _rows(ledger, "calls") == ledger_before
    assert _rows(index, "symbols") == index_before
    assert _integrity(ledger) == "ok" and _integrity(index) == "ok"


@pytest.mark.parametrize(("unreadable", "notice"), [
    ("pkg/secret.py", "skipped unreadable file pkg/secret.py;"),
    ("pkg/private", "skipped unreadable folder pkg/private/;"),
])
def test_an_unreadable_file_or_folder_is_skipped_with_a_notice_and_the_rest_still_answers(
    sample_repo: Path, tmp_path: Path, unreadable: str, notice: str,
) -> None:
    secret = sample_repo / unreadable
    source = secret if secret.suffix else secret / "hidden.py"
    source.parent.mkdir(exist_ok=True)
    source.write_text("def hidden():\n    pass\n")
    secret.chmod(0)
    env = dict(os.environ)
    if os.geteuid() == 0:  # root reads anything: run as an unprivileged user instead
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to drop root")
        shared = Path(os.environ["XDG_DATA_HOME"]).parent
        for folder in [tmp_path, *tmp_path.parents[:2], shared, *shared.rglob("*")]:
            if folder.is_dir():
                folder.chmod(0o777)
        for path in sample_repo.rglob("*"):
            if path != secret:
                path.chmod(0o777 if path.is_dir() else 0o644)
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
                   "from assistant.cli.main import main; main()", "ask", "--offline", "where is Circle defined?",
                   "--repo", str(sample_repo)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, input="")
    else:
        done = tiercode("ask", "--offline", "where is Circle defined?", "--repo", str(sample_repo))
    assert done.returncode == 0, done.stderr
    assert "pkg/shapes.py:14" in done.stdout
    assert notice in done.stderr
    assert "Traceback" not in done.stderr


def test_help_describes_every_option() -> None:
    done = tiercode("ask", "--help")
    for option in ("--repo", "--offline", "--json", "--tier", "--max-cost", "--yes", "--no-cache", "--dry-run"):
        assert option in done.stdout
    assert tiercode("--help").returncode == 0


def _rows(db_path: Path, table: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db_path) as db:
        return db.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()


def _integrity(db_path: Path) -> str:
    with sqlite3.connect(db_path) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def test_options_before_the_command_apply_to_it(sample_repo: Path, tmp_path: Path) -> None:
    env = dict(os.environ, GROQ_API_KEY="test-key")
    done = tiercode("--offline", "--repo", str(sample_repo), "ask", "--dry-run", "--json", "explain total_area",
                    cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    tiers = {t["tier"]: t for t in json.loads(done.stdout)["tiers"]}
    assert not tiers.get("groq", {}).get("available")  # `tiercode --offline ask` is offline, key or not
    online = json.loads(tiercode("--repo", str(sample_repo), "ask", "--dry-run", "--json", "explain total_area",
                                 cwd=tmp_path, env=env).stdout)
    assert {t["tier"]: t for t in online["tiers"]}["groq"]["available"]
    found = tiercode("--repo", str(sample_repo), "find", "total_area", cwd=tmp_path)
    assert "pkg/shapes.py:25" in found.stdout  # the repository given before the command, not the cwd
    (sample_repo / ".tiercode.toml").write_text("[budget]\ndaily = 0.5\n")
    shown = tiercode("--repo", str(sample_repo), "budget", "show", "--json", cwd=tmp_path)
    assert json.loads(shown.stdout)["daily"] == 0.5  # a command of a group (budget show) too
    assert "0.5" in tiercode("--repo", str(sample_repo), "budget", cwd=tmp_path).stdout
    pulled = tiercode("--offline", "models", "pull", "bge-small", cwd=tmp_path)
    assert pulled.returncode != 0 and "offline" in pulled.stderr and "Traceback" not in pulled.stderr
