"""Build the smallest sufficient context for a question from the index, within a token budget."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.answer import Source
from indexer.embed import Embedder, VectorIndex
from indexer.search import exact_hits, locate
from indexer.source import read_lines
from indexer.store import IndexStore, Symbol
from indexer.words import STOPWORDS

TokenCounter = Callable[[str], int]

_MAX_DEFINITION_LINES = 60


@dataclass(frozen=True)
class Piece:
    """One part of the context, with how much it matters (lower number = kept first)."""

    priority: int
    title: str
    text: str
    source: Source | None
    part: str = "signature"
    """What of the source it holds: "file" (a pinned file whole), "definition" (the code whole), "signature",
    "use" (one line)."""
    end_line: int = 0
    """The last line of the source it holds (0: the source's line alone)."""


@dataclass(frozen=True)
class Span:
    """Where one block of a context comes from, so what a model was shown can be scored."""

    path: str
    line: int
    end_line: int
    symbol: str
    part: str
    tokens: int


@dataclass(frozen=True)
class Context:
    """What is sent to a model besides the question."""

    text: str
    sources: tuple[Source, ...]
    tokens: int
    trimmed: int
    """How many pieces did not fit the budget."""
    content_hash: str
    """Hash of the text: a cache key part that changes when any file in it changes."""
    blocks: frozenset[str] = frozenset()
    """Content hashes of the blocks in `text` (a conversation's next turn leaves these out)."""
    repeated: tuple[str, ...] = ()
    """Titles of blocks left out because an earlier turn in the conversation sent them unchanged."""
    spans: tuple[Span, ...] = ()
    """The sent blocks that come from the repository's code, in the order sent."""


def named_symbols(question: str, store: IndexStore, ranked: Sequence[Symbol] = (), limit: int = 8) -> list[Symbol]:
    """Definitions of the names the question uses (`exact_hits`: code-shaped, backticked or exactly
    spelled capitalized words), those `ranked` puts first leading."""
    order = {symbol: i for i, symbol in enumerate(ranked)}
    found = [store.symbol_named_in(h.path, h.symbol, h.line) for h in exact_hits(store, question)]
    symbols = list(dict.fromkeys(s for s in found if s is not None))
    return sorted(symbols, key=lambda s: order.get(s, len(order)))[:limit]


def build_context(
    question: str,
    store: IndexStore,
    repo: Path,
    budget_tokens: int,
    count_tokens: TokenCounter,
    extra: str = "",
    already_sent: frozenset[str] = frozenset(),
    vectors: VectorIndex | None = None,
    embedder: Embedder | None = None,
    pinned: Sequence[tuple[str, str]] = (),
) -> Context:
    """Collect pieces by priority and keep those that fit `budget_tokens`, leaving out the blocks in
    `already_sent` (hashes from `block_hash`).

    By priority: the provided input and the `pinned` files (path, text), whole; the definitions `locate`
    ranks first for the question (the same ranking `tiercode search` shows: traceback frames, the names it
    uses, BM25, dense hits when `vectors` and `embedder` are given), whole, beside the ones it names that
    rank among them; the
    signatures of the next ones; the lines that call the named symbols and the definitions they call;
    the named symbols' files' imports.
    """
    pieces: list[Piece] = []
    if extra.strip():
        attached = fit_attached(extra.strip(), int(budget_tokens * _ATTACHED_SHARE), count_tokens)
        pieces.append(Piece(0, "Provided input", attached, None))
    for path, text in pinned:  # whole files the user pinned, before anything the index chooses
        pieces.append(Piece(0, f"{path} (pinned)", text, Source(path, 1, ""), "file", max(1, text.count("\n"))))
    evidence = evidence_text(question, extra)
    found = locate(store, evidence, 20, vectors, embedder, repo)
    ranked = [symbol for symbol, _ in found.definitions[:_RANKED]]
    named = named_symbols(question, store, ranked)
    if evidence != question:  # names the attached text uses count where the ranking agrees
        named += [s for s in named_symbols(extra, store, ranked, limit=len(ranked)) if s in ranked and s not in named]
        named = named[:_NAMED]
    leading = list(dict.fromkeys([*found.pinned, *(s for s in named if s in ranked or not ranked)]))
    best = [s for s in ranked if s not in leading]
    pieces += [_definition_piece(1, symbol, repo) for symbol in leading]
    first = ranked[:_WHOLE_DEFINITIONS]  # whole before the signatures; the rest after them, as room allows
    pieces += [_definition_piece(2 if symbol in first else 4, symbol, repo) for symbol in best]
    for symbol in dict.fromkeys([*leading, *ranked, *named]):  # sent whole, the signature is left out
        pieces.append(Piece(2, f"{symbol.path}:{symbol.line}", _summary(symbol),
                            Source(symbol.path, symbol.line, symbol.qualified_name)))
    pieces += _caller_pieces(named, store, repo)
    pieces += _callee_pieces(named, store)
    pieces += _import_pieces(named, store)
    return fit(pieces, budget_tokens, count_tokens, already_sent)


_ATTACHED_SHARE = 0.5
"""The share of a context's budget the attached text may take: the rest is for the code it points at."""


def fit_attached(text: str, cap_tokens: int, count_tokens: TokenCounter) -> str:
    """Attached text within `cap_tokens`: whole when it fits, else its first and last lines (a report's title
    and description, a traceback's innermost frames and error) around a line saying how many were left out.
    Localization still reads all of it."""
    if count_tokens(text) <= cap_tokens:
        return text
    lines = text.splitlines()
    low, high = 0, len(lines) // 2
    while low < high:  # the most lines from each end that fit, found by halving
        keep = (low + high + 1) // 2
        if count_tokens(_ends(lines, keep)) <= cap_tokens:
            low = keep
        else:
            high = keep - 1
    return _ends(lines, low) if low else ""


def _ends(lines: list[str], keep: int) -> str:
    left_out = len(lines) - 2 * keep
    return "\n".join([*lines[:keep], f"[... {left_out} lines of the attached text left out ...]", *lines[-keep:]])


def evidence_text(question: str, extra: str) -> str:
    """What localization reads: the typed question and the text attached to it (piped stdin, a pasted
    error, a diff's hunks), so a traceback's frames and names count as the question's own."""
    extra = extra.strip()
    return f"{question}\n\n{extra}" if extra else question


_NAMED = 8
"""The named definitions a context leads with, at most."""
_WHOLE_DEFINITIONS = 4
"""The best-ranked definitions sent whole (as many as fit); the next ones go as signatures."""
_RANKED = 16
"""The best-ranked definitions a context considers."""


def block_hash(block: str) -> str:
    """The identity of one context block: its exact text, so any change to the code in it is a new block."""
    return hashlib.sha256(block.encode()).hexdigest()[:16]


def fit(
    pieces: list[Piece], budget_tokens: int, count_tokens: TokenCounter, already_sent: frozenset[str] = frozenset(),
) -> Context:
    """Keep pieces in priority order while they fit the budget; never go over it. Blocks in `already_sent`
    are named in one closing line instead of sent again. Code already shown is not sent twice: a piece
    within a definition or file sent whole is left out (a signature, a method of a class, a line that uses
    a name), and one sent whole takes the place of the pieces within it that were kept before (the first
    one's place: a class holding the traceback's function comes first)."""
    kept: list[_Kept] = []
    repeated: list[str] = []
    sources: list[Source] = []
    trimmed = 0
    whole: list[Span] = []
    for piece in sorted(pieces, key=lambda p: p.priority):
        span = _span(piece, 0)
        if span and any(_within(span, w) for w in whole):
            _list(sources, piece.source)
            continue
        block = f"### {piece.title}\n{piece.text}\n"
        if (digest := block_hash(block)) in already_sent:
            repeated.append(piece.title)
        else:
            cost = count_tokens(block)
            covers = span if span and piece.part in _WHOLE_PARTS else None
            stand_ins = [k for k in kept if covers and k.span and _within(k.span, covers)]
            if sum(k.cost for k in kept) - sum(k.cost for k in stand_ins) + cost > budget_tokens:
                trimmed += 1
                continue
            at = kept.index(stand_ins[0]) if stand_ins else len(kept)  # in the place of what it holds
            kept = [k for k in kept if k not in stand_ins]
            kept.insert(at, _Kept(block, digest, cost, _span(piece, cost)))
        if span and piece.part in _WHOLE_PARTS:
            whole.append(span)
        _list(sources, piece.source)
    return _context(kept, sources, repeated, trimmed, budget_tokens, count_tokens)


_WHOLE_PARTS = ("definition", "file")
"""The parts that show a source's lines whole (a long definition up to `_MAX_DEFINITION_LINES`)."""


def _within(inner: Span, outer: Span) -> bool:
    """Whether `inner`'s lines are all among `outer`'s."""
    return inner.path == outer.path and outer.line <= inner.line and inner.end_line <= outer.end_line


def _list(sources: list[Source], source: Source | None) -> None:
    """Add a source to the context's list, once."""
    if source and source not in sources:
        sources.append(source)


@dataclass(frozen=True)
class _Kept:
    """A block `fit` keeps: its text, hash and cost, and where in the code it comes from."""

    block: str
    digest: str
    cost: int
    span: Span | None


def _span(piece: Piece, cost: int) -> Span | None:
    """The lines of the repository a piece shows (None for one from no file: the attached text, imports)."""
    source = piece.source
    if source is None:
        return None
    return Span(source.path, source.line, max(piece.end_line, source.line), source.symbol, piece.part, cost)


def _context(kept: list[_Kept], sources: list[Source], repeated: list[str], trimmed: int, budget_tokens: int,
             count_tokens: TokenCounter) -> Context:
    """The context of the kept blocks, closed by a line naming those an earlier turn sent when it fits."""
    texts = [k.block for k in kept]
    used = sum(k.cost for k in kept)
    if repeated:
        note = "Sent earlier in this conversation and unchanged: " + "; ".join(repeated)
        if used + (cost := count_tokens(note)) <= budget_tokens:
            texts.append(note)
            used += cost
    text = "\n".join(texts)
    return Context(text, tuple(sources), used, trimmed, hashlib.sha256(text.encode()).hexdigest()[:32],
                   frozenset(k.digest for k in kept), tuple(repeated), tuple(k.span for k in kept if k.span))


def _definition_piece(priority: int, symbol: Symbol, repo: Path) -> Piece:
    """A definition sent whole (up to `_MAX_DEFINITION_LINES` lines)."""
    return Piece(priority, f"{symbol.path}:{symbol.line} {symbol.kind} {symbol.qualified_name}",
                 definition_text(repo, symbol), Source(symbol.path, symbol.line, symbol.qualified_name),
                 "definition", min(symbol.end_line, symbol.line + _MAX_DEFINITION_LINES - 1))


def _caller_pieces(named: list[Symbol], store: IndexStore, repo: Path, per_symbol: int = 5) -> list[Piece]:
    """The lines that call or use each named symbol, with the definition they sit in (priority 3)."""
    pieces: list[Piece] = []
    lines_of: dict[str, list[str]] = {}
    for symbol in named:
        own = (symbol.path, symbol.line, symbol.end_line)
        sites = [u for u in store.usages(symbol.name, limit=per_symbol * 4)
                 if not (u.path == own[0] and own[1] <= u.line <= own[2])][:per_symbol]
        for use in sites:
            if use.path not in lines_of:
                lines_of[use.path] = read_lines(repo, use.path)
            lines = lines_of[use.path]
            code = lines[use.line - 1].strip() if 0 < use.line <= len(lines) else ""
            where = f" in {use.enclosing}" if use.enclosing else ""
            pieces.append(Piece(3, f"{use.path}:{use.line} uses {symbol.name}{where}", code,
                                Source(use.path, use.line, use.enclosing or symbol.name), "use"))
    return pieces


def _summary(symbol: Symbol) -> str:
    """A definition in two lines at most: its signature and the first line of its docstring."""
    doc = f"\n    {symbol.doc.splitlines()[0]}" if symbol.doc else ""
    return f"{symbol.signature}{doc}"


def _callee_pieces(named: list[Symbol], store: IndexStore, per_symbol: int = 5, scan: int = 30) -> list[Piece]:
    """Signatures of the definitions each named symbol uses (priority 3); the first `scan` names are looked up."""
    sent = {(s.path, s.line) for s in named}
    pieces: list[Piece] = []
    for symbol in named:
        found = 0
        for name in store.names_used_in(symbol.path, symbol.line, symbol.end_line)[:scan]:
            if name == symbol.name or name.lower() in STOPWORDS:
                continue
            callees = [c for c in store.definitions(name) if (c.path, c.line) not in sent]
            if not callees or len(callees) > 3:  # unknown here, or too common a name to say which
                continue
            for callee in callees:
                sent.add((callee.path, callee.line))
                pieces.append(Piece(3, f"{callee.path}:{callee.line} {callee.kind} {callee.qualified_name},"
                                       f" used by {symbol.qualified_name}", _summary(callee),
                                    Source(callee.path, callee.line, callee.qualified_name)))
            found += 1
            if found >= per_symbol:
                break
    return pieces


def _import_pieces(named: list[Symbol], store: IndexStore) -> list[Piece]:
    """What each named symbol's file imports (priority 4)."""
    pieces: list[Piece] = []
    for path in dict.fromkeys(s.path for s in named):
        imports = store.imports_of(path)
        if imports:
            text = "\n".join(f"{line}: {module}" for module, line in imports)
            pieces.append(Piece(4, f"imports of {path}", text, None))
    return pieces


def definition_text(repo: Path, symbol: Symbol) -> str:
    """The definition's source lines as they are on disk now (long ones cut, saying how much)."""
    lines = read_lines(repo, symbol.path)
    if not lines:
        return symbol.signature
    end = min(symbol.end_line, symbol.line + _MAX_DEFINITION_LINES - 1)
    body = lines[symbol.line - 1 : end]
    if end < symbol.end_line:
        body.append(f"    ... ({symbol.end_line - end} more lines)")
    return "\n".join(body)
