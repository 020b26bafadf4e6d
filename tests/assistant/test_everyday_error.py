"""The everyday question: a pasted error reaches localization, and a debug question is answered with the
tiers there are (issue 20)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant import paths
from tests.assistant.test_ask_cli import tiercode
from tests.emulators import fixtures
from tests.emulators.fixtures import KEYS
from tests.emulators.groq_api import GroqEmulator

RECONCILE = '''"""Reconciling stock counts against the ledger."""

from inventory.ledger import Ledger


def reconcile_counts(ledger: Ledger, counted: dict[str, int]) -> dict[str, int]:
    """The difference between what was counted and what the ledger holds, per item."""
    differences = {}
    for item, count in counted.items():
        differences[item] = count - ledger.balance(item)
    return differences
'''

LEDGER = '''"""The stock ledger: receipts and issues per item."""


class Ledger:
    """Movements of stock, item by item."""

    def __init__(self) -> None:
        self.movements: dict[str, list[int]] = {}

    def receive(self, item: str, quantity: int) -> None:
        """Record goods received."""
        self.movements.setdefault(item, []).append(quantity)

    def balance(self, item: str) -> int:
        """What the ledger says is in stock."""
        return sum(self.movements[item])
'''

DECOYS = '''"""Crash reports: how the tool explains and fixes its own failures."""


def fix_crash_report(report: str) -> str:
    """Fix a crash report so it can be read: why it crashed and how to fix it."""
    return report.strip()


def explain_why_it_crashes(report: str) -> str:
    """Why does this crash? Explain how to fix the crash from the report."""
    return "crash: " + report


def how_do_i_fix_this(problem: str) -> str:
    """How do I fix this problem? Why does this fail?"""
    return problem
'''

cloud_emulators = fixtures.cloud_emulators
loopback_only = fixtures.loopback_only

QUESTION = "why does this crash and how do I fix it?"


def inventory_repo(root: Path) -> Path:
    """A small package whose reconcile step crashes on an item the ledger never saw, with decoys named after
    the words of the typed question."""
    package = root / "inventory"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""Stock counting."""\n')
    (package / "reconcile.py").write_text(RECONCILE)
    (package / "ledger.py").write_text(LEDGER)
    (package / "crash_reports.py").write_text(DECOYS)
    return root


