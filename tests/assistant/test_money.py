"""Dollar amounts at the precision they need, the same way in every place that shows one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.accounting.money import usd
from assistant.cli.main import cli
from tests.assistant.test_ask_cli import tiercode
from tests.emulators import fixtures

QUESTION = "explain what make_report returns"


@pytest.mark.parametrize(("amount", "shown"), [
    (0.0, "$0.00"), (2.0, "$2.00"), (2.5, "$2.50"), (12.3456, "$12.35"), (0.001, "$0.001"), (0.015, "$0.015"),
    (0.0115, "$0.0115"), (0.0163, "$0.0163"), (0.000581, "$0.000581"), (0.04, "$0.04"), (-0.05, "-$0.05"),
])
def test_an_amount_keeps_the_digits_it_needs_and_at_least_the_cents(amount: float, shown: str) -> None:
    assert usd(amount) == shown


def test_budget_show_prints_a_limit_as_it_was_set() -> None:
    assert CliRunner().invoke(cli, ["budget", "set", "--daily", "0.015", "--per-query", "0.001"]).exit_code == 0
    shown = CliRunner().invoke(cli, ["budget", "show"]).output.splitlines()
    assert "per-query  $0.001" in shown
    assert "daily      $0.015   (spent $0.00)" in shown


@pytest.mark.usefixtures("loopback_only")
@pytest.mark.parametrize(("limit", "shown"), [("0.001", "$0.001"), ("0.015", "$0.015")])
def test_a_refused_call_names_the_limit_as_it_was_set(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators, limit: str, shown: str
) -> None:
    assert tiercode("budget", "set", "--per-query", limit, "--action", "fail").returncode == 0
    every_kind = {kind: 8000 for kind in ("lookup", "explain", "generate", "edit", "debug", "review", "design")}
    env = dict(os.environ, TIERCODE_TIERS='["sonnet"]', TIERCODE_MAX_OUTPUT_TOKENS="8000",
               TIERCODE_ANSWERS__MAX_TOKENS=json.dumps(every_kind))  # a long answer's estimate passes the limit
    done = tiercode("ask", QUESTION, "--repo", str(sample_repo), env=env)
    assert done.returncode == 3, done.stderr
    assert f"the per-query budget of {shown} would be exceeded (spent $0.00, this call up to $0.0" in done.stderr
    assert cloud_emulators.anthropic.bodies() == []
