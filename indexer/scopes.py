"""Language rules the tags queries cannot express: a definition's full node, outer scope and comment.

Tags queries capture the node that names a definition. Some of those nodes are too small (a C
`function_declarator` without its body), some definitions belong to a scope they are not nested in
(a Go method's receiver, a Rust `impl` block, C++ `Rect::area`), and doc comments sit before wrapper
nodes (`export`, decorators, Go `type (...)`). These functions find what the parser needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tree_sitter import Node


_DECLARATORS = frozenset({"function_declarator", "pointer_declarator", "reference_declarator"})
_C_DEFINITION_PARENTS = frozenset({"function_definition", "field_declaration", "declaration"})
_WRAPPERS = frozenset(
    {"export_statement", "decorated_definition", "type_declaration", "lexical_declaration",
     "variable_declaration", "template_declaration", "const_declaration", "var_declaration"}
)
"""Nodes that wrap a definition; its doc comment comes before them."""
_SIGNATURE_WRAPPERS = _WRAPPERS - {"decorated_definition", "template_declaration"}
_COMMENTS = frozenset({"comment", "line_comment", "block_comment"})
_SKIPPED_BEFORE_DEFINITION = frozenset({"attribute_item", "decorator", "annotation", "marker_annotation"})


def definition_node(node: Node, language: str) -> Node | None:
    """The node whose range a definition covers; None when the capture is only a declaration.

    A C or C++ function's tags capture is its declarator: widen it to the definition. A top-level
    prototype (`int add(int, int);`) is not a definition and yields None.
    """
    if language not in ("c", "cpp") or node.type != "function_declarator":
        return node
    outer = node
    while outer.parent is not None and outer.parent.type in _DECLARATORS:
        outer = outer.parent
    parent = outer.parent
    if parent is None or parent.type not in _C_DEFINITION_PARENTS:
        return node
    if parent.type == "declaration" and (parent.parent is None or parent.parent.type != "field_declaration_list"):
        return None
    if parent.parent is not None and parent.parent.type == "template_declaration":
        return parent.parent
    return parent


def outer_node(node: Node) -> Node:
    """The outermost wrapper of a definition (export, decorator, declaration list of one)."""
    while node.parent is not None and node.parent.type in _WRAPPERS | {"variable_declarator"}:
        node = node.parent
    return node


def signature_node(node: Node) -> Node:
    """The node a definition's signature starts at: its export or declaration keyword, not decorators."""
    while node.parent is not None and node.parent.type in _SIGNATURE_WRAPPERS | {"variable_declarator"}:
        node = node.parent
    return node


def explicit_scope(node: Node, language: str) -> list[str]:
    """The scope a definition names outside its nesting: Go receiver, Rust impl type, C++ `A::b`."""
    if language == "go" and node.type == "method_declaration":
        receiver = node.child_by_field_name("receiver")
        name = _first_of_type(receiver, "type_identifier") if receiver is not None else None
        return [name] if name else []
    if language == "rust" and node.type == "function_item":
        parent = node.parent
        if parent is not None and parent.type == "declaration_list" and parent.parent is not None:
            impl = parent.parent
            if impl.type == "impl_item":
                type_node = impl.child_by_field_name("type")
                name = _type_name(type_node) if type_node is not None else None
                return [name] if name else []
        return []
    if language == "cpp":
        declarator = _function_declarator(node)
        target = declarator.child_by_field_name("declarator") if declarator is not None else None
        if target is not None and target.type == "qualified_identifier":
            return _cpp_scope(target)
    return []


def leading_comment(node: Node) -> list[str]:
    """Comments directly above a definition (no blank line between), skipping attributes."""
    comments: list[str] = []
    sibling = node.prev_named_sibling
    expected_row = node.start_point.row - 1
    while sibling is not None and last_row(sibling) == expected_row:
        if sibling.type in _COMMENTS:
            before = sibling.prev_named_sibling
            if before is not None and last_row(before) == sibling.start_point.row:
                break  # a trailing comment on the line of code above: not ours
            comments.append(_text(sibling))
        elif sibling.type not in _SKIPPED_BEFORE_DEFINITION:
            break
        expected_row = sibling.start_point.row - 1
        sibling = sibling.prev_named_sibling
    comments.reverse()
    return comments


def last_row(node: Node) -> int:
    """The 0-based last row a node covers (a node that ends with its newline ends on the line before)."""
    end = node.end_point
    return end.row - 1 if end.column == 0 and end.row > node.start_point.row else end.row


def _function_declarator(node: Node) -> Node | None:
    if node.type == "function_declarator":
        return node
    if node.type == "template_declaration":
        inner = [c for c in node.named_children if c.type in _C_DEFINITION_PARENTS]
        if not inner:
            return None
        node = inner[0]
    declarator = node.child_by_field_name("declarator")
    while declarator is not None and declarator.type != "function_declarator":
        declarator = declarator.child_by_field_name("declarator")
    return declarator


def _cpp_scope(qualified: Node) -> list[str]:
    parts: list[str] = []
    while qualified is not None and qualified.type == "qualified_identifier":
        scope = qualified.child_by_field_name("scope")
        if scope is not None:
            name = _type_name(scope)
            if name:
                parts.append(name)
        qualified = qualified.child_by_field_name("name")
    return parts


def _type_name(node: Node) -> str | None:
    if node.type in ("type_identifier", "namespace_identifier", "identifier"):
        return _text(node)
    if node.type in ("generic_type", "template_type", "scoped_type_identifier"):
        inner = node.child_by_field_name("type") or node.child_by_field_name("name")
        return _type_name(inner) if inner is not None else None
    return _first_of_type(node, "type_identifier")


def _first_of_type(node: Node, kind: str) -> str | None:
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == kind:
            return _text(current)
        stack.extend(reversed(current.named_children))
    return None


def _text(node: Node) -> str:
    return node.text.decode("utf-8", "replace") if node.text else ""
