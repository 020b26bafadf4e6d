"""`ask --json` prints exactly one JSON object on stdout for every outcome, through the real console script:
answered (`error` null), no tier could answer (exit 1), stopped by a budget before any answer (exit 3) and
a usage or input error, found by the command line's parser or after it (exit 2); the one-line error still goes
to stderr. A cached answer
carries the confidence it was judged by."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.assistant.test_ask_cli import JSON_KEYS, tiercode
from tests.emulators import fixtures

QUESTION = "explain what make_report returns"


def failed_json(stdout: str, code: int, returncode: int, stderr: str) -> dict[str, object]:
    """The one JSON object of a failed `ask --json`, checked against the exit code and stderr."""
    assert returncode == code, stderr
    failure = json.loads(stdout)  # the whole of stdout is one JSON document
    assert set(failure) == JSON_KEYS
    assert failure["answer"] is None and failure["tier"] is None and failure["model"] is None
    assert stderr.strip().splitlines()[-1] == f"tiercode: error: {failure['error']}"
    assert "Traceback" not in stderr
    return failure


def test_an_answer_has_a_null_error(sample_repo: Path) -> None:
    done = tiercode("ask", "--offline", "--json", "where is Circle defined?", "--repo", str(sample_repo))
    assert done.returncode == 0
    assert json.loads(done.stdout)["error"] is None


@pytest.mark.parametrize(("args", "fragment"), [
    (("--max-cost", "lots", QUESTION), "'lots' is not a valid float"),
    (("--bogus", QUESTION), "No such option '--bogus'"),
    ((), "Missing argument"),
])
def test_a_command_line_click_refuses_is_one_object_with_the_error_and_exit_2(
    sample_repo: Path, args: tuple[str, ...], fragment: str
) -> None:
    done = tiercode("ask", "--json", *args, "--repo", str(sample_repo))
    failure = failed_json(done.stdout, 2, done.returncode, done.stderr)  # a script reading stdout gets the error
    assert fragment in str(failure["error"])


def test_no_tier_could_answer_is_one_object_with_the_error_and_exit_1(sample_repo: Path) -> None:
    env = dict(os.environ, TIERCODE_TIERS='["local", "groq"]')  # no model installed, no Groq key
    done = tiercode("ask", "--json", QUESTION, "--repo", str(sample_repo), env=env)
    failure = failed_json(done.stdout, 1, done.returncode, done.stderr)
    assert str(failure["error"]).startswith("no tier could answer: ")
    assert "GROQ_API_KEY" in str(failure["error"])


@pytest.mark.usefixtures("loopback_only")
def test_a_budget_stop_before_any_answer_is_one_object_with_the_error_and_exit_3(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    env = dict(os.environ, TIERCODE_TIERS='["sonnet"]', TIERCODE_CONFIRM_ABOVE_USD="0.0001")
    done = tiercode("ask", "--json", QUESTION, "--repo", str(sample_repo), env=env)  # no terminal: declined
    failure = failed_json(done.stdout, 3, done.returncode, done.stderr)
    assert str(failure["error"]).startswith("sonnet call declined")
    assert failure["budget_stop"] == failure["error"]
    assert cloud_emulators.anthropic.bodies() == []


@pytest.mark.parametrize(("args", "fragment"), [
    (("--tier", "nosuch"), "tier 'nosuch' is not available here"),
    (("--repo", "/nonexistent/repo"), "does not exist"),
    (("--diff",), "--diff needs a git repository"),
])
def test_a_usage_error_after_parsing_is_one_object_with_the_error_and_exit_2(
    sample_repo: Path, args: tuple[str, ...], fragment: str
) -> None:
    done = tiercode("ask", "--json", "--offline", "--repo", str(sample_repo), *args, QUESTION, cwd=sample_repo)
    failure = failed_json(done.stdout, 2, done.returncode, done.stderr)
    assert fragment in str(failure["error"])



@pytest.mark.usefixtures("loopback_only")
def test_a_cached_answer_carries_the_confidence_it_was_judged_by(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    env = dict(os.environ, TIERCODE_TIERS='["groq"]')
    first, again = (json.loads(tiercode("ask", "--json", QUESTION, "--repo", str(sample_repo), env=env).stdout)
                    for _ in range(2))
    assert (first["cached"], again["cached"]) == (False, True)
    assert first["confidence"] is not None and again["confidence"] == first["confidence"]
    assert len(cloud_emulators.groq.bodies()) == 1
