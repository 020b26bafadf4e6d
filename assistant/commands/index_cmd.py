"""`tiercode index`, `find`: the code index from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from assistant.commands.common import repo_option
from assistant.config import load_settings
from assistant.output import ConsoleReporter


@click.command()
@repo_option
@click.option("--rebuild", is_flag=True, help="Throw the index away and build it again.")
def index(repo: Path, rebuild: bool) -> None:
    """Build or update the repository's index."""
    import shutil

    from assistant.session import Session

    settings = load_settings(repo)
    session = Session(repo, settings, ConsoleReporter(stream=False))
    try:
        if rebuild:
            shutil.rmtree(session.index_path.parent, ignore_errors=True)
        session.store()
        report = session.last_build
        counts = session.store().counts()
        if report is not None:
            click.echo(f"indexed {counts['files']} files, {counts['symbols']} symbols "
                       f"({report.parsed} parsed, {report.unchanged} unchanged, {report.removed} removed, "
                       f"{len(report.skipped)} skipped) in {report.seconds:.2f}s")
    finally:
        session.close()


@click.command()
@click.argument("name")
@repo_option
@click.option("--refs", is_flag=True, help="List references instead of definitions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def find(name: str, repo: Path, refs: bool, as_json: bool) -> None:
    """Find where NAME is defined (or, with --refs, used)."""
    from dataclasses import asdict

    from assistant.session import Session

    session = Session(repo, load_settings(repo), ConsoleReporter(stream=False))
    try:
        store = session.store()
        if refs:
            usages = store.usages(name)
            rows: list[dict[str, Any]] = [asdict(u) for u in usages]
            lines = [f"{u.path}:{u.line}  {u.enclosing or '<module>'}" for u in usages]
        else:
            symbols = store.definitions(name)
            rows = [{"name": s.name, "qualified_name": s.qualified_name, "kind": s.kind, "path": s.path,
                     "line": s.line, "end_line": s.end_line} for s in symbols]
            lines = [f"{s.path}:{s.line}  {s.kind} {s.qualified_name}  {s.signature}" for s in symbols]
        click.echo(json.dumps(rows, indent=2) if as_json else "\n".join(lines) or f"no match for {name}")
    finally:
        session.close()


COMMANDS = [index, find]