def real_traceback(repo: Path) -> str:
    """The traceback Python prints for the crash, made by running the package."""
    script = ("from inventory.ledger import Ledger\nfrom inventory.reconcile import reconcile_counts\n"
              "ledger = Ledger()\nledger.receive('bolts', 10)\nreconcile_counts(ledger, {'bolts': 9, 'nuts': 4})\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "KeyError: 'nuts'" in done.stderr
    return done.stderr


@pytest.mark.usefixtures("cloud_emulators", "loopback_only")
def test_a_piped_traceback_chooses_the_context(tmp_path: Path) -> None:
    repo = inventory_repo(tmp_path / "repo")
    report = real_traceback(repo)
    env = dict(os.environ, TIERCODE_TIERS='["sonnet"]')

    done = tiercode("ask", "--dry-run", "--json", QUESTION, "--repo", str(repo), stdin=report, env=env)

    assert done.returncode == 0, done.stderr
    (sonnet,) = json.loads(done.stdout)["tiers"]
    whole = [span for span in sonnet["context"] if span["part"] == "definition"]
    balance = next(n for n, line in enumerate(LEDGER.splitlines(), start=1) if "def balance(" in line)
    frame = next(at for at, span in enumerate(whole) if span["path"] == "inventory/ledger.py")
    assert whole[frame]["line"] <= balance <= whole[frame]["end_line"]  # the innermost frame's function,
    assert whole[frame]["symbol"] in ("Ledger.balance", "Ledger")       # sent whole (or its class, holding it)
    assert frame < len(whole) // 2 + 1
    assert ("inventory/reconcile.py", "reconcile_counts") in [(span["path"], span["symbol"]) for span in whole]


@pytest.mark.usefixtures("cloud_emulators", "loopback_only")
def test_typed_words_alone_would_choose_the_decoys(tmp_path: Path) -> None:
    """The control: without the traceback the question's words lead to the decoys, so the test above
    measures what the piped text adds."""
    repo = inventory_repo(tmp_path / "repo")
    env = dict(os.environ, TIERCODE_TIERS='["sonnet"]')

    done = tiercode("ask", "-n", "--dry-run", "--json", QUESTION, "--repo", str(repo), env=env)

    (sonnet,) = json.loads(done.stdout)["tiers"]
    first = sonnet["context"][0]
    assert first["path"] == "inventory/crash_reports.py"


DEBUG_QUESTION = "fix the crash: reconcile_counts raises KeyError when an item was never received"


@pytest.mark.usefixtures("installed_model")
def test_a_debug_question_with_no_keys_is_answered_by_the_local_model(tmp_path: Path) -> None:
    repo = inventory_repo(tmp_path / "repo")
    env = dict(os.environ, TIERCODE_MAX_OUTPUT_TOKENS="24")

    done = tiercode("ask", "-n", "--json", DEBUG_QUESTION, "--repo", str(repo), env=env)

    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["tier"] == "local" and answer["kind"] == "debug"
    assert answer["fallback_from"] in {"groq", "gemini", "sonnet"}
    assert any("a stronger tier would have been used" in note for note in answer["notes"])
    keys = "no API key for Groq, Gemini, Anthropic; set GROQ_API_KEY, GEMINI_API_KEY, ANTHROPIC_API_KEY"
    assert [note for note in answer["notes"] if "API key" in note] == [keys]  # one note, not one a tier
    text = tiercode("ask", "-n", DEBUG_QUESTION, "--repo", str(repo), env=env)
    assert text.returncode == 0
    assert f"below {answer['fallback_from']} (unavailable)" in text.stderr.splitlines()[-1]
    assert [line for line in text.stderr.splitlines() if "API key" in line] == [f"tiercode: note: {keys}"]
    planned = json.loads(tiercode("ask", "-n", "--dry-run", "--json", DEBUG_QUESTION, "--repo", str(repo)).stdout)
    assert (planned["start_tier"], planned["fallback_from"]) == ("local", answer["fallback_from"])  # as ask did


def declare_team_tier(emulator: GroqEmulator) -> None:
    """A free OpenAI-compatible tier on loopback (the Groq emulator stands in for a team's server), and only
    a keyless Sonnet above it."""
    path = paths.user_config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('tiers = ["local", "team", "sonnet"]\n[tier.team]\nprovider = "openai-compatible"\n'
                    f'base_url = "{emulator.url}/openai/v1"\nmodel = "team-model"\nfree = true\n'
                    'api_key_env = "TEAM_KEY"\nlogprobs = false\n', encoding="utf-8")


def test_a_declared_free_tier_answers_below_a_keyless_sonnet(tmp_path: Path) -> None:
    repo = inventory_repo(tmp_path / "repo")
    with GroqEmulator(api_key=KEYS["groq"]) as emulator:
        declare_team_tier(emulator)
        env = dict(os.environ, TEAM_KEY=KEYS["groq"], TIERCODE_MAX_OUTPUT_TOKENS="64")
        done = tiercode("ask", "-n", "--json", DEBUG_QUESTION, "--repo", str(repo), env=env)
        requests = len([r for r in emulator.requests if r.method == "POST"])  # a free tier also lists models

    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["tier"] == "team" and answer["fallback_from"] == "sonnet"
    assert requests == 1


def test_no_tier_at_all_is_exit_1_whatever_the_configuration(tmp_path: Path) -> None:
    repo = inventory_repo(tmp_path / "repo")
    for tiers in ('["sonnet"]', '["local", "groq", "gemini", "sonnet"]', '["groq"]'):
        done = tiercode("ask", "-n", DEBUG_QUESTION, "--repo", str(repo), env=dict(os.environ, TIERCODE_TIERS=tiers))
        assert done.returncode == 1, (tiers, done.stderr)
        assert "no tier could answer" in done.stderr and "Traceback" not in done.stderr
    forced = tiercode("ask", "-n", "--tier", "sonnet", DEBUG_QUESTION, "--repo", str(repo))
    assert forced.returncode == 2  # a tier the user named and cannot have is a configuration error
