"""How an error the user can act on becomes one line and an exit code (README: 0 answered, 1 no tier could
answer, 2 usage, input or configuration, 3 stopped by a budget; 130 interrupted)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from assistant import paths
from assistant.answer import Answer
from assistant.errors import BudgetStop, TiercodeError
from indexer.sqlitedb import DatabaseCorrupt, is_corruption
from models.base import ModelUnavailable
from models.manager import PullError

EXIT_INPUT = 2
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Failure:
    """What the user is told, and the exit code."""

    message: str
    exit_code: int


def failure_of(exc: BaseException) -> Failure | None:
    """The one-line failure an exception stands for; None for one that is a bug (it keeps its traceback)."""
    if isinstance(exc, TiercodeError):
        return Failure(str(exc), exc.exit_code)
    if isinstance(exc, ModelUnavailable | PullError):
        return Failure(str(exc), EXIT_INPUT)
    if isinstance(exc, click.Abort | KeyboardInterrupt):
        return Failure("interrupted", EXIT_INTERRUPTED)
    if isinstance(exc, DatabaseCorrupt):  # a store that cannot even be opened
        return Failure(_damaged(exc.path, exc.reason), EXIT_INPUT)
    if isinstance(exc, sqlite3.DatabaseError) and is_corruption(exc):  # damage the index build did not reach,
        return Failure(_damage_advice(exc), EXIT_INPUT)                 # or the ledger's
    return None


_STORES = {
    "ledger.sqlite": ("the ledger", "move it aside to keep its records; Tiercode then starts a new one"),
    "cache.sqlite": ("the response cache", "move it aside (it is only a cache); Tiercode then starts a new one"),
    "batches.sqlite": ("the batch store", "it holds the ids of submitted batches: move it aside only when none is "
                       "left to collect; Tiercode then starts a new one"),
}
"""What each of Tiercode's databases in the data folder is, and what to do when it is damaged."""


def _damaged(path: Path, reason: str) -> str:
    """The one-line advice for a damaged database file."""
    what, fix = _STORES.get(path.name, ("the index", "`tiercode index --rebuild` builds it anew"))
    return f"{what} at {path} is damaged ({reason}); {fix}"


def _damage_advice(exc: sqlite3.DatabaseError) -> str:
    """Which of Tiercode's databases is damaged, and what to do about it (checked only after an error)."""
    data = paths.data_dir()
    for name in _STORES:
        if (data / name).exists() and not _intact(data / name):
            return _damaged(data / name, str(exc))
    return f"the index is damaged ({exc}); `tiercode index --rebuild` builds it anew"


def _intact(path: Path) -> bool:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return db.execute("PRAGMA quick_check(1)").fetchone()[0] == "ok"
    except sqlite3.DatabaseError as exc:  # locked or unopenable is not damage
        return not is_corruption(exc)


@contextmanager
def reported_in_json(enabled: bool) -> Iterator[None]:
    """With `enabled` (`ask --json`), a failure also prints the one JSON object a script reads on stdout: the
    answer's keys, empty, and `error`; the one-line error on stderr and the exit code are as always."""
    try:
        yield
    except (Exception, KeyboardInterrupt) as exc:
        failure = failure_of(exc) if enabled else None
        if failure is not None:
            echo_json_failure(failure.message, budget_stop=failure.message if isinstance(exc, BudgetStop) else "")
        raise


def echo_json_failure(message: str, budget_stop: str = "") -> None:
    """The one JSON object `ask --json` prints when there is no answer: the answer's keys, empty, and `error`."""
    click.echo(json.dumps(Answer.failed(message, budget_stop=budget_stop).to_json()))
