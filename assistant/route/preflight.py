"""Pre-flight: answer what the index knows exactly (definitions, callers, outlines, grep) with no model."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from assistant.answer import Source
from indexer.clues import code_names
from indexer.grep import grep, smart_case
from indexer.store import IndexStore, Symbol

_NAME = r"`?(?P<name>[A-Za-z_$][\w$]*(?:(?:\.|::)[A-Za-z_$][\w$]*)*)`?(?:\(\))?"
_KIND = r"(?:the\s+)?(?:(?:class|function|method|def|symbol|type|struct|interface|trait|enum|variable|constant)\s+)?"
_END = r"\s*[?.!]*\s*$"
_SCOPE = r"(?:\s+(?:in|inside|within|from)\s+(?:the\s+)?`?(?P<scope>[\w./-]+)`?)?"
"""An optional "in FILE" after a name; a scope that is not a path ("in the stdlib") restricts nothing."""
_CODE_LIKE = r"(?-i:(?=`|[\w$]*[.$]|\w+_|_|[a-z$]*[A-Z]))"
"""Lookahead: the name is backticked, dotted, snake_case or camelCase (not a plain English word)."""

_DEFINITION = [
    re.compile(rf"^\s*(?:where(?:'s|\s+is|\s+are)?)\s+{_KIND}{_NAME}\s+(?:defined|declared|implemented){_END}", re.I),
    re.compile(rf"^\s*(?P<broad>where(?:'s|\s+is))\s+{_KIND}{_NAME}{_END}", re.I),
    re.compile(rf"^\s*(?P<broad>find|locate|go\s+to|jump\s+to|show\s+me)\s+{_KIND}{_NAME}{_END}", re.I),
    re.compile(rf"^\s*(?:find\s+)?(?:the\s+)?definition\s+of\s+{_KIND}{_NAME}{_END}", re.I),
    re.compile(rf"^\s*(?:in\s+)?which\s+file\s+(?:is|are)\s+{_KIND}{_NAME}\s+(?:defined|declared){_END}", re.I),
    re.compile(rf"^\s*(?:in\s+)?(?:which|what)\s+(?:module|file|package)\s+(?:defines|has|contains|declares|"
               rf"implements)\s+{_KIND}{_NAME}{_END}", re.I),
    re.compile(rf"^\s*show\s+{_CODE_LIKE}{_NAME}{_END}", re.I),
    re.compile(rf"^\s*(?:def|definition)\s+(?:for|of)\s+{_KIND}{_NAME}(?:,?\s+please)?{_END}", re.I),
    re.compile(rf"^\s*(?P<broad>){_KIND}{_NAME}(?:\s+(?:def|definition))?{_END}", re.I),
]
"""The last one is a bare name ("total_area", "`Circle.area`?", "def parse", "Shape.area def?")."""
_CALLERS = [
    re.compile(rf"^\s*(?:who|what)\s+(?:calls|uses|references)\s+{_KIND}{_NAME}{_SCOPE}{_END}", re.I),
    re.compile(
        r"^\s*(?:find\s+|show\s+|list\s+)?(?:all\s+)?(?:the\s+)?(?:callers|usages|uses|references)\s+(?:of|to)\s+"
        rf"{_KIND}{_NAME}{_END}",
        re.I,
    ),
    re.compile(rf"^\s*where\s+(?:is|are)\s+{_KIND}{_NAME}\s+(?:called|used|referenced|instantiated){_END}", re.I),
    re.compile(rf"^\s*(?:who|what)(?:'s|s|\s+is)\s+(?:using|calling|referencing)\s+{_KIND}{_NAME}{_END}", re.I),
    re.compile(rf"^\s*(?:what|which)\s+(?:files|modules|functions)\s+(?:use|call|reference)\s+{_KIND}{_NAME}{_END}",
               re.I),
]
_IMPORTERS = [
    re.compile(rf"^\s*(?:(?:what|which)\s+)?(?:files|modules|who|what)\s+(?:that\s+)?(?:imports?|importing)\s+"
               rf"{_KIND}{_NAME}{_END}", re.I),
]
_BOTH_WAYS = [
    re.compile(rf"^\s*(?:who|what)\s+calls\s+{_KIND}{_NAME}\s+and\s+what\s+does\s+it\s+call{_END}", re.I),
    re.compile(rf"^\s*what\s+does\s+{_KIND}{_NAME}\s+call\s+and\s+(?:who|what)\s+calls\s+it{_END}", re.I),
    re.compile(rf"^\s*(?:show\s+|list\s+)?(?:the\s+)?callers\s+and\s+callees\s+of\s+{_KIND}{_NAME}{_END}", re.I),
]
"""Callers and callees of one definition in one answer."""
_OUTLINE = [
    re.compile(
        r"^\s*(?:what(?:'s|\s+is)\s+in|(?:the\s+)?outline(?:\s+of)?|list\s+(?:the\s+)?(?:symbols|definitions)\s+in|"
        r"show\s+(?:the\s+)?outline\s+of)\s+(?:the\s+file\s+)?`?(?P<path>[\w./-]+\.\w+)`?" + _END,
        re.I,
    ),
]
_LIST = re.compile(
    r"^\s*(?:list|show)\s+(?:me\s+)?(?:all\s+)?(?:the\s+)?(?P<kind>classes|functions|methods|interfaces|types)"
    r"(?:\s+in\s+`?(?P<path>[\w./-]+)`?)?" + _END,
    re.I,
)
_TEXT = r"""(?:"(?P<dq>[^"]+)"|'(?P<sq>[^']+)'|`(?P<bq>[^`]+)`|(?P<word>[^\s"'`]+))"""
"""The text to search for: quoted, or one word."""
_GREP = [
    re.compile(r"^\s*(?:grep|rg|ripgrep)\s+(?:for\s+)?" + _TEXT + r"\s*$", re.I),
    re.compile(r"^\s*(?:grep|rg|ripgrep)\s+(?:for\s+)?(?P<rest>[^\s\-].*?)\s*$", re.I),
    re.compile(r"^\s*(?:search|look)\s+(?:through\s+)?(?:the\s+)?(?:code(?:base)?|repo(?:sitory)?|project|source|"
               r"files)\s+for\s+" + _TEXT + _END, re.I),
    re.compile(r"^\s*(?:find|list|show)\s+(?:me\s+)?(?:all\s+)?(?:the\s+)?(?:occurrences|mentions|lines)\s+"
               r"(?:of|with|containing|mentioning)\s+" + _TEXT + _END, re.I),
    re.compile(r"^\s*(?:which|what)\s+files\s+(?:mention|contain|include)\s+" + _TEXT + _END, re.I),
    re.compile(r"^\s*(?:find|list|show)\s+(?:me\s+)?(?:all\s+)?(?:the\s+)?(?-i:(?P<marker>TODO|FIXME|XXX|HACK))s?"
               r"(?:\s+(?:comments?|notes?))?" + _END, re.I),
    re.compile(r"^\s*where\s+(?:is|does)\s+(?:the\s+)?(?:string|text|(?:error\s+|log\s+)?message)\s+"
               r"""(?:"(?P<dq>[^"]+)"|'(?P<sq>[^']+)'|`(?P<bq>[^`]+)`)"""
               r"(?:\s+(?:come\s+from|appear|get\s+printed|printed|raised|used|defined))?" + _END, re.I),
]
"""Grep-like questions: the literal text is searched in every indexed file."""
_NAMED = re.compile(r"`([A-Za-z_$][\w$.:]*)(?:\(\))?`|(?<![\w.])([A-Za-z_]\w*(?:(?:\.|::)[A-Za-z_]\w*)+|"
                    r"[A-Za-z]+_\w+|_\w+|[A-Z][a-z0-9]+[A-Z]\w*)(?![\w])")
