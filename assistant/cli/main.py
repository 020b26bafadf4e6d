"""The command line: parse, build settings, call the pipeline or the TUI. Nothing else lives here."""

from __future__ import annotations

import gc
import importlib
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from assistant import __version__
from assistant import offline as offline_guard
from assistant.cli.common import repo_option, settings_for
from assistant.cli.failures import EXIT_INPUT, Failure, echo_json_failure, failure_of, reported_in_json
from assistant.cli.output import ConsoleReporter, print_metadata
from assistant.errors import BudgetStop, TiercodeError, UsageError
from models.base import Cancelled

if TYPE_CHECKING:
    from assistant.context.saved_conversations import SavedConversation
    from assistant.session import Session

_STARTED = time.perf_counter()
"""When the command line was loaded: the start of `ask -v`'s start-up stage."""


_LAZY_COMMANDS = {
    "index": "index_cmd", "find": "index_cmd", "search": "index_cmd", "map": "index_cmd",
    "config": "config_cmd", "stats": "stats_cmd", "budget": "stats_cmd", "ledger": "stats_cmd",
    "doctor": "doctor_cmd", "mcp": "mcp_cmd", "models": "models_cmd", "sessions": "sessions_cmd",
    "report": "report_cmd", "batch": "batch_cmd",
}
"""Each subcommand's module under assistant.cli, imported only when the command runs (or `--help` lists it): a
lookup with `ask` does not pay for the others' imports."""


