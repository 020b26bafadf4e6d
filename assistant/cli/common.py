"""Options and helpers the subcommands share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from assistant import offline
from assistant.config import Settings, load_settings

repo_option = click.option(
    "--repo", type=click.Path(path_type=Path), default=Path("."), show_default=True,
    help="Repository to work in.",
)
"""`--repo PATH`, on every command that works in a repository."""


def settings_for(repo: Path, **flags: Any) -> Settings:
    """The effective settings for a command; offline settings also close the network (loopback only)."""
    settings = load_settings(repo if repo.is_dir() else None, **flags)
    if settings.offline:
        offline.install()
    return settings


def non_empty(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A click callback that refuses an empty or blank argument (a usage error, exit 2)."""
    if not value.strip():
        raise click.BadParameter("is empty; give a name or some text", ctx=ctx, param=param)
    return value
