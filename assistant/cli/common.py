"""Options and helpers the subcommands share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from assistant import offline
from assistant.config import REPO_CONFIG_NAME, Settings, load_settings


def find_repo_root(start: Path) -> Path:
    """The repository `start` is in: the nearest folder at or above it that holds `.git` (a work tree, a
    linked worktree or a submodule) or `.tiercode.toml`; `start` itself when there is none. The home folder
    is never taken for a repository unless Tiercode is run there (a dotfiles repository in $HOME)."""
    start = start.resolve()
    home = Path.home().resolve()
    for folder in (start, *start.parents):
        if folder == home and folder != start:
            break
        if (folder / ".git").exists() or (folder / REPO_CONFIG_NAME).is_file():
            return folder
    return start


repo_option = click.option(
    "--repo", type=click.Path(path_type=Path), default=lambda: find_repo_root(Path.cwd()),
    help="Repository to work in (default: the git work tree, or the folder with a .tiercode.toml, that holds"
         " the current folder; else the current folder).",
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
