"""Definitions, containers, docs, references and imports for every language, from the fixture repos."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.languages import LANGUAGES, language_for
from indexer.parse import Definition, ParsedFile, parse_source

LANGS = Path(__file__).parents[1] / "fixtures" / "langs"


def parse_fixture(rel: str) -> ParsedFile:
    path = LANGS / rel
    spec = language_for(path)
    assert spec is not None
    return parse_source(spec.name, path.read_bytes())


# (file, {(qualified name, kind, line)}) for every definition the fixture holds.
EXPECTED_DEFINITIONS = {
    "python/shapes.py": {
        ("helper", "function", 7), ("decorated_top", "function", 13), ("Shape", "class", 18),
        ("Shape.area", "method", 21), ("Shape.name", "method", 26), ("Shape.unit", "method", 30),
        ("Circle", "class", 34), ("Circle.__init__", "method", 37), ("Circle.area", "method", 40),
        ("Circle.Inner", "class", 43), ("Circle.Inner.deep", "method", 44),
    },
    "javascript/app.js": {
        ("greet", "function", 5), ("add", "function", 10), ("local", "function", 12),
        ("exported", "function", 14), ("Widget", "class", 18), ("Widget.constructor", "method", 19),
        ("Widget.render", "method", 23), ("Panel", "class", 28), ("Panel.show", "method", 29),
    },
    "typescript/service.ts": {
        ("Repo", "interface", 3), ("Repo.find", "method", 4), ("Id", "type", 7), ("Color", "type", 9),
        ("makeService", "function", 15), ("Service", "class", 17), ("Service.constructor", "method", 18),
        ("Service.lookup", "method", 20), ("topLevel", "function", 25), ("topLevel.find", "function", 26),
    },
    "typescript/view.tsx": {
        ("Button", "function", 3), ("Page", "function", 5), ("Store", "class", 9), ("Store.load", "method", 10),
    },
    "go/server.go": {
        ("Server", "type", 9), ("Handler", "type", 14), ("NewServer", "function", 19),
        ("Server.Start", "method", 24), ("Server.listen", "method", 29), ("Version", "constant", 33),
    },
    "rust/lib.rs": {
        ("Store", "class", 4), ("Kind", "class", 8), ("Named", "interface", 13), ("Named.name", "method", 14),
        ("Store.new", "method", 19), ("Store.get", "method", 23), ("Store.name", "method", 29),
        ("helper", "function", 34), ("inner", "module", 38), ("inner.nested", "function", 39),
        ("make", "macro", 42),
    },
    "java/com/example/Account.java": {
        ("Account", "class", 6), ("Account.Account", "method", 9), ("Account.deposit", "method", 14),
        ("Account.audit", "method", 19), ("Account.Listener", "interface", 23),
        ("Account.Listener.onChange", "method", 24), ("Account.State", "class", 27),
        ("Account.balance", "field", 7), ("Account.State.OPEN", "constant", 27),
        ("Account.State.CLOSED", "constant", 27),
    },
    "c/util.c": {
        ("MAX_ITEMS", "macro", 4), ("point", "class", 7), ("point_t", "type", 12), ("add", "function", 15),
        ("show", "function", 19),
    },
    "cpp/shape.cpp": {
        ("geo", "module", 4), ("geo.Rect", "class", 7), ("geo.Rect.Rect", "method", 9),
        ("geo.Rect.area", "method", 10), ("geo.Rect.inline_perimeter", "method", 11),
        ("geo.Rect.Rect", "method", 16), ("geo.Rect.area", "method", 19), ("geo.total", "function", 23),
    },
}


@pytest.mark.parametrize("rel", sorted(EXPECTED_DEFINITIONS))
def test_definitions_match_the_fixture_exactly(rel: str) -> None:
    parsed = parse_fixture(rel)
    found = {(d.qualified_name, d.kind, d.line) for d in parsed.definitions}
    assert found == EXPECTED_DEFINITIONS[rel]
    assert not parsed.has_errors


def test_every_language_has_a_fixture() -> None:
    covered = {language_for(rel).name for rel in EXPECTED_DEFINITIONS}  # type: ignore[union-attr]
    assert covered == {spec.name for spec in LANGUAGES}


def _by_qualified(parsed: ParsedFile, qualified: str, line: int | None = None) -> Definition:
    matches = [d for d in parsed.definitions if d.qualified_name == qualified and line in (None, d.line)]
    assert matches, qualified
    return matches[0]


@pytest.mark.parametrize(
    ("rel", "qualified", "line", "end_line", "container", "signature", "doc"),
    [
        ("python/shapes.py", "Shape.area", 21, 23, "Shape", "def area(self)", "Area of the shape."),
        ("python/shapes.py", "decorated_top", 13, 15, "", "def decorated_top(self)", "A decorated function."),
        ("javascript/app.js", "add", 10, 10, "", "export const add = (a, b) =>", "Adds two numbers."),
        ("javascript/app.js", "greet", 5, 7, "", "function greet(name)", "Greets a person."),
        ("typescript/service.ts", "makeService", 15, 15, "", "export const makeService = (repo: Repo): Service =>",
         "Makes a service."),
        ("go/server.go", "Server.Start", 24, 27, "Server", "func (s *Server) Start() error",
         "Start starts the server."),
        ("go/server.go", "Server", 9, 11, "", "type Server struct", "Server serves things."),
        ("rust/lib.rs", "Store.new", 19, 21, "Store", "pub fn new() -> Self", "Makes an empty store."),
        ("rust/lib.rs", "Store", 4, 6, "", "pub struct Store", "A store of things."),
        ("java/com/example/Account.java", "Account.deposit", 14, 17, "Account", "public void deposit(int amount)",
         "Deposit money."),
        ("c/util.c", "add", 15, 17, "", "int add(int a, int b)", "Adds two ints."),
        ("cpp/shape.cpp", "geo.Rect.area", 19, 21, "geo.Rect", "double Rect::area() const", "Area of a rectangle."),
    ],
)
def test_definition_details(
    rel: str, qualified: str, line: int, end_line: int, container: str, signature: str, doc: str
) -> None:
    d = _by_qualified(parse_fixture(rel), qualified, line)
    assert (d.line, d.end_line, d.container, d.signature, d.doc) == (line, end_line, container, signature, doc)


EXPECTED_REFERENCES = {
    "python/shapes.py": {("helper", "call"), ("Circle", "call"), ("Shape", "class"), ("cached_property", "call")},
    "javascript/app.js": {("greet", "call"), ("add", "call"), ("render", "call"), ("Widget", "class")},
    "typescript/service.ts": {("makeService", "call"), ("lookup", "call"), ("Service", "class"), ("Repo", "type")},
    "typescript/view.tsx": {("Button", "call")},
    "go/server.go": {("Println", "call"), ("listen", "call"), ("Server", "type")},
    "rust/lib.rs": {("helper", "call"), ("new", "call"), ("Store", "implementation"), ("Named", "implementation")},
    "java/com/example/Account.java": {("audit", "call"), ("println", "call")},
    "c/util.c": {("add", "call"), ("printf", "call"), ("point_t", "type")},
    "cpp/shape.cpp": {("area", "call"), ("Rect", "type")},
}


@pytest.mark.parametrize("rel", sorted(EXPECTED_REFERENCES))
def test_references_include_calls_and_type_uses(rel: str) -> None:
    found = {(r.name, r.kind) for r in parse_fixture(rel).references}
    assert EXPECTED_REFERENCES[rel] <= found


def test_a_definition_name_is_not_its_own_reference() -> None:
    parsed = parse_fixture("rust/lib.rs")
    assert ("Store", 4) not in {(r.name, r.line) for r in parsed.references}
    assert ("Store", 17) in {(r.name, r.line) for r in parsed.references}  # impl Store


EXPECTED_IMPORTS = {
    "python/shapes.py": ["math", "functools"],
    "javascript/app.js": ["fs", "path"],
    "typescript/service.ts": ["./widget"],
    "typescript/view.tsx": ["react"],
    "go/server.go": ["fmt", "net/http"],
    "rust/lib.rs": ["std::collections::HashMap"],
    "java/com/example/Account.java": ["java.util.List"],
    "c/util.c": ["stdio.h", "util.h"],
    "cpp/shape.cpp": ["vector", "shape.hpp"],
}


@pytest.mark.parametrize("rel", sorted(EXPECTED_IMPORTS))
def test_imports(rel: str) -> None:
    assert [i.module for i in parse_fixture(rel).imports] == EXPECTED_IMPORTS[rel]


def test_a_c_prototype_is_not_a_definition() -> None:
    parsed = parse_fixture("c/util.h")
    assert [d.name for d in parsed.definitions] == ["UTIL_H"]


def test_commonjs_require_is_an_import() -> None:
    parsed = parse_source("javascript", b'const fs = require("fs");\nfs.readFileSync("x");\n')
    assert [i.module for i in parsed.imports] == ["fs"]
    assert "require" not in {r.name for r in parsed.references}


def test_cpp_template_and_destructor() -> None:
    source = b"template <typename T>\nT Box<T>::get() const { return v; }\nBox::~Box() {}\n"
    parsed = parse_source("cpp", source)
    found = {(d.qualified_name, d.kind, d.line, d.end_line) for d in parsed.definitions}
    assert found == {("Box.get", "method", 1, 2), ("Box.~Box", "method", 3, 3)}


@pytest.mark.parametrize(
    ("language", "source", "line"),
    [
        ("python", b"MAX_RETRIES = 3\n\ndef retry(n):\n    return n < MAX_RETRIES\n", 4),
        ("go", b"package p\n\nconst MaxRetries = 3\n\nfunc retry(n int) bool {\n\treturn n < MaxRetries\n}\n", 6),
        ("rust", b"const MAX_RETRIES: u32 = 3;\n\nfn retry(n: u32) -> bool {\n    n < MAX_RETRIES\n}\n", 4),
        ("javascript", b"export const MAX_RETRIES = 3;\n\nfunction retry(n) {\n  return n < MAX_RETRIES;\n}\n", 4),
        ("typescript", b"const MAX_RETRIES: number = 3;\nconst retry = (n: number) =>\n  n < MAX_RETRIES;\n", 3),
        ("java", b"class R {\n  static final int MAX_RETRIES = 3;\n  boolean f(int n) { return n < MAX_RETRIES; }\n}",
         3),
        ("c", b"#define MAX_RETRIES 3\n\nint retry(int n) {\n    return n < MAX_RETRIES;\n}\n", 4),
        ("cpp", b"namespace cfg { const int MAX_RETRIES = 3; }\nbool retry(int n) {\n  return n < cfg::MAX_RETRIES;\n}",
         3),
    ],
)
def test_constant_and_class_shaped_names_used_as_values_are_references(
    language: str, source: bytes, line: int
) -> None:
    parsed = parse_source(language, source)
    uses = [(r.name, r.line, r.kind) for r in parsed.references if r.name.lower() == "max_retries"
            or r.name == "MaxRetries"]
    assert uses == [(uses[0][0], line, "use")]  # the use, and not the definition's own name


@pytest.mark.parametrize(
    ("language", "source", "kind"),
    [
        ("javascript", b"const MAX_RETRIES = 3;\n", "constant"),
        ("javascript", b"export const other = 2, MAX_RETRIES = 5;\n", "constant"),
        ("typescript", b"export const MAX_RETRIES: number = 3;\n", "constant"),
        ("java", b"class R { final static int MAX_RETRIES = 3; }\n", "constant"),
        ("java", b"class R { private int MAX_RETRIES; }\n", "field"),
        ("c", b"static const int MAX_RETRIES = 3;\n", "constant"),
        ("c", b"enum limits { MAX_RETRIES, MIN_RETRIES };\n", "constant"),
        ("cpp", b"namespace cfg { const int MAX_RETRIES = 3; }\n", "constant"),
        ("c", b"int MIN_RETRIES = 1, MAX_RETRIES = 3;\n", "constant"),  # the second name of a declaration
        ("c", b"static const char *MAX_RETRIES = \"3\";\n", "constant"),
        ("java", b"class R { static final int MIN_RETRIES = 1, MAX_RETRIES = 3; }\n", "constant"),
        ("typescript", b"export const MAX_RETRIES = { n: 3 } as const;\n", "constant"),
        ("go", b"package p\n\nconst MIN_RETRIES, MAX_RETRIES = 1, 3\n", "constant"),
        ("go", b"package p\n\nvar (\n\tlimit, MAX_RETRIES int\n)\n", "constant"),
    ],
)
def test_top_level_constants_enumerators_and_fields_are_definitions(
    language: str, source: bytes, kind: str
) -> None:
    found = {d.name: d.kind for d in parse_source(language, source).definitions}
    assert found.get("MAX_RETRIES") == kind


def test_the_blank_identifier_is_not_a_definition_but_a_function_named_underscore_is() -> None:
    parsed = parse_source("go", b"package p\n\nvar _ = fmt.Sprintf\nvar Limit = 3\n")
    assert [d.name for d in parsed.definitions] == ["Limit"]
    registered = parse_source("python", b"@area.register\ndef _(shape: Circle) -> float:\n    return 0.0\n")
    assert [(d.name, d.kind) for d in registered.definitions] == [("_", "function")]


@pytest.mark.parametrize(
    ("language", "source"),
    [
        ("javascript", b"import { MAX_A } from 'x';\nfunction f(MAX_B) { const MAX_C = 1; }\n"),
        ("typescript", b"function f(MAX_B: number) { const MAX_C = 1; }\n"),
        ("java", b"class A { void f(int MAX_B) { int MAX_C = 1; } }\n"),
        ("c", b"int f(int MAX_B) { int MAX_C = 1; return 0; }\nint MAX_A(void);\n"),
        ("python", b"def f(MAX_B, MAX_C=1):\n    g(MAX_A=2)\n"),
        ("python", b"import numpy as MAX_A\ndef f(MAX_B: int, *MAX_C):\n    pass\n"),
        ("javascript", b"import MAX_A from 'a';\nconst f = MAX_B => 1;\ntry {} catch (MAX_C) {}\n"),
        ("go", b"package p\n\nfunc f(MAX_A, MAX_B int, MAX_C string) {}\n"),
    ],
)
def test_declaring_a_name_is_not_a_use_of_it(language: str, source: bytes) -> None:
    names = {r.name for r in parse_source(language, source).references}
    assert not names & {"MAX_A", "MAX_B", "MAX_C"}


def test_a_call_is_one_reference_not_also_a_use() -> None:
    parsed = parse_source("python", b"class Shape:\n    pass\n\ndef make():\n    return Shape()\n")
    assert [(r.name, r.line, r.kind) for r in parsed.references] == [("Shape", 5, "call")]
