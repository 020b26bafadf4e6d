"""Which usage a report reads (`--from`): the ledger, Claude Code's transcripts, or a Console export."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assistant import paths
from assistant.accounting.ledger import open_ledger
from assistant.errors import UsageError
from assistant.report import claude_code, console_csv
from assistant.report.ledger_source import read_ledger
from assistant.report.usage import Imported

LEDGER = "ledger"
SOURCES = (LEDGER, f"{claude_code.SOURCE}[:DIR]", f"{console_csv.SOURCE}:FILE")


@dataclass(frozen=True)
class Source:
    """A parsed `--from`: the kind of source and, for imports, its path."""

    kind: str
    path: Path | None = None

    @property
    def imported(self) -> bool:
        """Whether it is another tool's log (whose prompts Tiercode can route) rather than Tiercode's ledger."""
        return self.kind != LEDGER


def parse_source(spec: str) -> Source:
    """`ledger`, `claude-code`, `claude-code:DIR` or `anthropic-csv:FILE`; UsageError for anything else."""
    kind, _, where = spec.strip().partition(":")
    if kind == LEDGER and not where:
        return Source(LEDGER)
    if kind == claude_code.SOURCE:
        return Source(kind, Path(where).expanduser() if where else claude_code.default_folder())
    if kind == console_csv.SOURCE and where:
        return Source(kind, Path(where).expanduser())
    if kind == console_csv.SOURCE:
        raise UsageError("--from anthropic-csv needs the export's path: --from anthropic-csv:FILE")
    raise UsageError(f"--from '{spec}' is not a usage source; use one of {', '.join(SOURCES)}")


def load(source: Source, since: float | None = None) -> Imported:
    """Read a source's usage since a Unix time."""
    if source.kind == claude_code.SOURCE and source.path is not None:
        return claude_code.read_claude_code(source.path, since)
    if source.kind == console_csv.SOURCE and source.path is not None:
        return console_csv.read_console_csv(source.path, since)
    ledger = open_ledger(paths.data_dir())
    try:
        return read_ledger(ledger, since)
    finally:
        ledger.close()
