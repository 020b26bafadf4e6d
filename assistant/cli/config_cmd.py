"""`tiercode config`: the effective configuration and where each value came from."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from assistant import paths
from assistant.cli.common import repo_option
from assistant.config import REPO_CONFIG_NAME, explain_settings, load_settings
from assistant.context.instructions import load_instructions, outside_links
from models.base import approx_tokens


@click.command("config")
@repo_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--docs", is_flag=True, help="Show what each setting means.")
def config(repo: Path, as_json: bool, docs: bool) -> None:
    """Show the effective configuration and the source of each value."""
    rows = explain_settings(repo.resolve() if repo.is_dir() else None)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], indent=2))
        return
    click.echo(_file_line("user file", paths.user_config_file()))
    click.echo(_file_line("repo file", repo.resolve() / REPO_CONFIG_NAME))
    click.echo(f"# instructions: {_instructions_line(repo)}")
    width = max(len(r.key) for r in rows)
    for row in rows:
        click.echo(f"{row.key:<{width}}  {row.value:<28} {row.source}")
        if docs and row.doc:
            click.echo(f"{'':<{width}}  # {row.doc}")


def _instructions_line(repo: Path) -> str:
    """Which instructions file the models get, and its size, in the counting `tiercode` uses without a model."""
    settings = load_settings(repo.resolve() if repo.is_dir() else None)
    found = load_instructions(repo, settings.instructions_files, settings.instructions_tokens, approx_tokens)
    linked = outside_links(repo, settings.instructions_files)
    skipped = f"; not read, linking out of the repository: {', '.join(linked)}" if linked else ""
    return (found.describe() if found else f"none (looked for {', '.join(settings.instructions_files)})") + skipped


def _file_line(label: str, path: Path) -> str:
    """`# user file: PATH` for a file that is read; for one that does not exist, where it would be."""
    return f"# {label}: {path}" if path.is_file() else f"# {label}: none (it would be {path})"


COMMANDS = [config]
