"""Which languages the index understands: grammar wheels, file extensions and tags queries."""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from pathlib import PurePath

from tree_sitter import Language, Query

# Queries of our own, added to the grammar's shipped tags.scm: imports (which tags.scm does not
# cover) and definitions users look for that the shipped queries miss.
_EXTRA_QUERIES: dict[str, str] = {
    "python": """
(import_statement name: (dotted_name) @import.module)
(import_statement name: (aliased_import name: (dotted_name) @import.module))
(import_from_statement module_name: (_) @import.module)
""",
    "javascript": """
(import_statement source: (string (string_fragment) @import.module))
(export_statement declaration: (lexical_declaration (variable_declarator
  name: (identifier) @name value: (arrow_function)) @definition.function))
""",
    "typescript": """
(import_statement source: (string (string_fragment) @import.module))
(type_alias_declaration name: (type_identifier) @name) @definition.type
(enum_declaration name: (identifier) @name) @definition.type
""",
    "go": """
(import_spec path: (interpreted_string_literal) @import.module)
""",
    "rust": """
(use_declaration argument: (_) @import.module)
""",
    "java": """
(import_declaration (scoped_identifier) @import.module)
(constructor_declaration name: (identifier) @name) @definition.method
(enum_declaration name: (identifier) @name) @definition.class
""",
    "c": """
(preproc_include path: (_) @import.module)
""",
    "cpp": """
(preproc_include path: (_) @import.module)
(namespace_definition name: (namespace_identifier) @name) @definition.module
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
        extra="typescript",
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


@functools.cache
def load(name: str) -> LoadedLanguage:
    """Load a grammar and compile its tags query (once per process)."""
    spec = next(s for s in LANGUAGES if s.name == name)
    module = importlib.import_module(spec.module)
    language = Language(getattr(module, spec.language_attr)())
    sources = [importlib.import_module(m).TAGS_QUERY for m in spec.tags_from or (spec.module,)]
    sources.append(_EXTRA_QUERIES.get(spec.extra or spec.name, ""))
    return LoadedLanguage(spec, language, Query(language, "\n".join(sources)))
