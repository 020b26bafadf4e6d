"""Where a model call's time went, and whether its answer was cut: `ask -v` splits each call into the phases
its backend timed (model load, prompt evaluation, first token, decoding), and an answer stopped at the token
limit says so on the metadata line and in `--json`, for every backend that reports a finish reason: the
quick-start model in-process and behind llama.cpp's own server, and the cloud SDKs against the emulators."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.assistant.test_ask_cli import tiercode
from tests.assistant.test_tier_config import user_config
from tests.emulators import fixtures
from tests.emulators.server import Emulator, Reply
from tests.models import llama_server as llama_server_module
from tests.models.llama_server import LlamaServer

cloud_emulators = fixtures.cloud_emulators
loopback_only = fixtures.loopback_only
llama_server = llama_server_module.llama_server

QUESTION = "explain what make_report returns"
CUT = ("cut off at the token limit of a simple explain answer ([answers] max_tokens.explain, "
       "within max_output_tokens)")  # the question's kind names the setting to raise
LOCAL_PHASES = re.compile(r"local call \d+ ms \(prompt \d+ ms for \d+ tokens, first token \d+ ms, "
                          r"decode 16 tokens at [\d.]+ tokens/s\)")


def stage(done: subprocess.CompletedProcess[str], name: str) -> str:
    """The part of `ask -v`'s timing line for stage `name` (`local call`, `groq call`, …)."""
    (timing,) = [line for line in done.stderr.splitlines() if line.startswith("tiercode: timing: ")]
    (part,) = [part for part in timing.split(" · ") if re.match(rf"{name} \d+ ms", part)]
    return part


def test_a_local_answer_shows_load_prompt_first_token_and_decode_and_says_it_was_cut(
    sample_repo: Path, installed_model: Path,
) -> None:
    env = dict(os.environ, TIERCODE_MAX_OUTPUT_TOKENS="16")
    done = tiercode("ask", "--offline", "--no-cache", "-v", QUESTION, "--repo", str(sample_repo), env=env)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"local model load \d+ ms", stage(done, "local model load")), done.stderr
    assert LOCAL_PHASES.fullmatch(stage(done, "local call")), done.stderr
    metadata = [line for line in done.stderr.splitlines() if line.startswith("tier local · ")]
    assert len(metadata) == 1 and CUT in metadata[0], done.stderr
    as_json = tiercode("ask", "--offline", "--no-cache", "--json", QUESTION, "--repo", str(sample_repo), env=env)
    answer = json.loads(as_json.stdout)
    assert (answer["tier"], answer["usage"]["output_tokens"], answer["finish_reason"]) == ("local", 16, "length")


def test_an_answer_that_ends_by_itself_is_not_called_cut(sample_repo: Path, installed_model: Path) -> None:
    env = dict(os.environ, TIERCODE_MAX_OUTPUT_TOKENS="400")
    done = tiercode("ask", "--offline", "--json", "Answer with the single word yes.", "--repo", str(sample_repo),
                    env=env)
    answer = json.loads(done.stdout)
    assert answer["finish_reason"] == "stop" and answer["usage"]["output_tokens"] < 400


@pytest.mark.usefixtures("loopback_only")
@pytest.mark.parametrize("tier", ["groq", "gemini", "sonnet"])
def test_a_cloud_answer_cut_at_the_limit_says_so_and_shows_first_token_and_decode(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators, tier: str,
) -> None:
    emulator: Emulator = {"groq": cloud_emulators.groq, "gemini": cloud_emulators.gemini,
                          "sonnet": cloud_emulators.anthropic}[tier]
    emulator.script(Reply("`make_report` returns one line: the number of circles and", finish="length"))
    env = dict(os.environ, TIERCODE_TIERS=f'["{tier}"]')
    done = tiercode("ask", "--json", "-v", QUESTION, "--repo", str(sample_repo), env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["finish_reason"] == "length"
    assert re.fullmatch(rf"{tier} call \d+ ms \(first token \d+ ms, decode \d+ tokens at [\d.]+ tokens/s\)",
                        stage(done, f"{tier} call")), done.stderr


def test_an_answer_from_a_served_model_cut_at_the_limit_says_so(sample_repo: Path, llama_server: LlamaServer) -> None:
    user_config(f'tiers = ["served"]\nmax_output_tokens = 16\n[tier.served]\nprovider = "openai-compatible"\n'
                f'base_url = "{llama_server.base_url}"\nmodel = "auto"\nfree = true\ncontext_window = 2048\n'
                'context_tokens = 600\n')
    done = tiercode("ask", "--offline", "--no-cache", "-v", QUESTION, "--repo", str(sample_repo))
    assert done.returncode == 0, done.stderr
    assert CUT in done.stderr
    assert re.fullmatch(r"served call \d+ ms \(first token \d+ ms, decode 16 tokens at [\d.]+ tokens/s\)",
                        stage(done, "served call")), done.stderr


def test_a_terminal_shows_what_the_answer_waits_for_and_keeps_no_trace_of_it(
    sample_repo: Path, installed_model: Path,
) -> None:
    """stderr on a real pseudo-terminal: a spinner names the tier, model and prompt size until the first
    token; stdout (a pipe) gets the answer alone."""
    primary, secondary = os.openpty()
    seen = bytearray()

    def read() -> None:
        with contextlib.suppress(OSError):
            while chunk := os.read(primary, 4096):
                seen.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", TIERCODE_MAX_OUTPUT_TOKENS="16")
    command = [sys.executable, "-c", "from assistant.cli.main import main; main()", "ask", "--offline",
               "--no-cache", QUESTION, "--repo", str(sample_repo)]
    done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=secondary, env=env,
                          timeout=300, text=True)
    os.close(secondary)
    reader.join(timeout=30)
    os.close(primary)

    shown = seen.decode(errors="replace")
    assert done.returncode == 0, shown
    assert re.search(r"local · smollm2: reading \d[\d,]* tokens", shown), shown
    assert "reading" not in done.stdout and done.stdout.strip()
    assert "tier local · smollm2" in shown  # the metadata line comes after the spinner is gone
