"""A report as Markdown (what `tiercode report` prints by default)."""

from __future__ import annotations

from assistant.report.analysis import Report
from assistant.report.sections import Section, Table, sections


def to_markdown(report: Report) -> str:
    """The whole report: a title, then each section."""
    parts = sections(report)
    out = [f"# {parts[0].title}", *_body(parts[0])]
    for section in parts[1:]:
        out += ["", f"## {section.title}", *_body(section)]
    return "\n".join(out).rstrip() + "\n"


def _body(section: Section) -> list[str]:
    out: list[str] = []
    for line in section.lines:
        out += ["", line]
    if section.items:
        out.append("")
        out += [f"{n}. **{heading}**. {text}" for n, (heading, text) in enumerate(section.items, start=1)]
    if section.table is not None:
        out += ["", *_table(section.table)]
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(table: Table) -> list[str]:
    aligns = ["---"] + ["---:"] * (len(table.headers) - 1)
    if table.headers[:2] == ("what", "name"):
        aligns[1] = "---"
    lines = [f"| {' | '.join(table.headers)} |", f"|{'|'.join(aligns)}|"]
    lines += [f"| {' | '.join(_cell(c) for c in row)} |" for row in table.rows]
    return lines
