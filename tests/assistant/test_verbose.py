"""Say what happened: `ask -v` times each stage, the metadata line shows cached input apart, and `tiercode
config` shows a base URL that comes from a cloud SDK's own environment variable."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from assistant.answer import Answer, metadata_line
from models.base import Usage
from tests.assistant.test_ask_cli import tiercode
from tests.emulators import fixtures


@pytest.mark.usefixtures("loopback_only")
def test_verbose_prints_each_stage_of_the_question_on_stderr(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    env = dict(os.environ, TIERCODE_TIERS='["groq"]')
    done = tiercode("ask", "-v", "explain what make_report returns", "--repo", str(sample_repo), env=env)
    assert done.returncode == 0, done.stderr
    timing = [line for line in done.stderr.splitlines() if line.startswith("tiercode: timing: ")]
    assert len(timing) == 1, done.stderr
    parts = timing[0].removeprefix("tiercode: timing: ").split(" · ")
    stages = [re.sub(r" \d+ ms( \(.*\))?$", "", part) for part in parts]  # a call's phases in parentheses
    for stage in ("start-up", "index", "route", "context", "groq call", "judge", "ledger", "total"):
        assert stage in stages, timing[0]
    quiet = tiercode("ask", "explain what make_report returns", "--repo", str(sample_repo), env=env)
    assert "timing" not in quiet.stderr


def test_the_metadata_line_shows_cache_read_tokens_apart() -> None:
    answer = Answer("…", "sonnet", "claude-sonnet-5-5", "explain", "medium",
                    usage=Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=2000))
    assert "1000 + 2000 cached→200 tokens" in metadata_line(answer)
    assert "1000→200 tokens" in metadata_line(Answer("…", "groq", "m", "explain", "simple",
                                                     usage=Usage(input_tokens=1000, output_tokens=200)))


@pytest.mark.parametrize(("variable", "key"), [("ANTHROPIC_BASE_URL", "sonnet_base_url"),
                                               ("GROQ_BASE_URL", "groq_base_url"),
                                               ("GOOGLE_GEMINI_BASE_URL", "gemini_base_url")])
def test_config_shows_a_base_url_the_sdk_reads_from_its_environment_variable(variable: str, key: str) -> None:
    env = dict(os.environ, **{variable: "http://127.0.0.1:8999/gateway"})
    rows = {r["key"]: r for r in json.loads(tiercode("config", "--json", env=env).stdout)}
    assert rows[key]["value"] == "http://127.0.0.1:8999/gateway"
    assert variable in rows[key]["source"]
