"""The command line: parse, build settings, call the pipeline or the TUI. Nothing else lives here."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from assistant import __version__, paths
from assistant.config import load_settings
from assistant.errors import TiercodeError, UsageError
from assistant.output import ConsoleReporter, print_metadata
from models.base import Cancelled, ModelUnavailable
from models.manager import ModelManager, PullError

_EXIT_INTERRUPTED = 130


class TiercodeGroup(click.Group):
    """A group whose errors are one line on stderr with the exit codes of design.md."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
            sys.exit(2)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx else "tiercode"
            _fail(f"{exc.format_message()} (see '{command} --help')", 2)
        except click.Abort:
            _fail("interrupted", _EXIT_INTERRUPTED)
        except TiercodeError as exc:
            _fail(str(exc), exc.exit_code)
        except ModelUnavailable as exc:
            _fail(str(exc), 2)
        except PullError as exc:
            _fail(str(exc), 2)
        except KeyboardInterrupt:
            _fail("interrupted", _EXIT_INTERRUPTED)
        sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    click.echo(f"tiercode: error: {message}", err=True)
    sys.exit(code)


_repo_option = click.option(
    "--repo", type=click.Path(path_type=Path), default=Path("."), show_default=True,
    help="Repository to work in.",
)


@click.group(cls=TiercodeGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@_repo_option
@click.option("--offline", is_flag=True, default=None, help="No network: the index and local models answer.")
@click.version_option(__version__, prog_name="tiercode")
@click.pass_context
def cli(ctx: click.Context, repo: Path, offline: bool | None) -> None:
    """Tiercode: a local-first coding assistant that answers at the lowest cost that still gives a good
    answer. Run without a command to open the terminal UI in the repository."""
    if ctx.invoked_subcommand is None:
        from assistant.tui.app import run_tui

        run_tui(repo, load_settings(repo, offline=offline))


@cli.command()
@click.argument("question", nargs=-1, required=True)
@_repo_option
@click.option("--offline", is_flag=True, default=None, help="No network: only the index and local models answer.")
@click.option("--tier", type=click.Choice(["local", "groq", "gemini", "sonnet"]), help="Ask this tier only.")
@click.option("--max-cost", type=click.FloatRange(min=0), help="Most this question may cost, in US dollars.")
@click.option("--yes", "-y", is_flag=True, help="Accept escalation and budget prompts without asking.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object and nothing else on stdout.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the response caches.")
@click.option("--dry-run", is_flag=True, help="Print the route and estimated cost per tier; call no model.")
def ask(
    question: tuple[str, ...], repo: Path, offline: bool | None, tier: str | None, max_cost: float | None,
    yes: bool, as_json: bool, no_cache: bool, dry_run: bool,
) -> None:
    """Answer QUESTION about the repository. Piped stdin is added as context
    (e.g. `git diff | tiercode ask "review this"`)."""
    from assistant.pipeline import Pipeline
    from assistant.session import Session

    text = " ".join(question)
    extra = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    flags: dict[str, Any] = {"offline": offline}
    settings = load_settings(repo, **flags)
    if max_cost is not None:
        settings.budget.per_query = max_cost
        settings.budget.action = "fail"
    reporter = ConsoleReporter(stream=not as_json and not dry_run, assume_yes=yes)
    session = Session(repo, settings, reporter)
    try:
        pipeline = Pipeline(session)
        if dry_run:
            plan = pipeline.plan(text, extra)
            click.echo(json.dumps(plan.to_json(), indent=2) if as_json else reporter.format_plan(plan))
            return
        try:
            answer = pipeline.ask(text, extra=extra, tier=tier, assume_yes=yes)
        except Cancelled:
            raise click.Abort() from None
        if as_json:
            click.echo(json.dumps(answer.to_json()))
        else:
            reporter.finish()
            print_metadata(answer)
    finally:
        session.close()


@cli.group()
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


@cli.command()
@_repo_option
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


@cli.command()
@click.argument("name")
@_repo_option
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


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="tiercode")
