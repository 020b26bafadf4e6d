"""`tiercode stats`, `tiercode budget show|set` and `tiercode ledger export`."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat
import sys
import tomllib
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from assistant import paths
from assistant.accounting.ledger import open_ledger
from assistant.accounting.money import usd
from assistant.accounting.stats import GROUPINGS, compute_stats, parse_since
from assistant.cli.common import repo_option
from assistant.config import BudgetSettings, load_settings
from assistant.errors import ConfigError

BUDGET_KEYS = ("per_query", "session", "daily", "monthly", "action")
_HEADER = re.compile(r"^\s*\[\s*budget\s*\]\s*(#.*)?$")
_ANY_HEADER = re.compile(r"^\s*\[")


class SinceType(click.ParamType):
    """`--since`: a date, a date-time, `today`, or an age such as `7d`."""

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_since(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class LimitType(click.ParamType):
    """A dollar limit: a number >= 0, or `none` to remove the limit."""

    name = "USD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float | str:
        if str(value).strip().lower() in ("none", "off", "unset"):
            return "none"
        try:
            amount = float(value)
        except ValueError:
            self.fail(f"'{value}' is not an amount in US dollars (or 'none' to remove the limit)", param, ctx)
        if not amount >= 0 or amount == float("inf"):
            self.fail(f"'{value}' must be a finite amount >= 0", param, ctx)
        return amount


_since_option = click.option("--since", type=SinceType(), help="Only records since DATE (YYYY-MM-DD, today, 7d).")


@click.command("stats")
@_since_option
@click.option("--by", type=click.Choice(GROUPINGS), help="Break the totals down.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def stats(since: float | None, by: str | None, as_json: bool) -> None:
    """Calls, tokens, cost, cache hit rate, local share, escalations and savings against all-Sonnet."""
    ledger = open_ledger(paths.data_dir())
    try:
        report = compute_stats(ledger, since=since, by=by)
    finally:
        ledger.close()
    click.echo(json.dumps(report.to_json(), indent=2) if as_json else report.to_text())


@click.group("budget", invoke_without_command=True)
@click.pass_context
def budget(ctx: click.Context) -> None:
    """Show or set money limits (per query, session, day, month) and what crossing one does."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(budget_show)


@budget.command("show")
@repo_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def budget_show(repo: Path = Path("."), as_json: bool = False) -> None:
    """The effective limits and what has been spent today and this month."""
    settings = load_settings(repo.resolve() if repo.is_dir() else None).budget
    now = dt.datetime.now()
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    ledger = open_ledger(paths.data_dir())
    try:
        spent = {"daily": ledger.spent(day.timestamp()), "monthly": ledger.spent(day.replace(day=1).timestamp())}
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps({**settings.model_dump(), "spent_today_usd": round(spent["daily"], 6),
                               "spent_this_month_usd": round(spent["monthly"], 6)}, indent=2))
        return
    for key in ("per_query", "session", "daily", "monthly"):
        limit = getattr(settings, key)
        shown = "no limit" if limit is None else usd(limit)
        extra = f"   (spent {usd(spent[key])})" if key in spent else ""
        click.echo(f"{key.replace('_', '-'):<10} {shown}{extra}")
    click.echo(f"{'action':<10} {settings.action}")
    click.echo(f"# set with: tiercode budget set --daily USD ... (writes {paths.user_config_file()})")


@budget.command("set")
@click.option("--per-query", type=LimitType(), help="Most one question may cost ('none' removes the limit).")
@click.option("--session", type=LimitType(), help="Most one session may cost.")
@click.option("--daily", type=LimitType(), help="Most a calendar day may cost.")
@click.option("--monthly", type=LimitType(), help="Most a calendar month may cost.")
@click.option("--action", type=click.Choice(["warn", "pause", "fail", "downgrade"]),
              help="What a call that would cross a limit does.")
def budget_set(per_query: float | str | None, session: float | str | None, daily: float | str | None,
               monthly: float | str | None, action: str | None) -> None:
    """Write limits to the user's config file, keeping everything else in it."""
    values = {"per_query": per_query, "session": session, "daily": daily, "monthly": monthly, "action": action}
    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        raise click.UsageError("give at least one of --per-query, --session, --daily, --monthly, --action")
    path = paths.user_config_file()
    write_budget(path, {k: None if v == "none" else v for k, v in given.items()})
    click.echo(f"budget saved to {path}")


@click.group("ledger")
def ledger_group() -> None:
    """The call ledger: one immutable record per model call."""


@ledger_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@_since_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not stdout.")
def ledger_export(fmt: str, since: float | None, output: Path | None) -> None:
    """Export every record (or those since DATE) as JSONL or CSV."""
    ledger = open_ledger(paths.data_dir())
    try:
        if output is None:
            count = ledger.export(sys.stdout, fmt, since)
        else:
            with output.open("w", encoding="utf-8", newline="") as out:
                count = ledger.export(out, fmt, since)
    finally:
        ledger.close()
    if output is not None:
        click.echo(f"{count} records written to {output}", err=True)


def write_budget(path: Path, values: dict[str, float | str | None]) -> None:
    """Set (or, for None, remove) keys of the `[budget]` table in a TOML file, leaving every other
    line, comment included, as it was. The result is checked before the file is replaced."""
    unknown = set(values) - set(BUDGET_KEYS)
    if unknown:
        raise ValueError(f"not budget keys: {sorted(unknown)}")
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML ({exc}); fix it before setting a budget") from exc
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    header = next((i for i, line in enumerate(lines) if _HEADER.match(line)), None)
    if header is None and "budget" in data:
        raise ConfigError(f"config file {path} sets budget as an inline table or dotted keys; "
                          "write it as a [budget] table to use `tiercode budget set`")
    if header is None:
        if lines and lines[-1].strip():
            lines.append("\n")
        lines.append("[budget]\n")
        header = len(lines) - 1
    end = next((i for i in range(header + 1, len(lines)) if _ANY_HEADER.match(lines[i])), len(lines))
    section = lines[header + 1:end]
    for key, value in values.items():
        pattern = re.compile(rf"^\s*{key}\s*=")
        section = [line for line in section if not pattern.match(line)]
        if value is not None:
            last = max((i for i, line in enumerate(section) if line.strip()), default=-1)
            section.insert(last + 1, f"{key} = {_toml_value(value)}\n")
    new_text = "".join(lines[:header + 1] + section + lines[end:])
    try:
        BudgetSettings(**tomllib.loads(new_text).get("budget", {}))
    except (tomllib.TOMLDecodeError, ValidationError, TypeError) as exc:
        raise ConfigError(f"the budget in {path} would be invalid: {exc}") from exc
    target = path.resolve() if path.is_symlink() else path  # a dotfiles symlink stays a symlink
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(new_text, encoding="utf-8")
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o600  # the file may hold API keys
    os.chmod(tmp, mode)
    os.replace(tmp, target)


def _toml_value(value: float | str) -> str:
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for the plain words budget values use
    return repr(float(value))


COMMANDS = [stats, budget, ledger_group]
