"""`tiercode batch` through the command line, with the official SDKs against the loopback emulators: what is
answered at once, what is batched and how, status, collect at the batch price (once, however often and however
interrupted), budgets, cancel, partial failures and expiry, and reviews of the files changed in a real git
repository."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from assistant import paths
from assistant.accounting.ledger import CallRecord, open_ledger
from assistant.accounting.stats import compute_stats
from assistant.cli.main import cli
from models import pricing
from models.base import Usage, approx_tokens
from tests.conftest import git
from tests.emulators import fixtures
from tests.emulators.groq_api import GroqEmulator
from tests.emulators.server import Fail, Reply

pytestmark = pytest.mark.usefixtures("loopback_only")

LOOKUP = "where is Circle defined?"
EXPLAIN = "explain how total_area adds up the areas"
HEDGED = "explain what make_report returns"
DESIGN = ("design a plugin architecture so that new shapes, new report formats and new area units can be added "
          "across the whole codebase without editing existing modules")
DESIGN_TOO = ("design a caching layer for every area computation across the whole codebase, with invalidation when "
              "shapes change and a way to plug in other stores")


@dataclass
class Batches:
    """The emulators, the free tier's server, the repository and a questions file to run `tiercode batch` on."""

    cloud: fixtures.CloudEmulators
    free: GroqEmulator
    repo: Path
    questions: Path

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["batch", *args, "--repo", str(self.repo)])

    def submit(self, *lines: object, extra: tuple[str, ...] = ("--yes",)) -> Result:
        self.questions.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
        return self.run("submit", str(self.questions), *extra)

    def hold(self) -> None:
        self.cloud.anthropic.batches.hold = True
        self.cloud.gemini.batches.hold = True


@pytest.fixture
def batches(cloud_emulators: fixtures.CloudEmulators, sample_repo: Path, tmp_path: Path) -> Iterator[Batches]:
    """A cascade of a declared free tier (an OpenAI-compatible server), Groq, Gemini and Sonnet, the providers'
    emulators behind them."""
    with GroqEmulator() as free:
        config = paths.user_config_file()
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(f'tiers = ["free", "groq", "gemini", "sonnet"]\nmax_output_tokens = 256\n[tier.free]\n'
                          f'provider = "openai-compatible"\nbase_url = "{free.url}/openai/v1"\nmodel = "freebie"\n'
                          'free = true\nlogprobs = false\n', encoding="utf-8")
        yield Batches(cloud_emulators, free, sample_repo, tmp_path / "questions.jsonl")


