"""A report as one self-contained HTML file: the Markdown's sections, with a bar beside each share (inline CSS,
no script, nothing fetched)."""

from __future__ import annotations

from html import escape

from assistant.report.analysis import Report
from assistant.report.sections import Section, Table, sections

_STYLE = """
body { font: 14px/1.5 system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; }
th, td { padding: .2rem .6rem; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th:first-child, td:first-child, td.text { text-align: left; white-space: normal; }
td.bar { width: 16rem; }
td.bar span { display: block; height: .8rem; background: #4a7bd0; border-radius: 2px; }
li { margin-bottom: .6rem; }
code { background: #f3f3f3; padding: 0 .2rem; }
"""


def to_html(report: Report) -> str:
    """The whole report as an HTML document."""
    parts = sections(report)
    body = [f"<h1>{escape(parts[0].title)}</h1>", *_body(parts[0])]
    for section in parts[1:]:
        body += [f"<section><h2>{escape(section.title)}</h2>", *_body(section), "</section>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{escape(parts[0].title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def _text(line: str) -> str:
    """Escaped text with Markdown's `code` spans kept as code."""
    pieces = escape(line).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))


def _body(section: Section) -> list[str]:
    out = [f"<p>{_text(line)}</p>" for line in section.lines]
    if section.items:
        out.append("<ol>")
        out += [f"<li><strong>{_text(heading)}</strong>. {_text(text)}</li>" for heading, text in section.items]
        out.append("</ol>")
    if section.table is not None:
        out += _table(section.table)
    return out


def _table(table: Table) -> list[str]:
    bars = bool(table.shares)
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers) + ("<th></th>" if bars else "")
    text_column = 1 if table.headers[1:2] == ("name",) else -1
    rows = []
    for i, row in enumerate(table.rows):
        cells = "".join(f'<td class="text">{escape(c)}</td>' if j == text_column else f"<td>{escape(c)}</td>"
                        for j, c in enumerate(row))
        if bars:
            width = max(0.0, min(table.shares[i] if i < len(table.shares) else 0.0, 1.0)) * 100
            cells += f'<td class="bar"><span style="width:{width:.1f}%"></span></td>'
        rows.append(f"<tr>{cells}</tr>")
    return ["<table>", f"<thead><tr>{head}</tr></thead>", "<tbody>", *rows, "</tbody>", "</table>"]
