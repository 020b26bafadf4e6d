"""`tiercode report`: a usage analysis of the ledger or an imported log, as Markdown, JSON or HTML."""

from __future__ import annotations

import json
from pathlib import Path

import click

from assistant.cli.common import repo_option, settings_for
from assistant.cli.stats_cmd import SinceType
from assistant.errors import TiercodeError, UsageError
from assistant.report import claude_code
from assistant.report.analysis import analyse, prompt_spend
from assistant.report.html import to_html
from assistant.report.markdown import to_markdown
from assistant.report.routing import RoutingEstimate, dry_run_planner, route_prompts
from assistant.report.sources import LEDGER, SOURCES, Source, load, parse_source
from assistant.report.usage import Imported

DEFAULT_ROUTE_LIMIT = 200


@click.command("report")
@click.option("--from", "source_spec", default=LEDGER, show_default=True, metavar="SOURCE",
              help=f"Whose usage: {', '.join(SOURCES)} (default DIR ~/.claude/projects).")
@click.option("--since", type=SinceType(), help="Only usage since DATE (YYYY-MM-DD, today, 7d).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (exact token totals per category).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the report as one self-contained HTML file with charts.")
@click.option("--route-limit", type=click.IntRange(min=0), default=DEFAULT_ROUTE_LIMIT, show_default=True,
              help="Imported prompts to route with Tiercode's dry run (an even sample of more; 0: none).")
@click.option("--offline", is_flag=True, default=None, help="Route the prompts with the tiers on this machine only.")
@repo_option
def report(source_spec: str, since: float | None, as_json: bool, html_file: Path | None, route_limit: int,
           offline: bool | None, repo: Path) -> None:
    """Where the money went: spend by token category, day, tier, kind and model, the top cost drivers and
    recommendations with projected savings. Imported logs (Claude Code's transcripts, an Anthropic Console
    export) also show what their prompts would cost routed by Tiercode in the repository (no model call)."""
    if as_json and html_file is not None:
        raise UsageError("choose one of --json and --html FILE")
    source = parse_source(source_spec)
    imported = load(source, since)
    routing = _routing(source, imported, repo, route_limit, offline)
    result = analyse(imported, routing)
    if html_file is not None:
        try:
            html_file.write_text(to_html(result), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {html_file} ({exc.strerror or exc}); pass a writable --html FILE") from None
        click.echo(str(html_file))
    elif as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        click.echo(to_markdown(result), nl=False)


def _routing(source: Source, imported: Imported, repo: Path, limit: int,
             offline: bool | None) -> RoutingEstimate | None:
    """The imported prompts routed by Tiercode in `repo`; a repository it cannot use is a note, not a failure."""
    if not source.imported:
        return None
    estimate = RoutingEstimate(len(imported.prompts))
    if not imported.prompts:
        estimate.note = (f"No Claude Code transcript with a prompt was found in {source.path}: nothing to route."
                         if source.kind == claude_code.SOURCE else
                         "The source holds no user prompts (a Console export has only token counts): nothing to route.")
        return estimate
    if limit == 0:
        estimate.note = "Routing was left out (--route-limit 0)."
        return estimate
    try:
        with dry_run_planner(repo, settings_for(repo, offline=offline)) as planner:
            return route_prompts(imported.prompts, prompt_spend(imported.records), planner, limit)
    except TiercodeError as exc:
        click.echo(f"tiercode: warning: prompts not routed: {exc}", err=True)
        estimate.note = f"Not routed: {exc}"
        return estimate


COMMANDS = [report]