"""Code-like names in a question: backticked, dotted, snake_case, _private or CamelCase."""
_ASKS_WHERE_CODE_IS = re.compile(
    r"\b(defined|declared|implemented|located|lives?|files?|modules?|package|called|used|referenced|references|"
    r"callers|usages|find|locate|go\s+to|jump\s+to)\b", re.I)
"""Words that ask where code is or who uses it: without one, a question labelled `lookup` ("where does X
print to?", "which item does X remove?") asks about behaviour, which a definition's place does not answer."""
_MAX_LISTED = 50
_ATTACHED = re.compile(r"(?<![`\w.])(?:this|these|above|below|attached|piped|stdin|following|here|snippet|"
                       r"(?:the|my)\s+(?:diff|patch|changes?|log|output|error|traceback))"
                       r"(?![\w`])", re.I)
"""Words by which a question points at text given with it ("review this", "the diff", "above")."""


@dataclass(frozen=True)
class IndexAnswer:
    """An answer the index gave by itself."""

    text: str
    sources: tuple[Source, ...]
    kind: str = "lookup"
    found: bool = True
    """False when the index does not know the name or path asked about (the text says so, with close names)."""


def preflight(question: str, store: IndexStore, root: Path | None = None) -> IndexAnswer | None:
    """Answer `question` from the index alone, or None when it needs a model. With the repository's
    `root`, grep-like questions are answered too (from the files the index covers)."""
    handlers: list[tuple[list[re.Pattern[str]], Callable[[re.Match[str], IndexStore], IndexAnswer | None]]] = [
        (_BOTH_WAYS, _both_ways),
        (_IMPORTERS, _importers),
        (_DEFINITION, _definition),
        (_CALLERS, _callers),
        (_OUTLINE, _outline),
        ([_LIST], _list),
    ]
    if root is not None:
        handlers.append((_GREP, lambda match, store: _grep(match, store, root)))
    for patterns, handler in handlers:
        for pattern in patterns:
            match = pattern.match(question)
            if match:
                return handler(match, store)
    return None


