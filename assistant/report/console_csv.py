"""An Anthropic Console usage export (Usage → Export, CSV) as report records.

The export has one row per day (or hour) and model, API key, workspace and usage type, with the tokens of each
category in its own column. The columns read (others are ignored): `usage_date_utc`, `model_version` (or
`model`), `usage_type` (`batch` rows get the batch discount), `workspace`, `usage_input_tokens_no_cache`,
`usage_input_tokens_cache_write_5m`, `usage_input_tokens_cache_write_1h`, `usage_input_tokens_cache_read` and
`usage_output_tokens`. An empty token cell is 0; a row with a bad date, model or count is counted and skipped."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from assistant.errors import UsageError
from assistant.report.usage import Imported, Tokens, priced_record

SOURCE = "anthropic-csv"
DATE_COLUMN = "usage_date_utc"
MODEL_COLUMNS = ("model_version", "model")
TOKEN_COLUMNS = {
    "input": "usage_input_tokens_no_cache",
    "cache_write_5m": "usage_input_tokens_cache_write_5m",
    "cache_write_1h": "usage_input_tokens_cache_write_1h",
    "cache_read": "usage_input_tokens_cache_read",
    "output": "usage_output_tokens",
}


class MalformedRow(ValueError):
    """A row whose date, model or token counts cannot be read."""


def read_console_csv(path: Path, since: float | None = None) -> Imported:
    """Every row of the export, since a Unix time (a row counts from the start of its UTC day or hour)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as lines:
            return _read_rows(csv.DictReader(lines), path, since)
    except FileNotFoundError:
        raise UsageError(f"no usage export at {path}; pass --from anthropic-csv:FILE with the CSV the Console's "
                         "Usage page exports") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"cannot read the usage export {path} ({exc}); export it again from the Console") from None


def _read_rows(rows: csv.DictReader[str], path: Path, since: float | None) -> Imported:
    header = [name.strip() for name in rows.fieldnames or []]
    model_column = next((name for name in MODEL_COLUMNS if name in header), None)
    missing = [name for name in (DATE_COLUMN, *TOKEN_COLUMNS.values()) if name not in header]
    if model_column is None or DATE_COLUMN not in header or len(missing) == len(TOKEN_COLUMNS):
        raise UsageError(f"{path} is not an Anthropic Console usage export (it needs the columns {DATE_COLUMN}, "
                         f"model_version and the usage_*_tokens_* counts); export it from the Console's Usage page")
    imported = Imported(f"{SOURCE}:{path}", files=1)
    for number, row in enumerate(rows, start=2):
        if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
            continue
        imported.lines += 1
        try:
            when, day = _when(row.get(DATE_COLUMN))
            model = (row.get(model_column) or "").strip()
            if not model:
                raise MalformedRow(f"no {model_column}")
            tokens = Tokens(**{name: _count(row, column) for name, column in TOKEN_COLUMNS.items()})
        except MalformedRow as exc:
            imported.skip(f"{path.name}:{number}", str(exc))
            continue
        if since is not None and when < since:
            continue
        batch = (row.get("usage_type") or "").strip().lower() == "batch"
        imported.records.append(priced_record(SOURCE, when, day, model, tokens, batch=batch,
                                              project=(row.get("workspace") or "").strip()))
    return imported


def _when(value: str | None) -> tuple[float, str]:
    """A row's time (Unix, UTC) and day from `2026-11-30`, `2026-11-30 15:00` or an ISO time."""
    text = (value or "").strip()
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedRow(f"{DATE_COLUMN} {text!r} is not a date") from None
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return when.timestamp(), when.astimezone(dt.UTC).strftime("%Y-%m-%d")


def _count(row: dict[str, str], column: str) -> int:
    text = (row.get(column) or "").strip().replace(",", "")
    if not text:
        return 0
    try:
        value = int(float(text)) if "." in text else int(text)
    except ValueError:
        raise MalformedRow(f"{column} {text!r} is not a token count") from None
    if value < 0:
        raise MalformedRow(f"{column} {text!r} is negative")
    return value
