"""Which languages the index understands: grammar wheels, file extensions and tags queries."""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tree_sitter import Language, Query


# Queries of our own, added to the grammar's shipped tags.scm: imports (which tags.scm does not
# cover) and definitions users look for that the shipped queries miss.
_JS_IMPORTS_AND_EXPORTS = """
(import_statement source: (string (string_fragment) @import.module))
(call_expression function: (identifier) @_require arguments: (arguments (string (string_fragment) @import.module))
  (#eq? @_require "require"))
(export_statement declaration: (lexical_declaration (variable_declarator
  name: (identifier) @name value: [(arrow_function) (function_expression)]) @definition.function))
(method_definition name: (property_identifier) @name (#eq? @name "constructor")) @definition.method
(program (lexical_declaration (variable_declarator name: (identifier) @name value: (_VALUE)) @definition.constant))
(program (variable_declaration (variable_declarator name: (identifier) @name value: (_VALUE)) @definition.constant))
(export_statement declaration: (lexical_declaration
  (variable_declarator name: (identifier) @name value: (_VALUE)) @definition.constant))
""".replace("(_VALUE)", """[(number) (string) (template_string) (object) (array) (true) (false) (null) (regex)
  (identifier) (member_expression) (call_expression) (new_expression) (binary_expression) (unary_expression)]""")
_JSX_REFERENCES = """
(jsx_self_closing_element name: (identifier) @name) @reference.call
(jsx_opening_element name: (identifier) @name) @reference.call
"""
_TS_DEFINITIONS = """
(type_alias_declaration name: (type_identifier) @name) @definition.type
(enum_declaration name: (identifier) @name) @definition.type
(class_declaration name: (type_identifier) @name) @definition.class
(program (lexical_declaration (variable_declarator name: (identifier) @name
  value: [(as_expression) (satisfies_expression)]) @definition.constant))
(export_statement declaration: (lexical_declaration (variable_declarator name: (identifier) @name
  value: [(as_expression) (satisfies_expression)]) @definition.constant))
(extends_clause value: (identifier) @name) @reference.class
(implements_clause (type_identifier) @name) @reference.implementation
(public_field_definition name: (property_identifier) @name) @definition.field
"""
_C_FAMILY = """
(preproc_include path: (_) @import.module)
(preproc_def name: (identifier) @name) @definition.macro
(preproc_function_def name: (identifier) @name) @definition.macro
(call_expression function: (identifier) @name) @reference.call
(call_expression function: (field_expression field: (field_identifier) @name)) @reference.call
(type_identifier) @name @reference.type
(translation_unit (declaration declarator: (init_declarator declarator: [(identifier) @name
  (pointer_declarator declarator: (identifier) @name) (array_declarator declarator: (identifier) @name)]))
  @definition.constant)
(enumerator name: (identifier) @name) @definition.constant
"""

# Queries of our own, added to the grammar's shipped tags.scm: imports (which tags.scm does not
# cover), references beyond calls, and definitions users look for that the shipped queries miss.
_EXTRA_QUERIES: dict[str, str] = {
    "python": """
(import_statement name: (dotted_name) @import.module)
(import_statement name: (aliased_import name: (dotted_name) @import.module))
(import_from_statement module_name: (_) @import.module)
(class_definition superclasses: (argument_list (identifier) @name @reference.class))
(class_definition superclasses: (argument_list (attribute attribute: (identifier) @name) @reference.class))
(type (identifier) @name @reference.type)
(decorator (identifier) @name @reference.call)
""",
    "javascript": _JS_IMPORTS_AND_EXPORTS + _JSX_REFERENCES + """
(class_heritage (identifier) @name @reference.class)
(field_definition property: (property_identifier) @name) @definition.field
""",
    "typescript": _JS_IMPORTS_AND_EXPORTS + _TS_DEFINITIONS,
    "tsx": _JS_IMPORTS_AND_EXPORTS + _TS_DEFINITIONS + _JSX_REFERENCES,
    "go": """
(import_spec path: (interpreted_string_literal) @import.module)
(source_file (const_declaration (const_spec (identifier) @name) @definition.constant))
(source_file (var_declaration (var_spec (identifier) @name) @definition.constant))
(source_file (var_declaration (var_spec_list (var_spec (identifier) @name) @definition.constant)))
""",
    "rust": """
(use_declaration argument: (_) @import.module)
(function_signature_item name: (identifier) @name) @definition.method
(const_item name: (identifier) @name) @definition.constant
(static_item name: (identifier) @name) @definition.constant
(call_expression function: (scoped_identifier name: (identifier) @name)) @reference.call
(type_identifier) @name @reference.type
""",
    "java": """
(import_declaration (scoped_identifier) @import.module)
(constructor_declaration name: (identifier) @name) @definition.method
(enum_declaration name: (identifier) @name) @definition.class
(record_declaration name: (identifier) @name) @definition.class
(annotation_type_declaration name: (identifier) @name) @definition.interface
(field_declaration (modifiers "static" "final") declarator: (variable_declarator name: (identifier) @name))
  @definition.constant
(field_declaration (modifiers "final" "static") declarator: (variable_declarator name: (identifier) @name))
  @definition.constant
(field_declaration declarator: (variable_declarator name: (identifier) @name)) @definition.field
(constant_declaration declarator: (variable_declarator name: (identifier) @name)) @definition.constant
(enum_constant name: (identifier) @name) @definition.constant
(type_identifier) @name @reference.type
""",
    "c": _C_FAMILY,
    "cpp": _C_FAMILY + """
(namespace_definition body: (declaration_list
  (declaration declarator: (init_declarator declarator: (identifier) @name)) @definition.constant))
(namespace_definition name: (namespace_identifier) @name) @definition.module
(function_declarator declarator: (qualified_identifier
  name: [(identifier) (destructor_name) (operator_name)] @name)) @definition.method
(function_declarator declarator: (destructor_name) @name) @definition.method
(function_declarator declarator: (operator_name) @name) @definition.method
(call_expression function: (qualified_identifier name: (identifier) @name)) @reference.call
""",
}