_PRONOUN = re.compile(r"\b(?:it|this|that)\b", re.I)
_LEADING = re.compile(r"^\s*(?:and|so|then|also|now|ok(?:ay)?)\b[\s,]*", re.I)


def follow_up(question: str, earlier: str) -> str | None:
    """A follow-up ("and who calls it?") with its pronoun replaced by what the `earlier` question of the
    conversation was about (one name or file: "where is Stack defined?" -> "who calls Stack?"); None when
    it has no pronoun or the earlier question no one subject. The caller asks the index with it."""
    subject = subject_of(earlier)
    if subject is None or not _PRONOUN.search(question):
        return None
    return _PRONOUN.sub(lambda _: subject, _LEADING.sub("", question), count=1)


def subject_of(question: str) -> str | None:
    """The name or file one question is about: what an index question names, else its one code-shaped name."""
    for patterns in (_DEFINITION, _CALLERS, _IMPORTERS, _OUTLINE):
        for pattern in patterns:
            if match := pattern.match(question):
                return match["name"] if "name" in pattern.groupindex else match["path"]
    names = code_names(question)
    return names[0] if len(names) == 1 else None


def refers_to_attached(question: str) -> bool:
    """Whether `question` is about text given with it (piped stdin): then the index's answer is not the answer."""
    return _ATTACHED.search(question) is not None


