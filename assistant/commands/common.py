"""Options and helpers the subcommands share."""

from __future__ import annotations

from pathlib import Path

import click

repo_option = click.option(
    "--repo", type=click.Path(path_type=Path), default=Path("."), show_default=True,
    help="Repository to work in.",
)
"""`--repo PATH`, on every command that works in a repository."""
