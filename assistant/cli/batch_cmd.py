"""`tiercode batch submit|review|status|collect|cancel`: many questions at the providers' batch prices.

Answers go to stdout as JSONL, one object a question (`custom_id`, `question`, `status`, `answer`, `tier`,
`model`, `cost_usd`, `batch`, `error`); notices go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from assistant import offline as offline_guard
from assistant import paths
from assistant.accounting.money import usd
from assistant.cli.common import repo_option, settings_for
from assistant.cli.output import ConsoleReporter
from assistant.errors import UsageError

if TYPE_CHECKING:
    from assistant.batch.collect import BatchDesk, BatchReport
    from assistant.batch.jobs import Job
    from assistant.session import Session

_tier_option = click.option("--tier", metavar="NAME",
                            help="Batch what is left at this tier (one that can batch: anthropic or gemini).")
_yes_option = click.option("--yes", "-y", is_flag=True, help="Accept budget and cost prompts without asking.")


@click.group("batch")
def batch() -> None:
    """Ask many questions at the providers' batch prices (half price; answers within a day). What the index, the
    caches and the free tiers can answer is answered at once."""


@batch.command("submit")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@repo_option
@_tier_option
@_yes_option
def submit_cmd(file: Path, repo: Path, tier: str | None, yes: bool) -> None:
    """Submit FILE (JSONL, `-` for stdin): one {"question": ..., "files": [...], "id": ...} a line. A line that is
    not one is an error naming it, and nothing is submitted."""
    from assistant.batch.jobs import read_questions

    lines = _read_lines(file)
    with _session(repo, yes) as session:
        _submit(session, read_questions(lines, str(file), session.repo), tier, yes)


@batch.command("review")
@click.argument("targets", nargs=-1, metavar="[PATHS]...")
@click.option("--changed", is_flag=True, help="Review each source file git sees changed or untracked.")
@repo_option
@_tier_option
@_yes_option
def review_cmd(targets: tuple[str, ...], changed: bool, repo: Path, tier: str | None, yes: bool) -> None:
    """One review a file, of PATHS (a folder: its indexed files) or --changed, at the batch price."""
    from assistant.batch.jobs import review_jobs

    with _session(repo, yes) as session:
        jobs = review_jobs(session.repo, targets, changed, session.store().paths())
        _submit(session, jobs, tier, yes)


@batch.command("status")
@click.argument("batch_ids", nargs=-1, metavar="[BATCH_ID]...")
@click.option("--all", "include_collected", is_flag=True, help="Also the batches collected already.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@repo_option
def status_cmd(batch_ids: tuple[str, ...], include_collected: bool, as_json: bool, repo: Path) -> None:
    """Each batch not collected yet (or those named): its state and how many requests are in each."""
    with _desk(repo) as desk:
        reports = desk.status(batch_ids, include_collected)
    if as_json:
        click.echo(json.dumps({"batches": [r.to_json() for r in reports]}, indent=2))
    elif not reports:
        click.echo("no batches waiting to be collected (tiercode batch status --all lists every batch)")
    for report in [] if as_json else reports:
        click.echo(_status_line(report))


@batch.command("collect")
@click.argument("batch_ids", nargs=-1, metavar="[BATCH_ID]...")
@repo_option
def collect_cmd(batch_ids: tuple[str, ...], repo: Path) -> None:
    """The answers of every ended batch (or those named) as JSONL, each recorded once in the ledger at its batch
    price; batches still in progress are left for a later run."""
    with _desk(repo) as desk:
        collected, waiting = desk.collect(batch_ids, _emit)
    still = f"; {waiting} batch(es) still in progress" if waiting else ""
    click.echo(f"tiercode: collected {collected} result(s){still}", err=True)


@batch.command("cancel")
@click.argument("batch_ids", nargs=-1, metavar="[BATCH_ID]...")
@click.option("--all", "every", is_flag=True, help="Cancel every batch still in progress.")
@repo_option
def cancel_cmd(batch_ids: tuple[str, ...], every: bool, repo: Path) -> None:
    """Cancel the batches named (or --all): requests not processed yet end canceled and are not charged; collect
    the batch afterwards for the ones that were."""
    if every == bool(batch_ids):
        raise UsageError("name the batches to cancel, or pass --all")
    with _desk(repo) as desk:
        canceled = desk.cancel(batch_ids)
    for batch_id in canceled:
        click.echo(f"canceling {batch_id}; `tiercode batch collect {batch_id}` records what it answered")


def _submit(session: Session, jobs: list[Job], tier: str | None, yes: bool) -> None:
    from assistant.batch.store import open_batch_store
    from assistant.batch.submit import submit

    store = open_batch_store(paths.data_dir())
    try:
        sent = submit(session, store, jobs, _emit, tier, yes)
    finally:
        store.close()
    if not sent:
        click.echo(f"tiercode: all {len(jobs)} question(s) answered at once; nothing to batch", err=True)


def _emit(row: dict[str, object]) -> None:
    click.echo(json.dumps(row))
    sys.stdout.flush()


def _read_lines(file: Path) -> list[str]:
    """The lines of the questions file (stdin for `-`); UsageError when it cannot be read as UTF-8 text."""
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{file} does not exist; give a JSONL file of questions") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {file} ({exc}); give a UTF-8 JSONL file of questions") from None
    return text.splitlines()


@contextmanager
def _session(repo: Path, yes: bool) -> Iterator[Session]:
    from assistant.session import Session

    offline = True if offline_guard.active() else None  # `tiercode --offline batch ...`
    session = Session(repo, settings_for(repo, offline=offline), ConsoleReporter(stream=False, assume_yes=yes))
    try:
        yield session
    finally:
        session.close()


@contextmanager
def _desk(repo: Path) -> Iterator[BatchDesk]:
    from assistant.batch.collect import BatchDesk
    from assistant.batch.store import open_batch_store

    store = open_batch_store(paths.data_dir())
    try:
        with _session(repo, False) as session:
            yield BatchDesk(session, store)
    finally:
        store.close()


def _status_line(report: BatchReport) -> str:
    b, counts = report.batch, report.status.counts
    parts: Sequence[str] = [f"{n} {name}" for name, n in asdict(counts).items() if n]
    canceled = " (cancel asked)" if b.canceled and report.status.state != "ended" else ""
    return (f"{b.batch_id}  {b.tier} ({b.model})  {report.status.state}{canceled}  {report.size} request(s): "
            f"{', '.join(parts) or 'none'}; {report.collected} collected; at most {usd(b.estimated_usd)}")


COMMANDS = [batch]