def answer_lookup(question: str, store: IndexStore, max_names: int = 3, per_name: int = 10) -> IndexAnswer | None:
    """For a question the router labelled `lookup` that no pattern above matched: where each code-like
    name it mentions is defined and referenced, or None when it names nothing the index defines or does
    not ask where code is."""
    if not _ASKS_WHERE_CODE_IS.search(question):
        return None
    found = [(n, _definitions(n.replace("::", "."), store))
             for n in dict.fromkeys(m.group(1) or m.group(2) for m in _NAMED.finditer(question))]
    found = [(name, symbols) for name, symbols in found if symbols][:max_names]
    if not found:
        return None
    lines: list[str] = []
    sources: list[Source] = []
    for name, symbols in found:
        usages = store.usages(name, limit=per_name + 1)
        lines.append(f"{name} is defined at:")
        lines += [f"  {_where(s)}  {_describe(s)}" for s in symbols[:per_name]]
        sources += [_source(s) for s in symbols[:per_name]]
        if usages:
            lines.append(f"  referenced at{f' (first {per_name})' if len(usages) > per_name else ''}:")
            lines += [f"    {u.path}:{u.line}{f' in {u.enclosing}' if u.enclosing else ''}" for u in usages[:per_name]]
            sources += [Source(u.path, u.line, u.enclosing) for u in usages[:per_name]]
    return IndexAnswer("\n".join(lines), tuple(dict.fromkeys(sources)))


def _definitions(name: str, store: IndexStore) -> list[Symbol]:
    """Definitions of `name`; `module.name` also finds `name` defined in a file of that module."""
    symbols = store.definitions(name)
    if symbols or "." not in name:
        return symbols
    module, short = name.rsplit(".", 1)
    folder = module.replace(".", "/")
    return [s for s in store.definitions(short)
            if s.path.removesuffix(".py").endswith(folder) or f"/{folder}/" in f"/{s.path}"]


def _definition(match: re.Match[str], store: IndexStore) -> IndexAnswer | None:
    name = match["name"].replace("::", ".")
    broad = match.groupdict().get("broad") is not None and not re.match(_CODE_LIKE, match["name"])
    if broad and not _definitions(name, store):
        return None  # "find tests", "where is the bug?": a plain word, not a symbol; a model can help
    return definition_answer(name, store)


def definition_answer(name: str, store: IndexStore) -> IndexAnswer:
    """Where `name` (a name, `Class.method` or `module.name`) is defined, with signatures and first doc
    lines; not found: close names."""
    symbols = _definitions(name, store)
    if not symbols:
        return _not_found(name, store)
    lines = [f"{name} is defined in {len(symbols)} place{'s' if len(symbols) > 1 else ''}:"
             if len(symbols) > 1 else f"{name} is defined at {_where(symbols[0])}:"]
    for s in symbols[:_MAX_LISTED]:
        doc = f" — {s.doc.splitlines()[0]}" if s.doc else ""
        lines.append(f"  {_where(s)}  {_describe(s)}{doc}")
    return IndexAnswer("\n".join(lines), tuple(_source(s) for s in symbols[:_MAX_LISTED]))


def _callers(match: re.Match[str], store: IndexStore) -> IndexAnswer | None:
    return callers_answer(match["name"].replace("::", "."), store, match.groupdict().get("scope") or "")


def callers_answer(name: str, store: IndexStore, scope: str = "") -> IndexAnswer:
    """Where `name` is referenced, each with its enclosing definition; a `scope` that is a file ("in
    inspect.py") keeps that file's references only. A name the index does not define: not found."""
    usages = store.usages(name)
    where_scope = ""
    if scope and ("." in scope or "/" in scope):  # "in inspect.py": only that file's references
        path = _match_path(scope, store)
        if path is not None:
            usages = [u for u in usages if u.path == path]
            where_scope = f" in {path}"
    if not usages:
        if not _definitions(name, store):
            return _not_found(name, store)
        return IndexAnswer(f"No references to {name}{where_scope} found in the index.", ())
    lines = [f"{name} is referenced {len(usages)} time{'s' if len(usages) > 1 else ''}{where_scope}:"]
    for u in usages[:_MAX_LISTED]:
        where = f" in {u.enclosing}" if u.enclosing else " at module level"
        lines.append(f"  {u.path}:{u.line}{where}")
    if len(usages) > _MAX_LISTED:
        lines.append(f"  … and {len(usages) - _MAX_LISTED} more")
    sources = tuple(Source(u.path, u.line, u.enclosing) for u in usages[:_MAX_LISTED])
    return IndexAnswer("\n".join(lines), sources)