def rows(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def by_id(result: Result) -> dict[str, dict[str, Any]]:
    return {row["custom_id"]: row for row in rows(result)}


def ledger() -> list[CallRecord]:
    store = open_ledger(paths.data_dir())
    try:
        return list(store.records())
    finally:
        store.close()


def batch_records() -> list[CallRecord]:
    return [r for r in ledger() if r.batch_id]


def one_line_error(result: Result, code: int, fragment: str) -> str:
    assert result.exit_code == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("tiercode: error: ") and fragment in lines[-1], result.stderr
    assert "Traceback" not in result.stderr
    return lines[-1]


def tiercode(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command line in a process of its own, in a session without a terminal (a prompt is declined)."""
    return subprocess.run([sys.executable, "-c", "from assistant.cli.main import main; main()", *args],
                          capture_output=True, text=True, env=env or dict(os.environ), timeout=300,
                          start_new_session=True)


def created(batches: Batches) -> int:
    return len(batches.cloud.anthropic.batches.all) + len(batches.cloud.gemini.batches.all)


# -- submit ----------------------------------------------------------------------------------------------


def test_submit_answers_at_once_what_it_can_and_batches_the_rest_at_its_start_tier(batches: Batches) -> None:
    batches.free.script(Reply("total_area sums shape.area() over the shapes (pkg/shapes.py:25)."),
                        Reply("I don't know."))
    done = by_id(batches.submit(LOOKUP, EXPLAIN, {"question": HEDGED, "id": "hedged"}, DESIGN))
    assert {k: (r["status"], r["tier"]) for k, r in done.items()} == {
        "line-1": ("answered", "index"), "line-2": ("answered", "free"), "hedged": ("submitted", "gemini"),
        "line-4": ("submitted", "sonnet")}
    assert "pkg/shapes.py:14" in done["line-1"]["answer"] and done["line-2"]["cost_usd"] == 0.0
    assert done["hedged"]["batch"].startswith("batches/") and done["line-4"]["batch"].startswith("msgbatch_")
    sent = batches.cloud.gemini.bodies()[0]["batch"]["inputConfig"]["requests"]["requests"]
    assert [r["metadata"]["key"] for r in sent] == ["hedged"]
    assert [b for b in batches.cloud.groq.bodies()] == []  # a paid tier that cannot batch is not called
    escalated = [r for r in ledger() if r.tier == "free" and r.escalation_reason]
    assert [r.escalation_reason for r in escalated] == ["the answer hedges or refuses"]


def test_a_batched_request_is_the_one_the_cascade_would_send_the_tier(batches: Batches) -> None:
    batches.submit(DESIGN)
    params = batches.cloud.anthropic.bodies()[0]["requests"][0]["params"]
    asked = CliRunner().invoke(cli, ["ask", DESIGN, "--tier", "sonnet", "--yes", "--no-cache", "--repo",
                                     str(batches.repo)])
    assert asked.exit_code == 0, asked.stderr
    streamed = batches.cloud.anthropic.bodies()[-1]
    assert params == {key: value for key, value in streamed.items() if key != "stream"}
    assert "Question: " + DESIGN in params["messages"][-1]["content"][0]["text"]


def test_a_malformed_line_is_a_one_line_error_naming_it_and_nothing_is_asked(batches: Batches) -> None:
    batches.questions.write_text(json.dumps(EXPLAIN) + '\n{"question": "who calls total_area?"\n' + json.dumps(DESIGN))
    done = batches.run("submit", str(batches.questions), "--yes")
    one_line_error(done, 2, "questions.jsonl line 2: not JSON")
    assert "nothing was submitted" in done.stderr and done.stdout == ""
    assert batches.free.requests == [] and created(batches) == 0
    unknown = batches.submit({"question": EXPLAIN, "file": ["pkg/shapes.py"]})
    one_line_error(unknown, 2, "line 1: unknown key 'file' (keys: question, files, id)")
    missing = batches.submit({"question": EXPLAIN, "files": ["pkg/nowhere.py"]})
    one_line_error(missing, 2, "line 1: pkg/nowhere.py is not a file in the repository")


def test_a_question_asked_before_is_answered_from_the_cache_at_once(batches: Batches) -> None:
    batches.cloud.anthropic.script(Reply("Register shape classes in a plugin registry."))
    asked = CliRunner().invoke(cli, ["ask", DESIGN, "--yes", "--repo", str(batches.repo)])  # starts at sonnet
    assert asked.exit_code == 0, asked.stderr
    done = CliRunner().invoke(cli, ["batch", "submit", "-", "--yes", "--repo", str(batches.repo)],
                              input=json.dumps(DESIGN) + "\n")
    assert [(r["status"], r["tier"], r["answer"], r["cost_usd"]) for r in rows(done)] == [
        ("answered", "sonnet", "Register shape classes in a plugin registry.", 0.0)]
    assert created(batches) == 0 and ledger()[-1].outcome == "cache_hit"


def test_offline_or_without_a_tier_that_can_batch_nothing_is_asked(batches: Batches,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    batches.questions.write_text(json.dumps(DESIGN) + "\n", encoding="utf-8")
    offline = tiercode("--offline", "batch", "submit", str(batches.questions), "--yes", "--repo", str(batches.repo))
    assert offline.returncode == 2 and offline.stderr.startswith("tiercode: error: offline, no tier can take a batch")
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.delenv("GEMINI_API_KEY")
    one_line_error(batches.submit(DESIGN), 2, "no configured tier can take a batch")
    assert created(batches) == 0 and batches.free.requests == []
    done = batches.submit(LOOKUP)  # what the index answers needs no batch tier: answered at once, as ever
    assert [(r["status"], r["tier"]) for r in rows(done)] == [("answered", "index")]


def test_a_tier_that_cannot_batch_is_refused_and_tier_chooses_the_batch_tier(batches: Batches) -> None:
    one_line_error(batches.submit(DESIGN, extra=("--tier", "groq", "--yes")), 2, "tier 'groq' cannot take a batch")
    batches.free.script(Reply("I don't know."))
    done = by_id(batches.submit(HEDGED, extra=("--tier", "sonnet", "--yes")))
    assert done["line-1"]["tier"] == "sonnet" and len(batches.cloud.anthropic.batches.all) == 1


# -- status and collect ------------------------------------------------------------------------------


def test_status_then_collect_records_each_answer_once_at_its_batch_price(batches: Batches) -> None:
    batches.hold()
    batches.free.script(Reply("I don't know."))
    batches.cloud.gemini.script(Reply("make_report returns one line per shape."))
    batches.cloud.anthropic.script(Reply("Use entry points for the plugins."))
    rows(batches.submit(HEDGED, DESIGN))
    status = json.loads(batches.run("status", "--json").stdout)["batches"]
    assert [(b["tier"], b["state"], b["counts"]["processing"], b["collected"]) for b in status] == [
        ("gemini", "in_progress", 1, 0), ("sonnet", "in_progress", 1, 0)]
    waiting = batches.run("collect")
    assert rows(waiting) == [] and "2 batch(es) still in progress" in waiting.stderr
    batches.cloud.anthropic.batches.end()
    batches.cloud.gemini.batches.end()
    collected = by_id(batches.run("collect"))
    assert {k: (r["status"], r["answer"]) for k, r in collected.items()} == {
        "line-1": ("succeeded", "make_report returns one line per shape."),
        "line-2": ("succeeded", "Use entry points for the plugins.")}
    records = batch_records()
    assert [(r.tier, r.outcome) for r in records] == [("gemini", "ok"), ("sonnet", "ok")]
    for record in records:
        usage = Usage(record.input_tokens, record.output_tokens, record.cache_read_tokens, record.cache_write_tokens)
        full = pricing.cost_usd(record.model, usage)
        assert record.cost_usd == pytest.approx(full * 0.5) and full > 0
    again = batches.run("collect")
    assert rows(again) == [] and "collected 0 result(s)" in again.stderr
    assert batch_records() == records
    stats = compute_stats(open_ledger(paths.data_dir()))
    assert stats.answered_by == {"gemini": 1, "sonnet": 1}  # the escalated question is one query, answered once
    done = json.loads(batches.run("status", "--all", "--json").stdout)["batches"]
    assert [(b["state"], b["collected"], b["counts"]["succeeded"]) for b in done] == [("ended", 1, 1)] * 2


def test_collected_answers_keep_their_thinking_apart_and_record_its_tokens(batches: Batches) -> None:
    thought = "They want the return value: one line per shape, so say that and cite the file."
    batches.hold()
    batches.free.script(Reply("I don't know."))
    batches.cloud.gemini.script(Reply("make_report returns one line per shape.", thinking=thought))
    batches.cloud.anthropic.script(Reply("Use entry points for the plugins.", thinking=thought))
    rows(batches.submit(HEDGED, DESIGN))
    batches.cloud.anthropic.batches.end()
    batches.cloud.gemini.batches.end()

    collected = by_id(batches.run("collect"))

    assert [r["answer"] for r in collected.values()] == ["make_report returns one line per shape.",
                                                          "Use entry points for the plugins."]
    records = batch_records()
    assert [r.tier for r in records] == ["gemini", "sonnet"]
    assert all(0 < r.thinking_tokens < r.output_tokens for r in records), records
    assert records[0].thinking_tokens == approx_tokens(thought)  # Gemini reports it exactly


def test_a_collected_answer_is_cached_and_the_same_question_later_needs_no_call(batches: Batches) -> None:
    batches.hold()
    batches.free.script(Reply("I don't know."))
    batches.cloud.anthropic.script(Reply("Use entry points for the plugins."))
    rows(batches.submit(DESIGN))
    batches.cloud.anthropic.batches.end()
    rows(batches.run("collect"))

    again = CliRunner().invoke(cli, ["batch", "submit", "-", "--yes", "--repo", str(batches.repo)],
                               input=json.dumps(DESIGN) + "\n")
    asked = CliRunner().invoke(cli, ["ask", DESIGN, "--yes", "--json", "--repo", str(batches.repo)])

    assert [(r["status"], r["tier"], r["answer"], r["cost_usd"]) for r in rows(again)] == [
        ("answered", "sonnet", "Use entry points for the plugins.", 0.0)]
    assert asked.exit_code == 0, asked.stderr
    answered = json.loads(asked.stdout)
    assert (answered["answer"].strip(), answered["cached"], answered["cost_usd"]) == (
        "Use entry points for the plugins.", True, 0.0)
    messages_calls = [b for b in batches.cloud.anthropic.bodies() if isinstance(b, dict) and "messages" in b]
    assert created(batches) == 1 and messages_calls == []  # the one batch; no call made at once


def test_a_collected_answer_is_judged_and_a_rejected_one_is_never_served_from_the_cache(batches: Batches) -> None:
    batches.hold()
    batches.free.script(Reply("I don't know."), Reply("I don't know."))
    batches.cloud.anthropic.script(Reply("I'm not sure; without more context I cannot answer."),
                                   Reply("Use entry points for the plugins."))
    rows(batches.submit(DESIGN))
    batches.cloud.anthropic.batches.end()

    (collected,) = rows(batches.run("collect"))
    again = rows(batches.submit(DESIGN))

    assert collected["verdict"] == "the answer hedges or refuses"
    assert [r.confidence for r in batch_records()] == [0.2]
    assert [r["status"] for r in again] == ["submitted"] and created(batches) == 2  # asked again, not the weak one


def test_an_interrupted_collect_resumes_without_recording_twice(batches: Batches) -> None:
    batches.submit(DESIGN, DESIGN_TOO, {"question": DESIGN + " and tests", "id": "third"})
    batches.cloud.anthropic.results_drop_after = 1
    cut = batches.run("collect")
    one_line_error(cut, 1, "run `tiercode batch collect` again for the rest")
    assert [json.loads(line)["custom_id"] for line in cut.stdout.splitlines()] == ["line-1"]
    assert len(batch_records()) == 1
    batches.cloud.anthropic.results_drop_after = None
    assert sorted(by_id(batches.run("collect"))) == ["line-2", "third"]
    assert sorted(r.query_id for r in batch_records()) == sorted({r.query_id for r in batch_records()})
    assert len(batch_records()) == 3 and rows(batches.run("collect")) == []


def test_a_collect_killed_between_the_ledger_and_the_store_does_not_record_again(batches: Batches) -> None:
    batches.submit(DESIGN)
    store = sqlite3.connect(paths.data_dir() / "batches.sqlite")
    batch_id, query_id = store.execute("SELECT batch_id, query_id FROM requests").fetchone()
    store.close()
    ledger_file = open_ledger(paths.data_dir())  # what a run killed right after its ledger write left
    ledger_file.record(CallRecord("earlier", query_id, "sonnet", "anthropic", "claude-sonnet-5-5", "ok",
                                  cost_usd=0.001, batch_id=batch_id))
    ledger_file.close()
    assert [r["status"] for r in rows(batches.run("collect"))] == ["succeeded"]
    assert [r.session_id for r in batch_records()] == ["earlier"]


# -- budgets ----------------------------------------------------------------------------------------------


def test_a_budget_refusal_submits_nothing(batches: Batches) -> None:
    with paths.user_config_file().open("a", encoding="utf-8") as config:
        config.write("[budget]\ndaily = 0.000001\naction = \"fail\"\n")
    done = batches.submit(LOOKUP, DESIGN)
    one_line_error(done, 3, "nothing was submitted: for the batch, the daily budget of")
    assert [json.loads(line)["tier"] for line in done.stdout.splitlines()] == ["index"]  # answered at once
    assert created(batches) == 0 and batch_records() == []
    assert "no batches waiting" in batches.run("status").stdout


def test_per_query_limits_each_question_and_earlier_batches_count_against_the_day(batches: Batches) -> None:
    with paths.user_config_file().open("a", encoding="utf-8") as config:
        config.write("[budget]\nper_query = 0.0000001\naction = \"fail\"\n")
    one_line_error(batches.submit(DESIGN), 3, "for question line-1, the per-query budget")
    config_text = paths.user_config_file().read_text(encoding="utf-8").replace("per_query = 0.0000001", "daily = 0.003")
    paths.user_config_file().write_text(config_text, encoding="utf-8")
    batches.hold()
    rows(batches.submit(DESIGN))  # up to about $0.0019: within the day's $0.003
    refused = batches.submit(DESIGN_TOO)  # alone it fits; with the first, not yet collected, it does not
    one_line_error(refused, 3, "of earlier batches not collected yet")
    assert created(batches) == 1


def test_consent_above_the_threshold_is_asked_and_declining_submits_nothing(batches: Batches) -> None:
    batches.questions.write_text(json.dumps(DESIGN) + "\n", encoding="utf-8")
    done = tiercode("batch", "submit", str(batches.questions), "--repo", str(batches.repo),
                    env=dict(os.environ, TIERCODE_CONFIRM_ABOVE_USD="0"))  # no terminal to ask on: declined
    assert done.returncode == 3 and "batch declined" in done.stderr and "pass --yes" in done.stderr, done.stderr
    assert created(batches) == 0


# -- cancel, failures, expiry -----------------------------------------------------------------------------


def test_cancel_stops_a_batch_and_its_requests_are_not_charged(batches: Batches) -> None:
    batches.hold()
    batch_id = rows(batches.submit(DESIGN, DESIGN_TOO))[0]["batch"]
    one_line_error(batches.run("cancel"), 2, "name the batches to cancel, or pass --all")
    canceled = batches.run("cancel", batch_id)
    assert canceled.exit_code == 0 and f"canceling {batch_id}" in canceled.stdout
    collected = rows(batches.run("collect", batch_id))
    assert [(r["status"], r["cost_usd"], r["answer"]) for r in collected] == [("canceled", 0.0, None)] * 2
    assert [(r.outcome, r.cost_usd) for r in batch_records()] == [("cancelled", 0.0)] * 2
    one_line_error(batches.run("collect", "msgbatch_unknown"), 2, "no batch msgbatch_unknown was submitted")


def test_partial_failures_and_expiry_are_reported_and_not_charged(batches: Batches) -> None:
    batches.cloud.gemini.batches.hold = True
    batches.cloud.anthropic.script(Reply("A registry of shape classes."), Fail(500))
    batches.free.script(Reply("I don't know."))
    rows(batches.submit(DESIGN, DESIGN_TOO, HEDGED))
    batches.cloud.gemini.batches.end(expire=True)
    collected = by_id(batches.run("collect"))
    assert {k: (r["status"], r["cost_usd"] > 0) for k, r in collected.items()} == {
        "line-1": ("succeeded", True), "line-2": ("errored", False), "line-3": ("expired", False)}
    assert "api_error" in collected["line-2"]["error"] and "expired" in collected["line-3"]["error"]
    outcomes = {(r.tier, r.outcome, r.cost_usd > 0, bool(r.error)) for r in batch_records()}
    assert outcomes == {("sonnet", "ok", True, False), ("sonnet", "error", False, True),
                        ("gemini", "error", False, True)}


# -- review ---------------------------------------------------------------------------------------------------


def test_review_changed_batches_one_review_per_changed_file_of_a_git_repo(batches: Batches, git_repo: Path) -> None:
    shapes = git_repo / "pkg" / "shapes.py"
    shapes.write_text(shapes.read_text(encoding="utf-8") + "\n\ndef perimeter(r):\n    return 2 * 3.14 * r\n",
                      encoding="utf-8")
    (git_repo / "pkg" / "units.py").write_text("def to_cm(inches):\n    return inches * 2.54\n", encoding="utf-8")
    (git_repo / "notes.txt").write_text("not code\n", encoding="utf-8")
    git(git_repo, "add", "pkg/units.py")
    done = rows(batches.run("review", "--changed", "--yes"))
    assert [(r["custom_id"], r["status"], r["tier"]) for r in done] == [
        ("review-1", "submitted", "gemini"), ("review-2", "submitted", "gemini")]
    assert [r["question"].split(":")[0] for r in done] == ["Review pkg/shapes.py", "Review pkg/units.py"]
    sent = batches.cloud.gemini.bodies()[0]["batch"]["inputConfig"]["requests"]["requests"]
    assert "def perimeter(r)" in sent[0]["request"]["contents"][-1]["parts"][0]["text"]
    git(git_repo, "commit", "-q", "-am", "more shapes")
    one_line_error(batches.run("review", "--changed", "--yes"), 2, "no changed source files to review")


def test_review_needs_files_or_changed_and_changed_needs_git(batches: Batches) -> None:
    one_line_error(batches.run("review", "--yes"), 2, "give the files to review, or --changed")
    one_line_error(batches.run("review", "--changed", "--yes"), 2, "--changed needs a git work tree")
    (batches.repo / "pkg" / "empty.py").write_text("", encoding="utf-8")  # nothing to review
    done = rows(batches.run("review", "pkg", "--yes"))
    assert sorted(r["question"].split(":")[0] for r in done) == [
        "Review pkg/__init__.py", "Review pkg/report.py", "Review pkg/shapes.py"]
