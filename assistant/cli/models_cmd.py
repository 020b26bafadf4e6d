"""`tiercode models`: list, pull, path and rm local models."""

from __future__ import annotations

import json
from typing import Any

import click

from assistant import paths
from assistant.errors import UsageError
from models.catalog import CatalogEntry
from models.manager import ModelManager

_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _echo_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2))


def _row(entry: CatalogEntry, manager: ModelManager) -> dict[str, Any]:
    path = manager.path(entry.name)
    return {
        "name": entry.name, "roles": list(entry.roles), "source": entry.source_label, "size": entry.size,
        "sha256": entry.sha256, "installed": path is not None, "path": str(path) if path else None,
        "partial_bytes": _partial_bytes(manager, entry.name), "description": entry.description,
    }


def _partial_bytes(manager: ModelManager, name: str) -> int:
    partial = manager.partial(name)
    return partial.stat().st_size if partial.is_file() else 0


@click.group()
def models() -> None:
    """Manage local models: list, pull, path, rm."""


@models.command("list")
@_json_option
def models_list(as_json: bool) -> None:
    """List the catalog and what is installed (works offline)."""
    manager = ModelManager(paths.models_dir())
    rows = [_row(e, manager) for e in manager.catalog]
    if as_json:
        _echo_json(rows)
        return
    for row in rows:
        mark = "*" if row["installed"] else ("~" if row["partial_bytes"] else " ")
        click.echo(f"{mark} {row['name']:<20} {row['size'] / 1e6:>8.0f} MB  {','.join(row['roles']):<28} "
                   f"{row['description']}")
    click.echo("(* installed, ~ partly downloaded: `tiercode models pull NAME` resumes it)")


@models.command("pull")
@click.argument("name")
@click.option("--force", is_flag=True, help="Download again even when installed.")
@_json_option
def models_pull(name: str, force: bool, as_json: bool) -> None:
    """Download, verify (sha256) and install model NAME; an interrupted download resumes."""
    from assistant.cli.output import byte_progress

    manager = ModelManager(paths.models_dir())
    existing = manager.path(name)
    if existing and not force:
        if as_json:
            _echo_json({"name": name, "path": str(existing), "size": existing.stat().st_size, "downloaded": False})
        else:
            click.echo(f"{name} is already installed at {existing} (--force downloads it again)")
        return
    resuming = _partial_bytes(manager, name) and not force
    label = f"{'resuming' if resuming else 'pulling'} {name}"
    with byte_progress(label) as on_progress:
        path = manager.pull(name, on_progress=on_progress, force=force)
    if as_json:
        _echo_json({"name": name, "path": str(path), "size": path.stat().st_size, "downloaded": True})
    else:
        click.echo(f"{name} installed at {path}")


@models.command("path")
@click.argument("name")
@_json_option
def models_path(name: str, as_json: bool) -> None:
    """Print where model NAME is installed."""
    path = ModelManager(paths.models_dir()).path(name)
    if path is None:
        raise UsageError(f"model '{name}' is not installed; run `tiercode models pull {name}`")
    if as_json:
        _echo_json({"name": name, "path": str(path), "size": path.stat().st_size})
    else:
        click.echo(str(path))


@models.command("rm")
@click.argument("name")
@_json_option
def models_rm(name: str, as_json: bool) -> None:
    """Delete installed (or partly downloaded) model NAME."""
    if not ModelManager(paths.models_dir()).remove(name):
        raise UsageError(f"model '{name}' is not installed")
    if as_json:
        _echo_json({"name": name, "removed": True})
    else:
        click.echo(f"removed {name}")


COMMANDS = [models]
