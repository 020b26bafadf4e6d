"""Turn one source file into definitions, references and imports with tree-sitter tags queries."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from indexer.languages import LoadedLanguage, load
from indexer.scopes import (
    definition_node,
    explicit_scope,
    last_row,
    leading_comment,
    outer_node,
    signature_node,
)

if TYPE_CHECKING:
    from tree_sitter import Node

_CONTAINER_KINDS = frozenset({"class", "interface", "module", "type", "function", "method"})
_MAX_SIGNATURE = 200
_MAX_DOC = 600
_STRING_QUOTES = re.compile(r"^[rRbBuUfF]*(\"\"\"|\'\'\'|\"|\')|(\"\"\"|\'\'\'|\"|\')$")


class Definition(NamedTuple):
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


class Reference(NamedTuple):
    """A use of a name: a call, a type or class use."""

    name: str
    line: int
    kind: str


class Import(NamedTuple):
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
    scope: list[str]


def parse_source(language: str, source: bytes) -> ParsedFile:
    """Parse `source` in `language`; syntax errors yield what tree-sitter recovers."""
    from tree_sitter import Parser, QueryCursor

    loaded = load(language)
    tree = Parser(loaded.language).parse(source)
    roles = loaded.roles
    raw_defs: list[_RawDefinition] = []
    seen_names: set[tuple[str, int]] = set()
    definition_names: set[int] = set()
    first_at: dict[int, Reference] = {}
    """References by the start of their name: one name, one reference (a call is not also a use)."""
    imports: list[Import] = []
    for _, captures in QueryCursor(loaded.query).matches(tree.root_node):
        names = captures.get("name")
        for capture, nodes in captures.items():
            role, kind = roles[capture]
            if role == "definition" and names:
                node = definition_node(nodes[0], language)
                if node is None:
                    continue
                name = _text(names[0])
                if name == "_" and kind == "constant":  # `var _ = x`, `_ = gettext`: a placeholder, not a name
                    continue
                if (name, node.start_byte) in seen_names:  # `int A = 1, B = 2;`: one node, two names
                    continue
                seen_names.add((name, node.start_byte))
                definition_names.add(names[0].start_byte)
                raw_defs.append(_RawDefinition(name, kind, node, explicit_scope(node, language)))
            elif role == "reference" and names:
                name_node = names[0]
                if name_node.start_byte not in first_at:
                    first_at[name_node.start_byte] = Reference(_text(name_node), _line(name_node), kind)
            elif role == "import":
                for node in nodes:
                    imports.append(Import(_text(node).strip("\"'<>"), _line(node)))
    _add_shaped_uses(tree.root_node, source, first_at)
    references = tuple(ref for start, ref in first_at.items() if start not in definition_names)
    return ParsedFile(
        language=language,
        definitions=_nest(raw_defs, loaded, source),
        references=references,
        imports=tuple(imports),
        has_errors=tree.root_node.has_error,
    )


_SHAPED_NAME = re.compile(rb"\b(?:_?[A-Z][A-Z0-9_]+|_?[A-Z][a-z0-9]+[A-Za-z0-9]*)\b")
"""Names shaped like constants (`MAX_RETRIES`) or classes (`Shape`)."""


def _add_shaped_uses(root: Node, source: bytes, first_at: dict[int, Reference]) -> None:
    """Identifier uses (not calls) of constant- and class-shaped names, so "who uses MAX_RETRIES" or a
    class passed as a value has references; what declares a name (a local `const MAX = 3`, a parameter,
    an import's own name) is not a use of it. Lower-case names used as values are left out: they are
    mostly locals, and would nearly double the stored references.

    Found by scanning the text for the shape and asking the tree what each match is: several times
    cheaper than a query over every identifier with a regex predicate."""
    for match in _SHAPED_NAME.finditer(source):
        start, end = match.span()
        if start in first_at:
            continue
        node = root.named_descendant_for_byte_range(start, end)
        if (node is not None and node.type == "identifier" and node.start_byte == start
                and node.end_byte == end and not _declares(node)):
            first_at[start] = Reference(match.group().decode(), node.start_point.row + 1, "use")


_DECLARING_FIELDS = ("name", "declarator", "alias", "parameter")
"""Fields whose identifier a construct declares rather than uses: `const MAX = 3`, a parameter, `int
MAX;`, an import specifier's own name, `import x as Y`, a keyword argument's name, `Item => ...`."""
_DECLARING_PARENTS = frozenset(
    {"formal_parameters", "parameters", "lambda_parameters", "required_parameter", "optional_parameter",
     "typed_parameter", "list_splat_pattern", "dictionary_splat_pattern", "import_clause"}
)
_QUALIFYING_PARENTS = frozenset({"qualified_identifier", "scoped_identifier"})
"""`ns::MAX` and `Foo::BAR` name what they qualify in their `name` field: a use."""


def _declares(node: Node) -> bool:
    parent = node.parent
    if parent is None or parent.type in _QUALIFYING_PARENTS:
        return False
    if parent.type in _DECLARING_PARENTS:
        return True
    return any(node in parent.children_by_field_name(f) for f in _DECLARING_FIELDS)  # Go: `XX, YY int`


def _nest(raw: list[_RawDefinition], loaded: LoadedLanguage, source: bytes) -> tuple[Definition, ...]:
    """Give each definition its container and qualified name from how the ranges nest."""
    raw.sort(key=lambda d: (d.node.start_byte, -d.node.end_byte))
    stack: list[tuple[_RawDefinition, str, str]] = []
    result: list[Definition] = []
    for item in raw:
        while stack and stack[-1][0].node.end_byte < item.node.end_byte:
            stack.pop()
        parent_kind = stack[-1][2] if stack else ""
        container_name = ".".join([stack[-1][1], *item.scope] if stack else item.scope)
        kind = item.kind
        if kind == "function" and (item.scope or parent_kind in ("class", "interface")):
            kind = "method"
        elif kind == "method" and not item.scope and parent_kind not in ("class", "interface", "type"):
            kind = "function"
        qualified = f"{container_name}.{item.name}" if container_name else item.name
        result.append(
            Definition(
                name=item.name,
                qualified_name=qualified,
                kind=kind,
                line=_line(item.node),
                end_line=last_row(item.node) + 1,
                signature=_signature(item.node, source),
                doc=_doc(item.node, loaded.spec.name),
                container=container_name,
            )
        )
        if kind in _CONTAINER_KINDS:
            stack.append((item, qualified, kind))
    return tuple(result)


def _signature(node: Node, source: bytes) -> str:
    start_node = signature_node(node)
    body = node.child_by_field_name("body")
    value = node.child_by_field_name("value")
    if body is None and value is not None:
        body = value.child_by_field_name("body")
    if body is not None and body.start_byte > start_node.start_byte:
        end = body.start_byte
    else:
        newline = source.find(b"\n", start_node.start_byte, node.end_byte)
        end = newline if newline >= 0 else node.end_byte
    text = source[start_node.start_byte : min(end, start_node.start_byte + 4 * _MAX_SIGNATURE)]
    header = " ".join(text.decode("utf-8", "replace").split()).rstrip(" {:")
    return header[:_MAX_SIGNATURE]


def _doc(node: Node, language: str) -> str:
    if language == "python" and node.type in ("function_definition", "class_definition"):
        body = node.child_by_field_name("body")
        first = body.named_children[0] if body is not None and body.named_children else None
        if first is not None and first.type == "expression_statement":
            string = first.named_children[0] if first.named_children else None
            if string is not None and string.type == "string":
                return _clean_doc(_STRING_QUOTES.sub("", _text(string)))
    comments = leading_comment(outer_node(node))
    lines = (line.strip().lstrip("/*#!").rstrip("*/").strip() for c in comments for line in c.split("\n"))
    return _clean_doc("\n".join(line for line in lines if line))


def _clean_doc(text: str) -> str:
    return "\n".join(line.strip() for line in text.strip().splitlines())[:_MAX_DOC]


def _text(node: Node) -> str:
    return node.text.decode("utf-8", "replace") if node.text else ""


def _line(node: Node) -> int:
    return node.start_point.row + 1
