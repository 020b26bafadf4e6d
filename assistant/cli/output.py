"""How `ask` and the other commands talk in a terminal: the answer on stdout, everything else on stderr."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from assistant.accounting.money import usd
from assistant.answer import Answer, metadata_line

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from assistant.pipeline import Plan


@functools.cache
def _stderr() -> Console:
    """The console progress bars draw on (rich loads only when a bar is drawn, not for every answer)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


class ConsoleReporter:
    """Streams answer text to stdout; notices and progress go to stderr."""

    def __init__(self, stream: bool = True, assume_yes: bool = False) -> None:
        self.stream = stream
        self.assume_yes = assume_yes
        self._wrote = False
        self._ended_with_newline = True
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def text(self, delta: str) -> None:
        """Print a streamed piece of the answer at once (the first ends a wait's spinner)."""
        if not delta:
            return
        self._stop_progress()
        if not self.stream:
            return
        sys.stdout.write(delta)
        sys.stdout.flush()
        self._wrote = True
        self._ended_with_newline = delta.endswith("\n")

    def status(self, message: str) -> None:
        """A one-line notice on stderr."""
        self._stop_progress()
        if self._wrote and not self._ended_with_newline:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self._ended_with_newline = True
        click.echo(f"tiercode: {message}", err=True)

    def progress(self, label: str, done: int, total: int) -> None:
        """A progress bar on stderr when it is a terminal and the work is big enough to watch."""
        if total < 50 or not _stderr().is_terminal:
            return
        if self._progress is None:
            from rich.progress import BarColumn, Progress, TextColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      TextColumn("{task.completed}/{task.total} files"), console=_stderr(),
                                      transient=True)
            self._progress.start()
            self._task = self._progress.add_task(label, total=total)
        assert self._task is not None
        self._progress.update(self._task, completed=done, total=total)
        if done >= total:
            self._stop_progress()

    def waiting(self, label: str) -> None:
        """A spinner with `label` on stderr while nothing streams (a terminal only; it leaves no trace)."""
        if not _stderr().is_terminal:
            return
        self._stop_progress()
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                  console=_stderr(), transient=True)
        self._progress.start()
        self._task = self._progress.add_task(label, total=None)

    def confirm(self, question: str) -> bool:
        """Yes with --yes; otherwise ask on the terminal, the controlling one (/dev/tty) when stdin is a pipe,
        as git and ssh do; no, with a notice naming --yes, when there is no terminal at all."""
        if self.assume_yes:
            return True
        self._stop_progress()
        if sys.stdin is not None and sys.stdin.isatty():
            return click.confirm(question, default=False, err=True)
        reply = _ask_on_controlling_terminal(f"{question} [y/N]: ")
        if reply is None:
            self.status(f"declined without a terminal to ask on: {question} (pass --yes to accept)")
            return False
        return reply.strip().lower() in ("y", "yes")

    def finish(self) -> None:
        """End the streamed answer with a newline, and any spinner still turning."""
        self._stop_progress()
        if self._wrote and not self._ended_with_newline:
            sys.stdout.write("\n")
            sys.stdout.flush()

    def format_plan(self, plan: Plan) -> str:
        """The dry-run plan as text."""
        route = plan.route
        if plan.preflight:
            return "route: answered from the index (tier index, $0, no model call)"
        lines = [f"route: kind={route.kind} difficulty={route.difficulty} decided by {route.stage}"
                 f" (p={route.probability:.2f}), "
                 + (f"starting at {plan.start_tier}" if plan.answerable else "but no tier can answer it")
                 + (f" (no tier from {plan.fallback_from} up can answer: a stronger tier would have been used)"
                    if plan.fallback_from else "")
                 + (f" (--tier {plan.forced})" if plan.forced else "")]
        for t in plan.tiers:
            if t.available:
                lines.append(f"  {t.tier:<7} {t.model:<36} context {t.context_tokens:>6} tokens"
                             f"  up to {usd(t.estimated_cost_usd)}")
            else:
                lines.append(f"  {t.tier:<7} unavailable: {t.note}")
        return "\n".join(lines)

    def _stop_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _ask_on_controlling_terminal(prompt: str) -> str | None:
    """The line typed on /dev/tty after `prompt`; None when the process has no controlling terminal."""
    try:
        with open("/dev/tty", "w", encoding="utf-8") as out, open("/dev/tty", encoding="utf-8") as reply:
            out.write(prompt)
            out.flush()
            return reply.readline()
    except OSError:
        return None


def print_metadata(answer: Answer) -> None:
    """The metadata line and any notes, on stderr."""
    for note in answer.notes:
        click.echo(f"tiercode: note: {note}", err=True)
    click.echo(metadata_line(answer), err=True)


@contextmanager
def byte_progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A download/verify progress bar on stderr; yields the callback to feed it."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    progress = Progress(TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=_stderr(),
                        transient=True, disable=not _stderr().is_terminal)
    task = progress.add_task(label, total=None)
    with progress:
        yield lambda done, total: progress.update(task, completed=done, total=total)