class TiercodeGroup(click.Group):
    """A group whose errors are one line on stderr with the exit codes of design.md, and whose subcommands
    (`_LAZY_COMMANDS`) load on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _LAZY_COMMANDS:
            module = importlib.import_module(f"assistant.cli.{_LAZY_COMMANDS[cmd_name]}")
            for command in module.COMMANDS:
                self.add_command(command)
        return super().get_command(ctx, cmd_name)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
            sys.exit(EXIT_INPUT)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx else "tiercode"
            failure = Failure(f"{exc.format_message().rstrip('.')}; see '{command} --help'", EXIT_INPUT)
            given = kwargs.get("args") or (args[0] if args else None) or sys.argv[1:]
            if exc.ctx and exc.ctx.command.name == "ask" and "--json" in given:  # a script reads stdout
                echo_json_failure(failure.message)
            _fail(failure)
        except (Exception, KeyboardInterrupt) as exc:
            failure = failure_of(exc)
            if failure is None:
                raise
            _fail(failure)
        sys.exit(code if isinstance(code, int) else 0)


def _defaults_for(ctx: click.Context, group: click.Group, names: list[str], values: dict[str, object],
                  ) -> dict[str, object]:
    """A default_map giving the commands `names` of `group`, and every command under them, these parameter values
    (where they have them)."""
    defaults: dict[str, object] = {}
    for name in names:
        command = group.get_command(ctx, name)
        nested = _defaults_for(ctx, command, command.list_commands(ctx), values) \
            if isinstance(command, click.Group) else {}
        defaults[name] = {**values, **nested}
    return defaults


def _fail(failure: Failure) -> None:
    click.echo(f"tiercode: error: {failure.message}", err=True)
    sys.exit(failure.exit_code)


@click.group(cls=TiercodeGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@repo_option
@click.option("--offline", is_flag=True, default=None, help="No network: the index and local models answer.")
@click.option("--continue", "-c", "resume_last", is_flag=True,
              help="Open the terminal UI on this repository's last conversation.")
@click.option("--resume", "resume_id", metavar="ID", help="Open the terminal UI on this saved conversation "
              "(an id, or its first characters, from `tiercode sessions`).")
@click.version_option(__version__, prog_name="tiercode")
@click.pass_context
def cli(ctx: click.Context, repo: Path, offline: bool | None, resume_last: bool, resume_id: str | None) -> None:
    """Tiercode: a local-first coding assistant that answers at the lowest cost that still gives a good
    answer. Run without a command to open the terminal UI in the repository."""
    inherited: dict[str, object] = {"offline": True} if offline else {}
    if ctx.get_parameter_source("repo") is not ParameterSource.DEFAULT:
        inherited["repo"] = repo
    if inherited and ctx.invoked_subcommand is not None:  # `tiercode --offline ask` is `tiercode ask --offline`
        ctx.default_map = _defaults_for(ctx, cli, [ctx.invoked_subcommand], inherited)  # nested commands too
    if offline and ctx.invoked_subcommand is not None:  # commands without an --offline of their own too
        offline_guard.install()
    if (resume_last or resume_id) and ctx.invoked_subcommand is not None:
        raise UsageError("-c and --resume open the terminal UI; for a one-shot follow-up use `tiercode ask -c`")
    if ctx.invoked_subcommand is None:
        from assistant.tui.app import run_tui

        run_tui(repo, settings_for(repo, offline=offline), resume="last" if resume_last else resume_id)


@cli.command()
@click.argument("question", nargs=-1, required=True)
@repo_option
@click.option("--offline", is_flag=True, default=None, help="No network: only the index and local models answer.")
@click.option("--tier", metavar="NAME", help="Ask this tier only (one of the configured `tiers`).")
@click.option("--max-cost", type=click.FloatRange(min=0), help="Most this question may cost, in US dollars.")
@click.option("--yes", "-y", is_flag=True, help="Accept escalation and budget prompts without asking.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object and nothing else on stdout.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the response caches.")
@click.option("--dry-run", is_flag=True, help="Print the route and estimated cost per tier; call no model.")
@click.option("--diff", "diff_only", is_flag=True,
              help="Send only what changed (git diff against --base): the hunks and their enclosing functions.")
@click.option("--base", "diff_base", default="HEAD", show_default=True, metavar="REV", help="What --diff compares to.")
@click.option("--verbose", "-v", is_flag=True, help="Also print where the time went, stage by stage, on stderr.")
@click.option("--file", "-f", "pinned", multiple=True, metavar="PATH",
              help="Send this file whole with the question (repeatable), counted against each tier's budget.")
@click.option("--apply", "apply_edits", is_flag=True,
              help="Write the answer's edits when they pass the patch checks (in git: one commit; see auto_commits).")
@click.option("--no-stdin", "-n", is_flag=True,
              help="Do not read stdin (like ssh -n): for scripts and loops whose stdin is not for Tiercode.")
@click.option("--continue", "-c", "follow_up", is_flag=True,
              help="Follow up on this repository's last `ask`: its questions and answers go with this one.")
def ask(
    question: tuple[str, ...], repo: Path, offline: bool | None, tier: str | None, max_cost: float | None,
    yes: bool, as_json: bool, no_cache: bool, dry_run: bool, diff_only: bool, diff_base: str, verbose: bool,
    no_stdin: bool, pinned: tuple[str, ...], apply_edits: bool, follow_up: bool,
) -> None:
    """Answer QUESTION about the repository. Stdin, when it is not a terminal, is read and added as context
    (not with --no-stdin); a piped diff (`git diff | tiercode ask "review this"`) is sent diff-only, like
    --diff. A question the index answers is answered by it unless it refers to the piped text ("this",
    "the diff", "above"). With --apply, edits that fail the checks change nothing and exit 1. Every question is
    kept (`tiercode sessions`); --continue carries the last one's turns, context already sent is not resent."""
    from assistant.pipeline import Pipeline
    from assistant.session import Session

    text = " ".join(question)
    extra = "" if no_stdin or sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    stopped = ""
    refused: TiercodeError | None = None
    with reported_in_json(as_json and not dry_run):
        settings = settings_for(repo, offline=offline)
        if max_cost is not None:
            settings.budget.per_query = max_cost
            settings.budget.action = "fail"
        reporter = ConsoleReporter(stream=not as_json and not dry_run, assume_yes=yes)
        session = Session(repo, settings, reporter)
        try:
            extra = _attached(session, extra, diff_base if diff_only else None)
            pipeline = Pipeline(session)
            for path in pinned:
                pipeline.pinned.add(path)
            if dry_run:
                plan = pipeline.plan(text, extra, tier)
                click.echo(json.dumps(plan.to_json(), indent=2) if as_json else reporter.format_plan(plan))
                return
            session.timings.add("start-up", time.perf_counter() - _STARTED)
            kept = _kept_conversation(session, follow_up)
            try:
                answer = pipeline.ask(text, extra=extra, tier=tier, assume_yes=yes, use_cache=not no_cache,
                                      conversation=kept.conversation)
            except Cancelled:
                raise click.Abort() from None
            finally:
                reporter.finish()
            session.conversations().save(kept)
            if as_json:
                click.echo(json.dumps(answer.to_json()))
            else:
                print_metadata(answer)
            if verbose:
                click.echo(f"tiercode: timing: {session.timings.line(time.perf_counter() - _STARTED)}", err=True)
            stopped = answer.budget_stop
            if apply_edits and not stopped:
                from assistant.changes.apply_changes import apply_answer

                try:
                    click.echo(f"tiercode: {apply_answer(pipeline, answer, text)}", err=True)
                except TiercodeError as exc:  # after the answer: its JSON is printed already
                    refused = exc
        finally:
            session.close()
    if stopped:  # the answer is printed already: its JSON says why the cascade stopped
        raise BudgetStop(stopped)
    if refused is not None:
        raise refused


def _kept_conversation(session: Session, follow_up: bool) -> SavedConversation:
    """The one-shot conversation this question joins: with --continue the repository's last, else a new one."""
    store = session.conversations()
    last = store.latest(session.repo, "ask") if follow_up else None
    if follow_up and last is None:
        session.reporter.status("no earlier `ask` in this repository to continue; this question starts afresh")
    return last or store.start(session.repo, "ask")


def _attached(session: Session, extra: str, diff_base: str | None) -> str:
    """What goes with the question: with --diff (`diff_base`) the changed hunks and their enclosing functions
    before any piped text; a piped diff is sent the same way."""
    if diff_base is None and not extra:
        return extra
    from assistant.context.diff import diff_context, git_diff, looks_like_diff

    if diff_base is not None:
        changed = diff_context(git_diff(session.repo, diff_base), session.store(), session.repo)
        extra = "\n\n".join(part for part in (changed, extra) if part.strip())
        if not extra:
            raise UsageError(f"--diff: nothing changed since {diff_base}")
        return extra
    if looks_like_diff(extra):
        return diff_context(extra, session.store(), session.repo) or extra
    return extra


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="tiercode")
    finally:  # the objects alive at exit are not traversed by a last collection: ~30 ms off every command
        gc.freeze()
