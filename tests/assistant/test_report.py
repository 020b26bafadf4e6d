"""`tiercode report`: the ledger and imported usage logs (Claude Code transcripts, a Console export) as spend
by token category, day, tier, kind and model, cost drivers, recommendations and the routing estimate."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest

from assistant import paths
from assistant.accounting.ledger import CallRecord, open_ledger
from models import pricing
from models.base import Usage
from tests.assistant.test_ask_cli import assert_one_line_error, tiercode
from tests.emulators import fixtures

SONNET_45 = "claude-sonnet-4-5-20250929"
DESIGN = "design a plugin architecture for the shapes package so third parties can add new shapes"


def user_line(uuid: str, ts: str, content: Any, **extra: Any) -> dict[str, Any]:
    """A Claude Code user line: a prompt (a string or text blocks) or a tool result."""
    return {"parentUuid": None, "isSidechain": False, "userType": "external", "cwd": "/work/shop",
            "sessionId": "s-1", "version": "2.0.14", "type": "user", "uuid": uuid, "timestamp": ts,
            "message": {"role": "user", "content": content}, **extra}


def assistant_line(msg: str, req: str, ts: str, usage: dict[str, Any], model: str = SONNET_45) -> dict[str, Any]:
    """A Claude Code assistant line as it writes one per content block of a streamed message."""
    return {"parentUuid": "u", "isSidechain": False, "userType": "external", "cwd": "/work/shop", "sessionId": "s-1",
            "version": "2.0.14", "type": "assistant", "uuid": f"{msg}-{req}-{usage.get('output_tokens')}",
            "timestamp": ts, "requestId": req,
            "message": {"id": msg, "type": "message", "role": "assistant", "model": model,
                        "content": [{"type": "text", "text": "Looking at the code."}], "stop_reason": None,
                        "usage": usage}}


def usage(i: int, o: int, write: int = 0, read: int = 0, hour: int = 0) -> dict[str, Any]:
    """Anthropic's usage object as Claude Code records it (cache writes split by lifetime)."""
    return {"input_tokens": i, "output_tokens": o, "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": write - hour, "ephemeral_1h_input_tokens": hour},
            "service_tier": "standard"}


def write_jsonl(path: Path, lines: list[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))


def transcripts(root: Path) -> Path:
    """A projects folder: one session with a streamed message written three times, a tool result, a malformed
    line, a synthetic message, and a subagent's file below the session."""
    project = root / "-work-shop"
    write_jsonl(project / "s-1.jsonl", [
        {"type": "summary", "summary": "Shapes", "leafUuid": "x"},
        user_line("u1", "2026-11-30T12:00:00.000Z", "where is Circle defined?"),
        assistant_line("msg_1", "req_1", "2026-11-30T12:00:02.000Z", usage(3, 1, 20_000, 0)),
        assistant_line("msg_1", "req_1", "2026-11-30T12:00:03.000Z", usage(3, 1, 20_000, 0)),
        assistant_line("msg_1", "req_1", "2026-11-30T12:00:04.000Z", usage(3, 260, 20_000, 0)),
        user_line("u2", "2026-11-30T12:00:05.000Z", [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]),
        assistant_line("msg_2", "req_2", "2026-11-30T12:00:06.000Z", usage(5, 120, 1_000, 20_000)),
        "{\"type\": \"assistant\", \"message\": ",
        user_line("u3", "2026-12-01T12:00:00.000Z", [{"type": "text", "text": DESIGN}]),
        assistant_line("msg_3", "req_3", "2026-12-01T12:00:30.000Z", usage(7, 900, 4_000, 21_000, hour=4_000)),
        assistant_line("msg_4", "req_4", "2026-12-01T12:00:40.000Z", usage(0, 0), model="<synthetic>"),
        user_line("u4", "2026-12-01T12:01:00.000Z", "<command-name>/clear</command-name>"),
        user_line("u5", "2026-12-01T12:01:01.000Z", "Caveat: the messages below were generated", isMeta=True),
    ])
    write_jsonl(project / "s-1" / "subagents" / "agent-a1.jsonl", [
        user_line("a1", "2026-12-01T12:00:10.000Z", "Search the repo for shape classes", isSidechain=True),
        assistant_line("msg_5", "req_5", "2026-12-01T12:00:20.000Z", usage(2, 50, 0, 9_000)),
    ])
    return root


