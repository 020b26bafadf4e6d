"""`tiercode mcp`: serve the repository's index and free tiers to other coding agents over MCP."""

from __future__ import annotations

from pathlib import Path

import click

from assistant.cli.common import repo_option, settings_for
from assistant.errors import UsageError


@click.command("mcp")
@repo_option
@click.option("--http", "http_port", type=click.IntRange(0, 65535), metavar="PORT",
              help="Serve streamable HTTP on 127.0.0.1:PORT/mcp instead of stdio (0: any free port).")
@click.option("--allow-paid", is_flag=True, help="Let ask_cheap use paid tiers too (needs --max-cost).")
@click.option("--max-cost", type=click.FloatRange(min=0), metavar="USD",
              help="With --allow-paid: the most one ask_cheap call may cost, in US dollars.")
@click.option("--offline", is_flag=True, default=None, help="No network: only the index and local models answer.")
def mcp(repo: Path, http_port: int | None, allow_paid: bool, max_cost: float | None, offline: bool | None) -> None:
    """Serve the repository as an MCP server (stdio by default) until the client leaves or SIGINT/SIGTERM."""
    if allow_paid != (max_cost is not None):
        raise UsageError("--allow-paid and --max-cost go together: a paid tier only within a per-call budget")
    from assistant.live_index import LiveIndex
    from assistant.mcp.calls import ToolCalls
    from assistant.mcp.server import StderrReporter, build_server, interrupt_on_sigterm, run
    from assistant.mcp.tools import RepoTools, agent_tokens, cheap_settings
    from assistant.session import Session

    def notify(message: str) -> None:
        click.echo(f"tiercode mcp: {message}", err=True)

    interrupt_on_sigterm()
    settings = cheap_settings(settings_for(repo, offline=offline), max_cost)
    session = Session(repo, settings, StderrReporter(notify))
    live = LiveIndex(session, on_notice=notify)
    try:
        live.start_watching(new_vectors=False)  # embeddings follow once the repository has been embedded
        tools = RepoTools(session, agent_tokens(session), allow_paid)
        stopped_by = run(build_server(ToolCalls(tools, live)), http_port, notify)
        notify(f"stopped ({stopped_by})" if stopped_by else "client closed stdin; stopped")
    finally:
        live.close()
        session.close()


COMMANDS = [mcp]
