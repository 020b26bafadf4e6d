"""`ask_cheap` over MCP: the index, the free local model (SmolLM2 GGUF), and a paid tier (the loopback
emulators count every request) only when the server was started with --allow-paid and a per-call budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant import paths
from assistant.accounting.ledger import DELIVERED, open_ledger
from tests.emulators.fixtures import CloudEmulators
from tests.emulators.server import Reply
from tests.mcp.conftest import ServerClient, run_tiercode, text_of

GOOD = "`Circle.area` returns pi times the radius squared (python/shapes.py:40)."


def _records() -> list:
    ledger = open_ledger(paths.data_dir())
    try:
        return list(ledger.records())
    finally:
        ledger.close()


async def test_ask_cheap_answers_with_the_index_and_the_local_model_never_a_paid_tier(
    langs_repo: Path, mcp_client: ServerClient, installed_model: Path, cloud_emulators: CloudEmulators,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIERCODE_TIERS", '["local", "groq", "gemini", "sonnet"]')
    monkeypatch.setenv("TIERCODE_MAX_OUTPUT_TOKENS", "48")
    monkeypatch.setenv("TIERCODE_CONTEXT__LOCAL", "400")
    monkeypatch.setenv("TIERCODE_LOCAL__THREADS", "1")  # two cores shared: fewer threads contend less
    monkeypatch.setenv("TIERCODE_LOCAL__MIN_CONFIDENCE", "0.99")  # the local answer is weak: the cascade would go on
    async with mcp_client(langs_repo) as client:
        lookup = await client.call_tool("ask_cheap", {"question": "where is Circle defined?"})
        local = await client.call_tool("ask_cheap", {"question": "explain what Circle.area computes"})
    assert not lookup.is_error and "python/shapes.py:34" in text_of(lookup) and "(tier index · $0" in text_of(lookup)
    assert not local.is_error, text_of(local)
    assert "(tier local · " in text_of(local) and "index updated" in text_of(local)
    emulators = (cloud_emulators.groq, cloud_emulators.gemini, cloud_emulators.anthropic)
    assert [e.bodies() for e in emulators] == [[], [], []]

    records = _records()
    delivered = [r for r in records if r.outcome == DELIVERED]
    assert [(r.tool, r.tier, r.cost_usd) for r in delivered] == [("ask_cheap", "index", 0.0),
                                                                  ("ask_cheap", "local", 0.0)]
    assert all(r.returned_tokens > 0 for r in delivered)
    asked = {r.query_id for r in delivered}
    assert {r.tier for r in records if r.query_id in asked and r.outcome != DELIVERED} == {"index", "local"}
    assert all(r.cost_usd == 0 for r in records)


async def test_a_paid_tier_answers_only_when_the_server_allows_it_within_a_budget(
    langs_repo: Path, mcp_client: ServerClient, cloud_emulators: CloudEmulators, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIERCODE_TIERS", '["groq", "sonnet"]')
    question = {"question": "explain what Circle.area computes"}
    async with mcp_client(langs_repo) as client:
        refused = await client.call_tool("ask_cheap", question)
        still = await client.call_tool("find_definition", {"name": "Circle"})
    assert refused.is_error and "no tier could answer" in text_of(refused)
    assert "--allow-paid --max-cost USD" in text_of(refused)
    assert not still.is_error
    assert cloud_emulators.groq.bodies() == [] and cloud_emulators.anthropic.bodies() == []

    cloud_emulators.groq.script(Reply(GOOD))
    async with mcp_client(langs_repo, "--allow-paid", "--max-cost", "0.05") as client:
        paid = await client.call_tool("ask_cheap", question)
    assert not paid.is_error, text_of(paid)
    assert GOOD in text_of(paid) and "(tier groq · " in text_of(paid)
    assert len(cloud_emulators.groq.bodies()) == 1 and cloud_emulators.anthropic.bodies() == []
    groq = [r for r in _records() if r.tier == "groq"]
    assert [r.outcome for r in groq] == ["ok", DELIVERED] and groq[0].cost_usd > 0 and groq[1].cost_usd == 0
    assert groq[0].query_id == groq[1].query_id and groq[1].tool == "ask_cheap"


def test_allow_paid_needs_a_per_call_budget(langs_repo: Path) -> None:
    for flags in (["--allow-paid"], ["--max-cost", "0.05"]):
        done = run_tiercode("mcp", "--repo", str(langs_repo), *flags)
        assert done.returncode == 2
        assert done.stderr.strip() == ("tiercode: error: --allow-paid and --max-cost go together: a paid tier only"
                                       " within a per-call budget")
