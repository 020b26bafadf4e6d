"""Declared openai-compatible tiers as a user meets them when the server is not what the table says or
misbehaves: `ask` on the command line (its stdout, its error line, its exit code), `doctor`, and the
ledger. Real parts: llama.cpp's own server, the openai SDK, and a loopback emulator for broken streams."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant import paths
from assistant.cli.doctor_cmd import doctor
from tests.assistant.test_tier_config import tiercode, user_config
from tests.emulators.groq_api import GroqEmulator
from tests.emulators.server import Drop, Fail, Garbage
from tests.models import llama_server as llama_server_module
from tests.models.llama_server import LlamaServer, free_port

llama_server = llama_server_module.llama_server
QUESTION = "explain how the report is built"
KEYED = 'api_key_env = "TEAM_KEY"\n'


def team_tier(base_url: str, model: str = "gateway-model", extra: str = "", name: str = "team") -> str:
    return (f'[tier.{name}]\nprovider = "openai-compatible"\nbase_url = "{base_url}"\nmodel = "{model}"\nfree = true\n'
            f'context_window = 2048\ncontext_tokens = 300\n{extra}')


def ledger() -> list[tuple[str, str, str, int, float, str]]:
    with sqlite3.connect(paths.data_dir() / "ledger.sqlite") as db:
        return db.execute("SELECT tier, outcome, model, input_tokens, latency_ms, error FROM calls "
                          "WHERE tier != 'classifier' ORDER BY rowid").fetchall()


@pytest.fixture
def emulator() -> Iterator[GroqEmulator]:
    with GroqEmulator() as running:  # OpenAI's chat completions, under /openai/v1
        yield running


def chat_requests(emulator: GroqEmulator) -> int:
    return sum(r.method == "POST" for r in emulator.requests)


# -- item 1: the model that answered, and doctor ---------------------------------------------------------


def test_ask_records_the_model_the_server_answered_with_and_warns_once(
        sample_repo: Path, llama_server: LlamaServer) -> None:
    user_config('tiers = ["team"]\nmax_output_tokens = 16\n' + team_tier(llama_server.base_url, "qwen2.5-coder:7b"))
    done = tiercode("ask", QUESTION, "--no-cache", "--repo", str(sample_repo))
    assert done.returncode == 0, done.stderr
    served = llama_server.model_id
    warnings = [line for line in done.stderr.splitlines() if "does not list model" in line]
    assert warnings == [f"tiercode: note: team at {llama_server.base_url} does not list model 'qwen2.5-coder:7b' "
                        f"(it lists: {served}); the answer came from {served}"]
    badge = done.stderr.splitlines()[-1]
    assert badge.startswith(f"tier team · {served} · ") and "qwen2.5-coder" not in badge
    assert [(tier, outcome, model) for tier, outcome, model, *_ in ledger()] == [("team", "ok", served)]


def test_doctor_checks_every_declared_tier_and_fails_when_one_cannot_answer(
        llama_server: LlamaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEAM_KEY", raising=False)
    down = f"http://127.0.0.1:{free_port()}/v1"
    user_config('tiers = ["team", "down", "keyed"]\n' + team_tier(llama_server.base_url, "qwen2.5-coder:7b")
                + team_tier(down, name="down") + team_tier(llama_server.base_url, "auto", KEYED, "keyed"))
    result = CliRunner().invoke(doctor, ["--offline"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    start = lines.index("tiers (cascade: team → down → keyed):")
    assert lines[start + 1:] == [
        f"  team       ok          team at {llama_server.base_url} serves qwen2.5-coder:7b",
        f"             warning: team at {llama_server.base_url} does not list model 'qwen2.5-coder:7b' "
        f"(it lists: {llama_server.model_id})",
        f"  down       FAILED      down at {down} refused the connection: nothing listens there; is the server "
        "running and the port right?",
        f"  keyed      FAILED      keyed at {llama_server.base_url}: no API key; set TEAM_KEY",
    ]
    monkeypatch.setenv("TEAM_KEY", "sk-team-1234")
    user_config('tiers = ["keyed"]\n' + team_tier(llama_server.base_url, "auto", KEYED, "keyed"))
    report = json.loads(CliRunner().invoke(doctor, ["--offline", "--json"]).output)
    assert [(c["tier"], c["status"], c["warning"]) for c in report["tiers"]] == [("keyed", "ok", "")]
    assert CliRunner().invoke(doctor, ["--offline"]).exit_code == 0


# -- item 3: an unreachable free tier --------------------------------------------------------------------


def test_an_unreachable_free_tier_is_asked_once_and_the_error_leads_with_why(sample_repo: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}/v1"
    user_config('tiers = ["team"]\n' + team_tier(down).replace("context_tokens = 300", "context_tokens = 40"))
    done = tiercode("ask", QUESTION, "--no-cache", "--repo", str(sample_repo))
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith(
        f"tiercode: error: no tier could answer: team failed: team at {down} refused the connection: nothing "
        "listens there; is the server running and the port right?")
    ((tier, outcome, _, _, latency_ms, _),) = ledger()  # one attempt, not four
    assert (tier, outcome) == ("team", "error") and latency_ms > 0


# -- item 11: a misbehaving server -----------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "what"), [
    (b"data: \xff\xfe\xfd not utf-8\n\n", "the body is not UTF-8"),
    (b"data: {\"choices\": [{\"delta\": {\"content\n\n", "a data line is not JSON"),
])
def test_a_malformed_stream_fails_in_one_line_and_is_recorded(
        sample_repo: Path, emulator: GroqEmulator, raw: bytes, what: str) -> None:
    emulator.script(Garbage(raw, "Good words first, then", after=3))
    user_config('tiers = ["team"]\n' + team_tier(f"{emulator.url}/openai/v1"))
    done = tiercode("ask", QUESTION, "--no-cache", "--repo", str(sample_repo))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith(
        f"tiercode: error: no tier could answer: team failed: team at {emulator.url}/openai/v1 sent a malformed "
        f"response ({what})")
    assert done.stdout.count("Good words first,") == 1 and chat_requests(emulator) == 1
    ((tier, outcome, _, input_tokens, _, error),) = ledger()  # the server had the request: it is recorded
    assert (tier, outcome) == ("team", "error") and input_tokens > 0 and what in error


def test_a_stream_dropped_after_text_is_printed_once_and_not_retried(sample_repo: Path, emulator: GroqEmulator) -> None:
    emulator.script(Drop("The report is built by make_report from the circles", after=4))
    user_config('tiers = ["team"]\n' + team_tier(f"{emulator.url}/openai/v1"))
    done = tiercode("ask", QUESTION, "--no-cache", "--repo", str(sample_repo))
    assert done.returncode == 1
    assert done.stdout.count("The report is built") == 1 and chat_requests(emulator) == 1
    assert "stream dropped after" in done.stderr.splitlines()[-1]
    assert [outcome for _, outcome, *_ in ledger()] == ["error"]


def test_retries_are_announced_in_one_line_and_each_attempt_recorded(sample_repo: Path, emulator: GroqEmulator) -> None:
    emulator.script(*[Fail(503, retry_after=0)] * 4)
    user_config('tiers = ["team"]\n' + team_tier(f"{emulator.url}/openai/v1"))
    done = tiercode("ask", QUESTION, "--no-cache", "--repo", str(sample_repo))
    assert done.returncode == 1
    notices = [line for line in done.stderr.splitlines() if "503" in line]
    failure = f"team at {emulator.url}/openai/v1 service unavailable (503), retry after 0s"
    assert notices == [f"tiercode: team: {failure}; retrying",
                       f"tiercode: error: no tier could answer: team failed: {failure}"]
    assert [outcome for _, outcome, *_ in ledger()] == ["error"] * 4 and chat_requests(emulator) == 4