def report_json(*args: str) -> dict[str, Any]:
    done = tiercode("report", "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def cost(model: str, day: str, tokens: dict[str, int]) -> float:
    rates = pricing.price(model).rates_on(dt.date.fromisoformat(day))
    return sum(n * getattr(rates, name) for name, n in tokens.items()) / 1_000_000


def test_claude_code_transcripts_count_each_message_once_with_exact_totals(tmp_path: Path) -> None:
    report = report_json("--from", f"claude-code:{transcripts(tmp_path / 'projects')}", "--route-limit", "0")

    tokens = {"input": 3 + 5 + 7 + 2, "output": 260 + 120 + 900 + 50, "cache_read": 20_000 + 21_000 + 9_000,
              "cache_write_5m": 20_000 + 1_000, "cache_write_1h": 4_000}
    assert report["totals"]["tokens"] == tokens  # the streamed message once, with its finished output
    assert report["totals"]["calls"] == 4
    assert report["reading"] | {"skipped_examples": []} == {
        "files": 2, "lines": 15, "records": 4, "prompts": 2, "duplicates": 2, "skipped": 1, "skipped_examples": []}
    assert report["reading"]["skipped_examples"][0].startswith("-work-shop/s-1.jsonl:8: not JSON")
    first = cost("claude-sonnet-4-5", "2026-11-30", {"input": 8, "output": 380, "cache_read": 20_000,
                                                     "cache_write_5m": 21_000})
    second = cost("claude-sonnet-4-5", "2026-12-01", {"input": 9, "output": 950, "cache_read": 30_000,
                                                      "cache_write_1h": 4_000})
    assert report["totals"]["cost_usd"] == pytest.approx(first + second, abs=1e-6)
    assert report["by"]["day"]["2026-11-30"]["cost_usd"] == pytest.approx(first, abs=1e-6)
    assert list(report["by"]["model"]) == [SONNET_45]
    assert report["unpriced_models"] == []


def test_since_leaves_out_earlier_calls_and_prompts(tmp_path: Path) -> None:
    report = report_json("--from", f"claude-code:{transcripts(tmp_path / 'p')}", "--since", "2026-12-01",
                         "--route-limit", "0")
    assert report["totals"]["calls"] == 2 and report["reading"]["prompts"] == 1
    assert list(report["by"]["day"]) == ["2026-12-01"]


def test_an_unknown_model_is_counted_and_listed_never_priced(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "p" / "x" / "s.jsonl", [
        assistant_line("m1", "r1", "2026-11-30T12:00:00Z", usage(10, 20), model="claude-mystery-9-20261101"),
        assistant_line("m2", "r2", "2026-11-30T12:00:01Z", usage(10, 20), model="claude-opus-4-1-20250805"),
    ])
    report = report_json("--from", f"claude-code:{tmp_path / 'p'}", "--route-limit", "0")

    mystery = report["by"]["model"]["claude-mystery-9-20261101"]
    assert mystery["tokens"]["output"] == 20 and mystery["unpriced_calls"] == 1 and mystery["cost_usd"] == 0
    assert report["unpriced_models"] == ["claude-mystery-9-20261101"]
    opus = cost("claude-opus-4-1", "2026-11-30", {"input": 10, "output": 20})  # a dated id: its undated price
    assert report["totals"]["cost_usd"] == pytest.approx(opus, abs=1e-9)


def test_recommendations_rest_on_figures_in_the_report(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "p" / "x" / "s.jsonl", [
        assistant_line(f"m{n}", f"r{n}", f"2026-11-30T12:00:{n:02d}Z", usage(10, 500, 30_000, 5_000),
                       model="claude-opus-4-1-20250805") for n in range(3)])
    report = report_json("--from", f"claude-code:{tmp_path / 'p'}", "--route-limit", "0")
    found = {r["id"]: r for r in report["recommendations"]}
    totals = report["totals"]

    writes = found["cache-writes"]["figures"]
    assert writes["cache_write_tokens"] == totals["tokens"]["cache_write_5m"] + totals["tokens"]["cache_write_1h"]
    assert writes["cache_write_usd"] == pytest.approx(totals["usd"]["cache_write_5m"] + totals["usd"]["cache_write_1h"])
    assert found["cache-writes"]["saving_usd"] == pytest.approx(
        writes["assumed_writes_turned_to_reads"] * (writes["cache_write_usd"] - writes["same_tokens_as_reads_usd"]))
    move = found["model:claude-opus-4-1"]
    target = pricing.default_model("sonnet")
    on_target = cost(target, "2026-11-30", {"input": 30, "output": 1_500, "cache_read": 15_000,
                                            "cache_write_5m": 90_000})
    assert move["figures"]["target_model"] == target
    assert move["figures"]["same_tokens_on_target_usd"] == pytest.approx(on_target, abs=1e-6)
    assert move["saving_usd"] == pytest.approx(totals["cost_usd"] - on_target, abs=1e-6)
    assert [r["saving_usd"] for r in report["recommendations"]] == sorted(
        (r["saving_usd"] for r in report["recommendations"]), reverse=True)


@pytest.mark.usefixtures("loopback_only")
def test_prompts_are_routed_as_the_dry_run_routes_them_with_no_model_call(
    tmp_path: Path, sample_repo: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    folder = transcripts(tmp_path / "projects")
    report = report_json("--from", f"claude-code:{folder}", "--repo", str(sample_repo))
    routing = report["routing"]
    plan = json.loads(tiercode("ask", "--dry-run", "--json", DESIGN, "--repo", str(sample_repo)).stdout)
    design_cost = next(t["estimated_cost_usd"] for t in plan["tiers"] if t["tier"] == plan["start_tier"])

    assert (routing["prompts"], routing["routed"], routing["sampled"]) == (2, 2, False)  # text, not tool results
    assert routing["start_tiers"] == {"index": 1, plan["start_tier"]: 1}
    assert routing["tiercode_max_usd"] == pytest.approx(design_cost, abs=1e-6)
    assert routing["free_start_prompts"] == 1  # "where is Circle defined?": the index
    assert set(report["by"]["kind"]) == {"lookup", plan["kind"], "(none)"}  # the subagent's call: no prompt's
    assert routing["imported_usd"] == pytest.approx(report["totals"]["cost_usd"] - _subagent_cost(), abs=1e-6)
    assert cloud_emulators.anthropic.bodies() == cloud_emulators.groq.bodies() == []
    assert cloud_emulators.gemini.bodies() == []


def _subagent_cost() -> float:
    """The subagent's call: its file holds no prompt of the user's, so it is no prompt's cost."""
    return cost("claude-sonnet-4-5", "2026-12-01", {"input": 2, "output": 50, "cache_read": 9_000})


def test_a_long_history_is_routed_as_an_even_sample(tmp_path: Path, sample_repo: Path) -> None:
    write_jsonl(tmp_path / "p" / "x" / "s.jsonl", [
        user_line(f"u{n}", f"2026-11-30T12:00:{n:02d}Z", f"where is Circle defined? ({n})") for n in range(5)])
    routing = report_json("--from", f"claude-code:{tmp_path / 'p'}", "--route-limit", "2",
                          "--repo", str(sample_repo))["routing"]
    assert (routing["prompts"], routing["routed"], routing["sampled"], routing["scale"]) == (5, 2, True, 2.5)
    done = tiercode("report", "--from", f"claude-code:{tmp_path / 'p'}", "--route-limit", "2",
                    "--repo", str(sample_repo))
    assert "an even sample of the 5" in done.stdout


def test_offline_routes_with_the_tiers_on_this_machine(tmp_path: Path, sample_repo: Path,
                                                       cloud_emulators: fixtures.CloudEmulators) -> None:
    write_jsonl(tmp_path / "p" / "x" / "s.jsonl", [user_line("u1", "2026-11-30T12:00:00Z", DESIGN)])
    online = report_json("--from", f"claude-code:{tmp_path / 'p'}", "--repo", str(sample_repo))["routing"]
    offline = json.loads(tiercode("--offline", "report", "--json", "--from", f"claude-code:{tmp_path / 'p'}",
                                  "--repo", str(sample_repo)).stdout)["routing"]
    assert online["start_tiers"] == {"sonnet": 1}
    assert offline["start_tiers"] == {"none": 1} and offline["unanswerable"] == 1  # no local model installed here


CONSOLE_HEADER = ("usage_date_utc,model_version,api_key,workspace,usage_type,context_window,"
                  "usage_input_tokens_no_cache,usage_input_tokens_cache_write_5m,usage_input_tokens_cache_write_1h,usage_input_tokens_cache_read,"
                  "usage_output_tokens,web_search_count,inference_geo,speed")


def test_a_console_export_is_read_by_its_columns_batch_rows_discounted(tmp_path: Path) -> None:
    export = tmp_path / "usage.csv"
    export.write_text("\n".join([
        CONSOLE_HEADER,
        "2026-11-29,claude-sonnet-4-5-20250929,ci-key,Default,standard,≤ 200k,1000,2000,0,30000,400,0,not_available,",
        "2026-11-29,claude-sonnet-4-5-20250929,ci-key,Default,batch,≤ 200k,1000,0,0,0,400,0,not_available,",
        "2026-11-30,claude-haiku-4-5-20251001,dev-key,Tools,standard,≤ 200k,500,,,,100,0,not_available,",
        "2026-11-30,claude-haiku-4-5-20251001,dev-key,Tools,standard,≤ 200k,lots,0,0,0,1,0,not_available,",
        "",
    ]) + "\n", encoding="utf-8")
    report = report_json("--from", f"anthropic-csv:{export}")

    assert report["totals"]["tokens"] == {"input": 2_500, "output": 900, "cache_read": 30_000, "cache_write_5m": 2_000,
                                          "cache_write_1h": 0}
    assert (report["reading"]["skipped"], report["reading"]["records"]) == (1, 3)
    assert "usage.csv:5: usage_input_tokens_no_cache 'lots'" in report["reading"]["skipped_examples"][0]
    sonnet = cost("claude-sonnet-4-5", "2026-11-29", {"input": 1000, "output": 400, "cache_read": 30_000,
                                                      "cache_write_5m": 2000})
    batch = cost("claude-sonnet-4-5", "2026-11-29", {"input": 1000, "output": 400}) * 0.5
    assert report["by"]["day"]["2026-11-29"]["cost_usd"] == pytest.approx(sonnet + batch, abs=1e-6)
    assert report["routing"]["routed"] == 0 and "no user prompts" in report["routing"]["note"]


def test_the_ledger_report_counts_calls_as_stats_does(tmp_path: Path) -> None:
    ledger = open_ledger(paths.data_dir())
    sonnet = pricing.default_model("sonnet")
    paid = pricing.cost_usd(sonnet, _usage(1_000, 300, 0, 2_000))
    ledger.record(CallRecord("s", "q1", "sonnet", "anthropic", sonnet, "ok", kind="design", input_tokens=1_000,
                             output_tokens=300, cache_write_tokens=2_000, cost_usd=paid))
    ledger.record(CallRecord("s", "q2", "sonnet", "cache", sonnet, "cache_hit", kind="design", input_tokens=1_000,
                             output_tokens=300, cached=True))
    ledger.record(CallRecord("s", "q3", "local", "local", "smollm2", "ok", kind="explain", input_tokens=400,
                             output_tokens=90))
    ledger.record(CallRecord("s", "q4", "index", "index", "index", "ok", kind="lookup", counterfactual_usd=0.01))
    ledger.close()

    report = report_json()
    stats = json.loads(tiercode("stats", "--json").stdout)

    assert report["totals"]["tokens"] == {"input": 1_400, "output": 390, "cache_read": 0, "cache_write_5m": 2_000,
                                          "cache_write_1h": 0}  # a cache hit used none of the saved call's tokens
    assert report["totals"]["cost_usd"] == pytest.approx(paid, abs=1e-6)
    assert set(report["by"]["tier"]) == {"sonnet", "local", "index"}
    assert report["by"]["kind"]["design"]["calls"] == 2
    assert report["ledger_savings"] == {"queries": stats["queries"], "counterfactual_usd": stats["counterfactual_usd"],
                                        "savings_usd": stats["savings_usd"]}
    assert report["routing"] is None


def test_a_batch_call_in_the_ledger_is_split_by_category_at_the_batch_rates(tmp_path: Path) -> None:
    ledger = open_ledger(paths.data_dir())
    sonnet = pricing.default_model("sonnet")
    batch_cost = pricing.cost_usd(sonnet, _usage(1_000, 300, 0, 0)) * pricing.price(sonnet).batch_factor
    ledger.record(CallRecord("s", "q1", "sonnet", "anthropic", sonnet, "ok", kind="design", input_tokens=1_000,
                             output_tokens=300, cost_usd=batch_cost, batch_id="msgbatch_01"))
    ledger.close()

    sonnet_row = report_json()["by"]["tier"]["sonnet"]

    assert sonnet_row["cost_usd"] == pytest.approx(batch_cost, abs=1e-6)
    assert sum(sonnet_row["usd"].values()) == pytest.approx(batch_cost, abs=1e-6)  # not at the full rates


def _usage(i: int, o: int, read: int, write: int) -> Usage:
    return Usage(input_tokens=i, output_tokens=o, cache_read_tokens=read, cache_write_5m_tokens=write)


def test_markdown_and_html_show_the_same_sections(tmp_path: Path) -> None:
    folder = transcripts(tmp_path / "projects")
    markdown = tiercode("report", "--from", f"claude-code:{folder}", "--route-limit", "0")
    out = tmp_path / "report.html"
    written = tiercode("report", "--from", f"claude-code:{folder}", "--route-limit", "0", "--html", str(out))

    assert markdown.returncode == 0 and written.returncode == 0, markdown.stderr + written.stderr
    assert markdown.stdout.startswith("# Tiercode usage report\n")
    assert written.stdout.strip() == str(out)
    page = out.read_text(encoding="utf-8")
    for title in ("Spend by token category", "Recommendations", "Top cost drivers", "Routed by Tiercode", "By day",
                  "By model"):
        assert f"## {title}" in markdown.stdout
        assert f"<h2>{title}</h2>" in page
    assert 'class="bar"' in page and "<script" not in page and "http" not in page.replace("<!DOCTYPE html>", "")
    assert "where is Circle defined?" in page  # the dearest prompt among the drivers


@pytest.mark.parametrize(("args", "fragment"), [
    (("--from", "cursor"), "--from 'cursor' is not a usage source"),
    (("--from", "anthropic-csv"), "needs the export's path"),
    (("--from", "anthropic-csv:{tmp}/missing.csv"), "no usage export at"),
    (("--from", "claude-code:{tmp}/nowhere"), "no Claude Code transcripts folder at"),
    (("--from", "anthropic-csv:{tmp}/other.csv"), "is not an Anthropic Console usage export"),
    (("--json", "--html", "{tmp}/r.html"), "choose one of --json and --html"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], fragment: str) -> None:
    (tmp_path / "other.csv").write_text("date,cost\n2026-11-30,1.0\n")
    done = tiercode("report", *(a.format(tmp=tmp_path) for a in args), env=dict(os.environ))
    assert_one_line_error(done, 2, fragment)


def test_an_empty_claude_code_folder_says_no_transcript_was_found(tmp_path: Path) -> None:
    (tmp_path / "projects").mkdir()
    report = report_json("--from", f"claude-code:{tmp_path / 'projects'}")

    assert report["routing"]["note"] == (f"No Claude Code transcript with a prompt was found in {tmp_path / 'projects'}"
                                         ": nothing to route.")  # not the Console export's "token counts only"