def _both_ways(match: re.Match[str], store: IndexStore) -> IndexAnswer | None:
    """Who calls a definition (its references) and what it calls (the defined names its lines use)."""
    callers = _callers(match, store)
    name = match["name"].replace("::", ".")
    symbols = _definitions(name, store)
    if callers is None or not symbols:
        return callers
    lines, sources = [callers.text], list(callers.sources)
    for s in symbols[:_MAX_LISTED]:
        used = [n for n in store.names_used_in(s.path, s.line + 1, s.end_line) if n != s.name]
        called = [d for n in used for d in store.definitions(n)[:1]]
        lines.append(f"{s.qualified_name} ({_where(s)}) uses {len(called)} definition{'s' * (len(called) != 1)}"
                     f" of the index{':' if called else '.'}")
        lines += [f"  {d.qualified_name} at {_where(d)}" for d in called]
        sources += [_source(d) for d in called]
    return IndexAnswer("\n".join(lines), tuple(dict.fromkeys(sources)))


def _importers(match: re.Match[str], store: IndexStore) -> IndexAnswer | None:
    """The files that import a module, or the module that defines a name (and use the name)."""
    name = match["name"].replace("::", ".")
    module_path = _module_path(name, store)
    if module_path is not None:
        modules, users = {_module_of(module_path)}, set(store.paths())
    else:
        symbols = _definitions(name, store)
        if not symbols:
            return _not_found(name, store)
        modules = {_module_of(s.path) for s in symbols}
        users = {u.path for u in store.usages(name)}
    found = [(path, module, line) for path in sorted(users) for module, line in store.imports_of(path)
             if any(_same_module(module, m) for m in modules)]
    if not found:
        return IndexAnswer(f"No indexed file imports {name}.", ())
    lines = [f"{name} is imported by {len({p for p, _, _ in found})} file{'s' * (len(found) != 1)}:"]
    lines += [f"  {path}:{line}  (from {module})" for path, module, line in found[:_MAX_LISTED]]
    return IndexAnswer("\n".join(lines), tuple(Source(p, line, "") for p, _, line in found[:_MAX_LISTED]))


def _module_path(name: str, store: IndexStore) -> str | None:
    """The indexed file a dotted module name (`pkg.shapes`) or a path names, or None."""
    if "." not in name and "/" not in name:
        return None
    folder = name.replace(".", "/") if "/" not in name else name
    for candidate in (name, f"{folder}.py", f"{folder}/__init__.py"):
        found = _match_path(candidate, store)
        if found is not None:
            return found
    return None


def _module_of(path: str) -> str:
    """`pkg/shapes.py` as the module name `pkg.shapes` (a package's `__init__` is the package)."""
    return PurePosixPath(path).with_suffix("").as_posix().removesuffix("/__init__").replace("/", ".")


def _same_module(imported: str, module: str) -> bool:
    """Whether an import names `module`: exactly, by a trailing part (`shapes`, `.shapes`), or as its path."""
    imported = imported.lstrip(".").replace("/", ".").removesuffix(".js").removesuffix(".ts")
    return bool(imported) and (module == imported or module.endswith("." + imported))


def _outline(match: re.Match[str], store: IndexStore) -> IndexAnswer | None:
    return outline_answer(match["path"], store)


def outline_answer(given: str, store: IndexStore) -> IndexAnswer | None:
    """The definitions of one indexed file (its path, or a suffix only one path has), nested, with line
    numbers and signatures; None when the index has no such file."""
    path = _match_path(given, store)
    if path is None:
        return None
    symbols = store.outline(path)
    lines = [f"{path} defines {len(symbols)} symbol{'s' if len(symbols) != 1 else ''}:"]
    for s in symbols:
        indent = "  " * (1 + s.qualified_name.count("."))
        kind = "" if s.signature.split(" ", 1)[0] in _DEFINING_WORDS else f"{s.kind} "  # not `class class Stack`
        lines.append(f"{indent}{s.line}: {kind}{s.signature}")
    return IndexAnswer("\n".join(lines), tuple(_source(s) for s in symbols[:_MAX_LISTED]))