@dataclass(frozen=True)
class LanguageSpec:
    """How to parse one language: its grammar wheel and the tags queries it ships."""

    name: str
    module: str
    """Import name of the grammar wheel."""
    extensions: tuple[str, ...]
    language_attr: str = "language"
    """The wheel's function that returns the grammar pointer."""
    tags_from: tuple[str, ...] = ()
    """Grammar wheels whose tags.scm to use (default: this language's own)."""
    extra: str = ""
    """Key into the extra queries (default: the language name)."""


LANGUAGES: tuple[LanguageSpec, ...] = (
    LanguageSpec("python", "tree_sitter_python", (".py", ".pyi")),
    LanguageSpec("javascript", "tree_sitter_javascript", (".js", ".jsx", ".mjs", ".cjs")),
    LanguageSpec(
        "typescript",
        "tree_sitter_typescript",
        (".ts", ".mts", ".cts"),
        language_attr="language_typescript",
        tags_from=("tree_sitter_javascript", "tree_sitter_typescript"),
    ),
    LanguageSpec(
        "tsx",
        "tree_sitter_typescript",
        (".tsx",),
        language_attr="language_tsx",
        tags_from=("tree_sitter_javascript", "tree_sitter_typescript"),
    ),
    LanguageSpec("go", "tree_sitter_go", (".go",)),
    LanguageSpec("rust", "tree_sitter_rust", (".rs",)),
    LanguageSpec("java", "tree_sitter_java", (".java",)),
    LanguageSpec("c", "tree_sitter_c", (".c", ".h")),
    LanguageSpec("cpp", "tree_sitter_cpp", (".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx")),
)

_BY_EXTENSION = {ext: spec for spec in LANGUAGES for ext in spec.extensions}


def language_for(path: str | PurePath) -> LanguageSpec | None:
    """The language of a file by its extension, or None when the index does not parse it."""
    return _BY_EXTENSION.get(PurePath(path).suffix.lower())


@dataclass(frozen=True)
class LoadedLanguage:
    """A grammar ready to parse, with its compiled tags query."""

    spec: LanguageSpec
    language: Language
    query: Query
    roles: dict[str, tuple[str, str]]
    """Each capture name's role (`definition`, `reference`, `import` or empty) and kind (`function`, `call`)."""


@functools.cache
def load(name: str) -> LoadedLanguage:
    """Load a grammar and compile its tags query (once per process)."""
    from tree_sitter import Language, Query

    spec = next(s for s in LANGUAGES if s.name == name)
    module = importlib.import_module(spec.module)
    language = Language(getattr(module, spec.language_attr)())
    sources = [importlib.import_module(m).TAGS_QUERY for m in spec.tags_from or (spec.module,)]
    sources.append(_EXTRA_QUERIES.get(spec.extra or spec.name, ""))
    query = Query(language, "\n".join(sources))
    names = [query.capture_name(i) for i in range(query.capture_count)]
    return LoadedLanguage(spec, language, query, {name: _role(name) for name in names})


def _role(capture: str) -> tuple[str, str]:
    role, _, kind = capture.partition(".")
    if role in ("definition", "reference"):
        return role, kind
    return ("import", "") if capture == "import.module" else ("", "")
