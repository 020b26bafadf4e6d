"""`tiercode models`: list, pull, path and rm local models."""

from __future__ import annotations

import json

import click

from assistant import paths
from assistant.errors import UsageError
from models.manager import ModelManager


@click.group()
def models() -> None:
    """Manage local models: list, pull, path, rm."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models_list(as_json: bool) -> None:
    """List the catalog and what is installed."""
    manager = ModelManager(paths.models_dir())
    installed = {m.entry.name: m.path for m in manager.installed()}
    rows = [
        {"name": e.name, "roles": list(e.roles), "size": e.size, "installed": e.name in installed,
         "path": str(installed.get(e.name, "")), "description": e.description}
        for e in manager.catalog
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        mark = "*" if row["installed"] else " "
        click.echo(f"{mark} {row['name']:<20} {row['size'] / 1e6:>8.0f} MB  {','.join(row['roles']):<28} "
                   f"{row['description']}")


@models.command("pull")
@click.argument("name")
@click.option("--force", is_flag=True, help="Download again even when installed.")
def models_pull(name: str, force: bool) -> None:
    """Download, verify and install model NAME."""
    from assistant.output import byte_progress

    manager = ModelManager(paths.models_dir())
    existing = manager.path(name)
    if existing and not force:
        click.echo(f"{name} is already installed at {existing}")
        return
    with byte_progress(f"pulling {name}") as on_progress:
        path = manager.pull(name, on_progress=on_progress, force=force)
    click.echo(f"{name} installed at {path}")


@models.command("path")
@click.argument("name")
def models_path(name: str) -> None:
    """Print where model NAME is installed."""
    path = ModelManager(paths.models_dir()).path(name)
    if path is None:
        raise UsageError(f"model '{name}' is not installed; run `tiercode models pull {name}`")
    click.echo(str(path))


@models.command("rm")
@click.argument("name")
def models_rm(name: str) -> None:
    """Delete installed model NAME."""
    if not ModelManager(paths.models_dir()).remove(name):
        raise UsageError(f"model '{name}' is not installed")
    click.echo(f"removed {name}")
