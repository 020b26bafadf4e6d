"""Turn one source file into definitions, references and imports with tree-sitter tags queries."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import Node, Parser, QueryCursor

from indexer.languages import LoadedLanguage, load

_CONTAINER_KINDS = frozenset({"class", "interface", "module", "type", "function", "method"})
_MAX_SIGNATURE = 200
_MAX_DOC = 600
_STRING_QUOTES = re.compile(r"^[rRbBuUfF]*(\"\"\"|\'\'\'|\"|\')|(\"\"\"|\'\'\'|\"|\')$")


@dataclass(frozen=True)
class Definition:
    """A named definition in a file. Lines are 1-based and inclusive."""

    name: str
    qualified_name: str
    """Dotted path through the enclosing definitions, e.g. `Router.route`."""
    kind: str
    """class, function, method, interface, module, type, constant, macro."""
    line: int
    end_line: int
    signature: str
    """The definition's header, up to its body, on one line."""
    doc: str
    """Docstring or leading comment, possibly empty."""
    container: str
    """Qualified name of the enclosing definition, or empty at top level."""


@dataclass(frozen=True)
class Reference:
    """A use of a name: a call, a type or class use."""

    name: str
    line: int
    kind: str


@dataclass(frozen=True)
class Import:
    """A module or path a file imports."""

    module: str
    line: int


@dataclass(frozen=True)
class ParsedFile:
    """What the index keeps of one file."""

    language: str
    definitions: tuple[Definition, ...]
    references: tuple[Reference, ...]
    imports: tuple[Import, ...]
    has_errors: bool
    """True when tree-sitter had to recover from syntax errors."""


@dataclass
class _RawDefinition:
    name: str
    kind: str
    node: Node


def parse_source(language: str, source: bytes) -> ParsedFile:
    """Parse `source` in `language`; syntax errors yield what tree-sitter recovers."""
    loaded = load(language)
    tree = Parser(loaded.language).parse(source)
    raw_defs: dict[tuple[int, int], _RawDefinition] = {}
    references: list[Reference] = []
    imports: list[Import] = []
    for _, captures in QueryCursor(loaded.query).matches(tree.root_node):
        names = captures.get("name", [])
        for capture, nodes in captures.items():
            if capture.startswith("definition.") and names:
                node = nodes[0]
                key = (node.start_byte, node.end_byte)
                if key not in raw_defs:
                    raw_defs[key] = _RawDefinition(_text(names[0]), capture[11:], node)
            elif capture.startswith("reference.") and names:
                name_node = names[0]
                references.append(Reference(_text(name_node), _line(name_node), capture[10:]))
            elif capture == "import.module":
                for node in nodes:
                    imports.append(Import(_text(node).strip("\"'<>"), _line(node)))
    return ParsedFile(
        language=language,
        definitions=_nest(list(raw_defs.values()), loaded),
        references=tuple(references),
        imports=tuple(imports),
        has_errors=tree.root_node.has_error,
    )


def _nest(raw: list[_RawDefinition], loaded: LoadedLanguage) -> tuple[Definition, ...]:
    """Give each definition its container and qualified name from how the ranges nest."""
    raw.sort(key=lambda d: (d.node.start_byte, -d.node.end_byte))
    stack: list[tuple[_RawDefinition, str]] = []
    result: list[Definition] = []
    for item in raw:
        while stack and stack[-1][0].node.end_byte < item.node.end_byte:
            stack.pop()
        container = stack[-1] if stack else None
        kind = item.kind
        if container and kind == "function" and container[0].kind in ("class", "interface"):
            kind = "method"
        container_name = container[1] if container else ""
        qualified = f"{container_name}.{item.name}" if container_name else item.name
        result.append(
            Definition(
                name=item.name,
                qualified_name=qualified,
                kind=kind,
                line=_line(item.node),
                end_line=item.node.end_point.row + 1,
                signature=_signature(item.node),
                doc=_doc(item.node, loaded.spec.name),
                container=container_name,
            )
        )
        if kind in _CONTAINER_KINDS:
            stack.append((item, qualified))
    return tuple(result)


def _signature(node: Node) -> str:
    body = node.child_by_field_name("body")
    end = body.start_byte if body is not None else node.end_byte
    text = node.text[: end - node.start_byte] if node.text else b""
    header = " ".join(text.decode("utf-8", "replace").split()).rstrip(" {:")
    return header[:_MAX_SIGNATURE]


def _doc(node: Node, language: str) -> str:
    if language == "python":
        body = node.child_by_field_name("body")
        first = body.named_children[0] if body is not None and body.named_children else None
        if first is not None and first.type == "expression_statement":
            string = first.named_children[0] if first.named_children else None
            if string is not None and string.type == "string":
                return _clean_doc(_STRING_QUOTES.sub("", _text(string)))
        return ""
    comments: list[str] = []
    sibling = node.prev_named_sibling
    expected_row = node.start_point.row - 1
    while sibling is not None and sibling.type == "comment" and sibling.end_point.row == expected_row:
        comments.append(_text(sibling))
        expected_row = sibling.start_point.row - 1
        sibling = sibling.prev_named_sibling
    comments.reverse()
    lines = (line.strip().lstrip("/*#!").rstrip("*/").strip() for c in comments for line in c.split("\n"))
    return _clean_doc("\n".join(line for line in lines if line))


def _clean_doc(text: str) -> str:
    return "\n".join(line.strip() for line in text.strip().splitlines())[:_MAX_DOC]


def _text(node: Node) -> str:
    return node.text.decode("utf-8", "replace") if node.text else ""


def _line(node: Node) -> int:
    return node.start_point.row + 1
