"""`tiercode mcp` over stdio, driven by the official MCP client: every tool on a repository in several
languages, bad input as MCP error results, the ledger and `tiercode stats`, and a live index."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from assistant import paths
from assistant.accounting.ledger import open_ledger
from tests.mcp.conftest import READ_TIMEOUT, ServerClient, run_tiercode, text_of

INDEX_TOOLS = ("find_definition", "find_references", "outline", "grep", "search", "repo_map")


async def test_every_tool_answers_from_the_index_in_several_languages(
    langs_repo: Path, mcp_client: ServerClient
) -> None:
    async with mcp_client(langs_repo) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(listed) == {*INDEX_TOOLS, "ask_cheap"}
        for tool in listed.values():
            assert tool.description and tool.input_schema["type"] == "object"
            assert all(p.get("description") for p in tool.input_schema["properties"].values()), tool.name
        assert listed["find_definition"].input_schema["required"] == ["name"]

        calls = {
            ("find_definition", "NewServer"): "go/server.go:19",
            ("find_definition", "Store.new"): "rust/lib.rs:19",
            ("find_definition", "Account"): "java/com/example/Account.java:6",
            ("find_references", "helper"): "python/shapes.py:15 in decorated_top",
            ("outline", "typescript/service.ts"): "lookup(id: Id): string",
            ("grep", "HashMap::new"): "rust/lib.rs:20 in Store.new",
            ("search", "area of a circle"): "python/shapes.py:40  Circle.area",
        }
        for (tool, value), expected in calls.items():
            argument = {"find_definition": "name", "find_references": "name", "outline": "path", "grep": "text",
                        "search": "query"}[tool]
            result = await client.call_tool(tool, {argument: value})
            assert not result.is_error, text_of(result)
            assert expected in text_of(result), (tool, text_of(result))
            assert re.search(r"index updated \d+ s ago, at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", text_of(result))

        small = text_of(await client.call_tool("repo_map", {"tokens": 64}))
        large = text_of(await client.call_tool("repo_map", {"tokens": 2048, "query": "Server Start"}))
        assert small.count("│") < large.count("│") and "go/server.go:" in large


async def test_bad_input_is_an_error_result_and_the_server_goes_on(langs_repo: Path, mcp_client: ServerClient) -> None:
    async with mcp_client(langs_repo) as client:
        bad = [
            ("find_definition", {"name": "NoSuchThing"}, "No definition of NoSuchThing"),
            ("find_definition", {"name": "Servr"}, "Did you mean: Server"),
            ("find_references", {"name": "NoSuchThing"}, "No definition of NoSuchThing"),
            ("outline", {"path": "no/such/file.py"}, "no file 'no/such/file.py' in the index"),
            ("find_references", {"name": "helper", "path": "nowhere.py"}, "no file 'nowhere.py'"),
            ("find_definition", {}, "name"),  # the schema's required argument is missing
            ("find_definition", {"name": ""}, "name"),
            ("find_definition", {"name": "   "}, "name is blank"),
            ("find_definition", {"name": 42}, "name"),
            ("grep", {"text": "x", "limit": 0}, "limit"),
            ("repo_map", {"tokens": "many"}, "tokens"),
            ("no_such_tool", {}, "no_such_tool"),
        ]
        for tool, arguments, says in bad:
            result = await client.call_tool(tool, arguments)
            assert result.is_error, (tool, arguments, text_of(result))
            assert says in text_of(result), (tool, arguments, text_of(result))
            assert "Traceback" not in text_of(result)
        still = await client.call_tool("find_definition", {"name": "Service"})
        assert not still.is_error and "typescript/service.ts:17" in text_of(still)


async def test_every_call_is_a_ledger_record_and_stats_shows_the_tokens_returned(
    langs_repo: Path, mcp_client: ServerClient
) -> None:
    async with mcp_client(langs_repo) as client:
        answers = [text_of(await client.call_tool("find_definition", {"name": "Circle"})),
                   text_of(await client.call_tool("outline", {"path": "shapes.py"})),
                   text_of(await client.call_tool("grep", {"text": "return"}))]
        await client.call_tool("find_definition", {"name": "Nope"})
        await client.call_tool("grep", {"text": "x", "limit": "many"})  # refused by the schema: recorded too
    ledger = open_ledger(paths.data_dir())
    records = list(ledger.records())
    ledger.close()
    assert [(r.tool, r.tier, r.provider, r.outcome, r.cost_usd) for r in records] == [
        ("find_definition", "index", "index", "ok", 0.0), ("outline", "index", "index", "ok", 0.0),
        ("grep", "index", "index", "ok", 0.0), ("find_definition", "index", "index", "error", 0.0),
        ("grep", "index", "index", "error", 0.0)]
    assert all(r.returned_tokens > 0 for r in records)
    assert records[2].returned_tokens > records[0].returned_tokens  # more text, more tokens
    assert len({r.query_id for r in records}) == 5 and len({r.session_id for r in records}) == 1
    assert "No definition of Nope" in records[3].error and answers[0].startswith("Circle is defined at")
    assert "limit" in records[4].error

    done = run_tiercode("stats", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["tool_calls"] == {"find_definition": 2, "grep": 2, "outline": 1}
    assert report["returned_tokens"] == sum(r.returned_tokens for r in records)
    assert report["cost_usd"] == 0 and report["answered_by"]["index"] == 3
    text = run_tiercode("stats").stdout
    assert f"Agent tools (MCP): 5 calls (find_definition 2, grep 2, outline 1), {report['returned_tokens']:,} tokens" \
           " returned to the agent, $0.00 spent" in text
    by_tool = json.loads(run_tiercode("stats", "--json", "--by", "tool").stdout)["groups"]
    assert by_tool["grep"]["returned_tokens"] == records[2].returned_tokens + records[4].returned_tokens


@pytest.mark.timeout(READ_TIMEOUT)
async def test_the_index_stays_live_while_serving(langs_repo: Path, mcp_client: ServerClient) -> None:
    shapes = langs_repo / "python" / "shapes.py"
    async with mcp_client(langs_repo) as client:
        before = text_of(await client.call_tool("find_definition", {"name": "Circle"}))
        assert "python/shapes.py:34" in before
        shapes.write_text("# one\n# two\n# three\n" + shapes.read_text())
        (langs_repo / "python" / "fresh.py").write_text("def fresh_function():\n    return 1\n")
        after = before
        while "python/shapes.py:37" not in after:  # the watcher's update, waited for; the hang guard is the marker's
            await asyncio.sleep(0.05)
            after = text_of(await client.call_tool("find_definition", {"name": "Circle"}))
        assert "python/shapes.py:37" in after and "python/shapes.py:34" not in after
        fresh = await client.call_tool("find_definition", {"name": "fresh_function"})
        outline = text_of(await client.call_tool("outline", {"path": "python/shapes.py"}))
    assert not fresh.is_error and "python/fresh.py:1" in text_of(fresh)
    assert "  37: class Circle(Shape)" in outline