_DEFINING_WORDS = frozenset({"class", "def", "async", "func", "fn", "function", "interface", "type", "struct", "enum",
                             "trait", "impl", "module", "record"})
"""First words of a signature that say what it defines; an outline names the kind only when the signature does not."""


def _list(match: re.Match[str], store: IndexStore) -> IndexAnswer | None:
    kind = {"classes": "class", "functions": "function", "methods": "method", "interfaces": "interface",
            "types": "type"}[match["kind"].lower()]
    if match["path"]:
        path = _match_path(match["path"], store)
        if path is None:
            return None
        symbols = [s for s in store.outline(path) if s.kind == kind]
    else:
        symbols = store.symbols_of_kind(kind)
    lines = [f"{len(symbols)} {match['kind'].lower() if len(symbols) != 1 else kind}:"]
    lines += [f"  {_where(s)}  {s.qualified_name}" for s in symbols[:_MAX_LISTED]]
    if len(symbols) > _MAX_LISTED:
        lines.append(f"  … and {len(symbols) - _MAX_LISTED} more")
    return IndexAnswer("\n".join(lines), tuple(_source(s) for s in symbols[:_MAX_LISTED]))


def _grep(match: re.Match[str], store: IndexStore, root: Path) -> IndexAnswer:
    groups = match.groupdict()
    return grep_answer(next(groups[g] for g in ("dq", "sq", "bq", "word", "rest", "marker") if groups.get(g)),
                       store, root)


def grep_answer(needle: str, store: IndexStore, root: Path, limit: int = _MAX_LISTED) -> IndexAnswer:
    """The lines of the indexed files holding `needle` (smart case), the first `limit` with their enclosing
    definitions, and how many there are in all."""
    paths = store.paths()
    found = grep(root, paths, needle, limit=limit)
    case = " (any case)" if smart_case(needle) and needle.lower() != needle.upper() else ""
    if not found.total:
        return IndexAnswer(f"No line of the {len(paths)} indexed files contains '{needle}'{case}.", ())
    lines = [f"'{needle}'{case} occurs {found.total} time{'s' if found.total > 1 else ''} "
             f"in {found.files} file{'s' if found.files > 1 else ''}:"]
    enclosing = [store.enclosing(hit.path, hit.line) for hit in found.hits]
    for hit, where in zip(found.hits, enclosing, strict=True):
        lines.append(f"  {hit.path}:{hit.line}{f' in {where}' if where else ''}: {hit.text[:160]}")
    if found.total > len(found.hits):
        lines.append(f"  … and {found.total - len(found.hits)} more")
    return IndexAnswer("\n".join(lines), tuple(Source(h.path, h.line, where)
                                               for h, where in zip(found.hits, enclosing, strict=True)))


def _not_found(name: str, store: IndexStore) -> IndexAnswer:
    close = difflib.get_close_matches(name.rsplit(".", 1)[-1], store.symbol_names(), n=5, cutoff=0.75)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return IndexAnswer(f"No definition of {name} in the index.{hint}", (), found=False)


def _match_path(path: str, store: IndexStore) -> str | None:
    paths = store.paths()
    if path in paths:
        return path
    suffix = [p for p in paths if p.endswith("/" + path)]
    return suffix[0] if len(suffix) == 1 else None


def _describe(s: Symbol) -> str:
    """The signature, with the qualified name where the signature does not show it."""
    if s.qualified_name == s.name or s.qualified_name in s.signature:
        return s.signature
    return f"{s.signature}  ({s.qualified_name})"


def _where(s: Symbol) -> str:
    return f"{s.path}:{s.line}"


def _source(s: Symbol) -> Source:
    return Source(s.path, s.line, s.qualified_name)
