"""`ask --dry-run` names only the configured tiers, shows the estimate the consent prompt will show, and with
`--tier` plans that tier alone, as the same `ask` would call it."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from assistant import paths
from tests.assistant.test_ask_cli import tiercode
from tests.emulators import fixtures

QUESTION = "design a plugin architecture for the shapes package so third parties can add new shapes"


@pytest.mark.usefixtures("loopback_only")
def test_the_dry_run_names_configured_tiers_and_the_consent_prompts_estimate(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    env = dict(os.environ, TIERCODE_TIERS='["local", "sonnet"]', TIERCODE_CONFIRM_ABOVE_USD="0.0001")
    plan = tiercode("ask", "--dry-run", QUESTION, "--repo", str(sample_repo), env=env)
    planned = json.loads(tiercode("ask", "--dry-run", "--json", QUESTION, "--repo", str(sample_repo), env=env).stdout)
    assert plan.returncode == 0, plan.stderr
    assert "groq" not in plan.stdout and "gemini" not in plan.stdout
    assert {t["tier"] for t in planned["tiers"]} <= {"local", "sonnet"}
    assert planned["start_tier"] == "sonnet"  # a complex design question; never an unconfigured tier
    assert "starting at sonnet" in plan.stdout
    dry_run_estimate = re.search(r"sonnet .* up to (\$[\d.]+)", plan.stdout)
    assert dry_run_estimate is not None, plan.stdout

    asked = tiercode("ask", QUESTION, "--repo", str(sample_repo), env=env)  # no terminal: the prompt declines

    assert asked.returncode == 3
    assert f"sonnet call declined (estimated {dry_run_estimate[1]}); pass --yes" in asked.stderr
    assert cloud_emulators.anthropic.bodies() == []


@pytest.mark.usefixtures("loopback_only")
def test_the_dry_runs_json_lists_the_context_each_tier_would_get(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    env = dict(os.environ, TIERCODE_TIERS='["sonnet"]')
    planned = json.loads(tiercode("ask", "--dry-run", "--json", "explain how make_report builds the report",
                                  "--repo", str(sample_repo), env=env).stdout)
    (sonnet,) = planned["tiers"]
    spans = sonnet["context"]
    assert spans[0]["path"] == "pkg/report.py" and spans[0]["symbol"] == "make_report"
    assert spans[0]["part"] == "definition" and spans[0]["end_line"] > spans[0]["line"]
    assert set(spans[0]) == {"path", "line", "end_line", "symbol", "part", "tokens"}
    assert 0 < sum(s["tokens"] for s in spans) <= sonnet["context_tokens"]
    assert cloud_emulators.anthropic.bodies() == []  # a dry run calls no model


TEAM = ('[tier.team]\nprovider = "openai-compatible"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "team-coder"\n'
        'free = true\n')


@pytest.mark.parametrize("question", ["explain what make_report returns", "where is Circle defined?"])
def test_the_dry_run_with_a_tier_plans_that_tier_alone_as_the_real_ask_does(sample_repo: Path, question: str) -> None:
    config = paths.user_config_file()
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('tiers = ["local", "team", "sonnet"]\n' + TEAM)
    args = ("ask", "--tier", "team", "--dry-run", question, "--repo", str(sample_repo))

    plan = tiercode(*args)
    planned = json.loads(tiercode(*args, "--json").stdout)

    assert plan.returncode == 0, plan.stderr
    assert "starting at team (--tier team)" in plan.stdout  # not the router's start, nor the index
    assert "local" not in plan.stdout and "sonnet" not in plan.stdout
    assert (planned["start_tier"], planned["forced_tier"]) == ("team", "team")
    assert [(t["tier"], t["model"], t["available"]) for t in planned["tiers"]] == [("team", "team-coder", True)]
    asked = json.loads(tiercode(*[a for a in args if a != "--dry-run"], "--json").stdout)
    assert asked["error"].startswith("no tier could answer: team failed: team at http://127.0.0.1:9/v1")


def test_a_plan_no_tier_can_answer_says_so_instead_of_starting_at_none(sample_repo: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["TIERCODE_TIERS"] = '["sonnet"]'
    question = "why does Circle.area raise a TypeError?"

    plan = tiercode("ask", "-n", "--dry-run", question, "--repo", str(sample_repo), env=env)
    planned = json.loads(tiercode("ask", "-n", "--dry-run", "--json", question, "--repo", str(sample_repo),
                                  env=env).stdout)

    assert plan.returncode == 0, plan.stderr
    assert "but no tier can answer it" in plan.stdout and "starting at" not in plan.stdout
    assert "sonnet  unavailable: Anthropic: no API key" in plan.stdout
    assert planned["start_tier"] == "none"
