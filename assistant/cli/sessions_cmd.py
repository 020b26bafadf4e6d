"""`tiercode sessions`: this repository's saved conversations, the most recent first, and how to resume them."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from pathlib import Path

import click

from assistant import paths
from assistant.cli.common import repo_option
from assistant.context.saved_conversations import open_conversations
from assistant.session import check_repo

_SHOWN_ID = 8
"""Characters of an id shown (and enough to resume with `tiercode --resume`)."""


@click.command("sessions")
@repo_option
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many to list.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
def sessions(repo: Path, limit: int, as_json: bool) -> None:
    """List this repository's conversations: TUI ones (resume with `tiercode -c` or `tiercode --resume ID`) and
    one-shot `ask` ones (follow up with `tiercode ask --continue`)."""
    root = check_repo(repo)
    store = open_conversations(paths.data_dir(), lambda notice: click.echo(f"tiercode: {notice}", err=True))
    try:
        rows = store.listing(root, limit)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([asdict(row) for row in rows], indent=2))
        return
    if not rows:
        click.echo(f"no saved conversations for {root} yet")
        return
    click.echo(f"{'ID':<{_SHOWN_ID}}  {'FACE':<4}  {'TURNS':>5}  {'LAST USED':<16}  FIRST QUESTION")
    for row in rows:
        used = dt.datetime.fromtimestamp(row.updated).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{row.id[:_SHOWN_ID]:<{_SHOWN_ID}}  {row.face:<4}  {row.turns:>5}  {used:<16}  {row.title}")
    click.echo("resume: tiercode -c (the last TUI conversation), tiercode --resume ID; tiercode ask --continue "
               "follows up on the last ask", err=True)


COMMANDS = [sessions]
