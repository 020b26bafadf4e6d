"""Which files a question is about: the clues of a bug report (traceback frames, file paths, code-shaped
names) and whole-file BM25, fused by weighted reciprocal rank, then weighed by where a file lives."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from indexer.attributes import attribute_setters, missing_attributes
from indexer.clues import Clues, read_question
from indexer.literals import LiteralHits, find_literals
from indexer.rerank import rank_by_code
from indexer.source import read_lines
from indexer.store import IndexStore, Symbol


@dataclass(frozen=True)
class Weights:
    """How much each channel counts in the fusion, and how far a path prior moves a file."""

    text: float = 1.0
    """Whole-file BM25 over the question's words."""
    definitions: float = 0.5
    """Per-definition BM25, each file credited with its best definitions."""
    names: float = 1.5
    """Files defining the code-shaped names the question uses, rarer names first."""
    frames: float = 2.0
    """Files of the traceback's frames, the innermost first."""
    files: float = 2.0
    """Files the question names."""
    literals: float = 1.0
    """Files holding the text of the error messages and quoted strings the question shows, and (as
    definition evidence) the definitions around those lines. On the dev half of SWE-bench Lite (90
    instances) 1 put the right file first for 50.0%, 2 for 48.9%."""
    rrf_k: float = 5.0
    """Reciprocal rank fusion's constant: small, since the first few hits are what counts (a context holds
    a handful); 5 was the best of 5/10/20/60 on CoSQA on either half of the queries."""
    demoted: float = 0.35
    """A test, doc, example, benchmark, vendored or generated file's score is multiplied by this."""
    other_language: float = 0.5
    """A file in a language that is not one of the repository's main ones (nor named by the question)."""
    code: float = 2.0
    """Definition evidence only: BM25 of the question's words over the own lines of the best files'
    definitions as written (`indexer.rerank`), when the repository's files can be read. On the dev half
    of SWE-bench Lite (90 instances) function Acc@5 was 41.4 without it, 44.8 at 1 and 48.3 at 2."""
    setters: float = 2.0
    """Definition evidence only: the methods that set the attribute an AttributeError says is missing
    (`indexer.attributes`). On the dev half of SWE-bench Lite it moved one instance into function Acc@5
    (of 2 with such a message) at 2 and none at 1; it lost none."""
    dense: float = 1.0
    """Files of the nearest definitions by embedding, when the repository is embedded."""
    lexical_beside_dense: float = 0.3
    """Per-definition BM25's weight when dense hits (weight 1) are fused too. For questions in
    words a real embedder ranks better than BM25 (CoSQA MRR 0.515 vs 0.365) and equal weights drag the
    fusion below dense alone (0.468); 0.3 was the best of 1/0.7/0.5/0.3 on either half of the queries.
    Whole-file BM25 is left out beside dense hits: the embedding reads each definition's whole text, and
    on CoSQA the fusion with it (whole-file 0.3, per-definition 0.15) scored MRR 0.520 (0.529/0.511 on
    the two halves), with per-definition BM25 alone at 0.3 0.525 (0.535/0.514), as before this ranking.
    For bug reports a general sentence embedder does not pay: all-MiniLM-L6-v2 reranking the best five
    files' definitions (the dev half of SWE-bench Lite, 71 reports, 20,663 definitions embedded) left
    function Acc@5 at 39.4 at weight 1 and lowered it to 36.6 at 2 and 32.4 at 3; inside those files it
    put the function to change at median rank 24 where `rerank.py`'s code BM25 puts it at 6. A code
    retriever trained on issues (CodeRankEmbed, SweRankEmbed) is what the published numbers credit."""


DEFAULT_WEIGHTS = Weights()


@dataclass(frozen=True)
class FileRank:
    """A file and how strongly the question points at it."""

    path: str
    score: float
    reasons: tuple[str, ...] = field(default=())
    """The channels that found it (frames, files, names, definitions, text, dense)."""


DenseHit = tuple[str, int, str]
"""A dense (embedding) hit: path, line and qualified name of a definition, nearest first."""


def file_channels(store: IndexStore, question: str, clues: Clues, finder: PathFinder,
                  named: list[tuple[str, list[Symbol]]], dense: Sequence[DenseHit] = (),
                  literal_files: Sequence[str] = ()) -> dict[str, list[str]]:
    """Each channel's files for the question, best first: traceback frames, named files, files holding its
    error messages and quoted strings, files defining the names it uses, per-definition BM25, and dense
    hits when given, else whole-file BM25 (beside dense hits it is left out: see
    `Weights.lexical_beside_dense`)."""
    channels = {
        "frames": frame_files(clues, finder),
        "files": named_files(clues, finder),
        "literals": list(literal_files),
        "names": name_files(store, named, clues, question, len(finder)),
        "definitions": list(dict.fromkeys(s.path for s, _ in store.search_symbols(clues.terms, limit=100))),
    }
    if dense:
        channels["dense"] = list(dict.fromkeys(path for path, _, _ in dense))
    else:
        channels["text"] = [p for p, _ in store.search_files(clues.terms, limit=200)]
    return channels


def fuse_files(channels: dict[str, list[str]], languages: dict[str, str], clues: Clues,
               weights: Weights = DEFAULT_WEIGHTS) -> list[FileRank]:
    """Weighted reciprocal rank fusion of the channels, then each file weighed by where it lives (files
    the question names by path are taken as they are)."""
    scores: dict[str, float] = {}
    reasons: dict[str, list[str]] = {}
    for channel, ranked in channels.items():
        weight = getattr(weights, channel)
        if channel == "definitions" and "dense" in channels:
            weight = weights.lexical_beside_dense
        for rank, path in enumerate(ranked, start=1):
            scores[path] = scores.get(path, 0.0) + weight / (weights.rrf_k + rank)
            reasons.setdefault(path, []).append(channel)
    named = {*channels.get("frames", ()), *channels.get("files", ())}
    main = main_languages(languages)
    wanted = about_demoted(clues)
    for path in scores:
        if path not in named:
            scores[path] *= path_prior(path, languages.get(path, ""), main, wanted, weights)
    ordered = sorted((p for p in scores if scores[p] > 0), key=lambda p: (-scores[p], p))
    return [FileRank(p, round(scores[p], 6), tuple(reasons[p])) for p in ordered]


class PathFinder:
    """Finds the indexed file a path from a traceback or a sentence stands for, by its longest suffix."""

    def __init__(self, paths: Iterable[str]) -> None:
        self._by_name: dict[str, list[str]] = {}
        for path in paths:
            self._by_name.setdefault(path.rsplit("/", 1)[-1], []).append(path)

    def __len__(self) -> int:
        return sum(map(len, self._by_name.values()))

    def find(self, spelled: str) -> list[str]:
        """The indexed paths that share the most trailing folders with `spelled`, best matches only."""
        parts = [p for p in re.split(r"[/\\]+", spelled.strip()) if p not in ("", ".")]
        if not parts:
            return []
        candidates = self._by_name.get(parts[-1], [])
        best: list[str] = []
        best_len = 0
        for path in candidates:
            shared = _shared_suffix(path.split("/"), parts)
            if shared > best_len:
                best, best_len = [path], shared
            elif shared == best_len:
                best.append(path)
        return best


def _shared_suffix(a: list[str], b: list[str]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def frame_files(clues: Clues, finder: PathFinder) -> list[str]:
    """Files of the traceback's frames, the innermost first (where the error surfaced), each once."""
    found: dict[str, None] = {}
    for frame in reversed(clues.frames):
        matches = finder.find(frame.path)
        if len(matches) == 1:
            found[matches[0]] = None
    return list(found)


def named_files(clues: Clues, finder: PathFinder) -> list[str]:
    """Files the question names by path or by a file name only one indexed file has."""
    found: dict[str, None] = {}
    for spelled in clues.files:
        matches = finder.find(spelled)
        if len(matches) == 1:
            found[matches[0]] = None
    return list(found)


def name_files(store: IndexStore, named: list[tuple[str, list[Symbol]]], clues: Clues, question: str,
               indexed_files: int) -> list[str]:
    """Files that define the question's names, by how telling each name is: defined in fewer files, used
    by fewer (a project's own hub class, named in every report, says little), said in the title, said
    more often (up to three times)."""
    scores: Counter[str] = Counter()
    for name, symbols in named:
        files = {s.path for s in symbols}
        short = name.rsplit(".", 1)[-1]
        weight = math.log(1 + indexed_files / (1 + store.files_referencing(short))) / len(files)
        weight *= (2 if short in clues.title else 1) * min(3, max(1, question.count(short)))
        for path in files:
            scores[path] += weight
    return [path for path, _ in sorted(scores.items(), key=lambda item: (-item[1], item[0]))]


def named_definitions(store: IndexStore, clues: Clues, finder: PathFinder) -> list[tuple[str, list[Symbol]]]:
    """Each name the question uses with the definitions it stands for: code-shaped names as `resolve_name`
    reads them, capitalized words only where a definition has exactly that name."""
    found = [(name, resolve_name(store, name, finder)) for name in clues.names]
    for word in clues.capitalized:
        symbols = [s for s in store.definitions(word) if s.name == word]
        found.append((word, symbols if len({s.path for s in symbols}) <= _MAX_NAME_FILES else []))
    return [(name, symbols) for name, symbols in found if symbols]


_MAX_NAME_FILES = 25
"""A plain name defined in more files than this (`__init__`, `get`) says nothing about where to look."""


def resolve_name(store: IndexStore, name: str, finder: PathFinder) -> list[Symbol]:
    """The definitions a code-shaped name stands for: a qualified name (`Poly.degree`), a module path
    (`sympy.printing.latex`, standing for its file's definitions' first), a module path and a member
    (`sklearn.preprocessing.LabelEncoder`), or a plain name."""
    found = store.definitions(name)
    if found or "." not in name:
        return found if name.count(".") or len({s.path for s in found}) <= _MAX_NAME_FILES else []
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module = "/".join(parts[:cut])
        files = finder.find(module + ".py") or finder.find(module + "/__init__.py")
        if len(files) == 1 and len(module.split("/")) > 1:
            rest = ".".join(parts[cut:])
            members = [s for s in store.outline(files[0]) if s.qualified_name == rest] if rest else []
            return members or store.outline(files[0])[:1]
    return resolve_name(store, parts[-1], finder) if len(parts[-1]) > 2 else []


def main_languages(languages: dict[str, str]) -> set[str]:
    """The languages of at least a fifth of the indexed files (and the most common one)."""
    counts = Counter(languages.values())
    if not counts:
        return set()
    total = sum(counts.values())
    return {lang for lang, n in counts.items() if n * 5 >= total} | {counts.most_common(1)[0][0]}


_DEMOTED_FOLDERS = frozenset({
    "test", "tests", "testing", "doc", "docs", "documentation", "example", "examples", "sample", "samples",
    "bench", "benchmark", "benchmarks", "asv_bench", "tutorial", "tutorials", "gallery", "vendor", "vendored",
    "_vendor", "extern", "externals", "third_party", "thirdparty", "node_modules", "build", "dist", "site-packages",
})
_DEMOTED_FILE = re.compile(r"(^test_.*|.*_tests?\.\w+|^conftest\.py|.*\.min\.\w+|.*[._-]bundle\.js|.*_pb2\.py"
                           r"|^parsetab\.py|^lextab\.py|^setup\.py|^version\.py|^_version\.py)$")
_ABOUT_DEMOTED = frozenset({"test", "tests", "testing", "doc", "docs", "documentation", "example", "examples",
                            "benchmark", "benchmarks", "tutorial", "conftest", "fixture", "fixtures"})
"""Words that say a question is about tests, docs or examples: then those files are not demoted."""


_SHORT_QUESTION = 40
"""Words a typed question has at most; past this a text is a report, and only its title says what it is about."""


def about_demoted(clues: Clues) -> set[str]:
    """The words by which a question says it is about tests, docs or examples: any of its words in a
    short question, the title's in a long report (a bug report says "test" in passing: "my test fails")."""
    words = clues.words if len(clues.words) <= _SHORT_QUESTION else [w.lower() for w in re.findall(r"\w+", clues.title)]
    return {w for w in words if w in _ABOUT_DEMOTED}


def path_prior(path: str, language: str, main: set[str], wanted: set[str], weights: Weights) -> float:
    """How much a file's place counts: tests, docs, examples, benchmarks, vendored, minified and generated
    files go down unless the question is about them; so do files in a language the repository is not
    mostly written in."""
    factor = 1.0
    folders = path.lower().split("/")
    name = folders.pop()
    if (not wanted and (_DEMOTED_FILE.match(name) or _DEMOTED_FOLDERS.intersection(folders))) or (
            ".min." in name or "vendor" in path.lower()):
        factor *= weights.demoted
    if main and language not in main:
        factor *= weights.other_language
    return factor


@dataclass(frozen=True)
class Localization:
    """The files a question is about and the definitions in them, each best first with its score."""

    files: tuple[FileRank, ...]
    definitions: tuple[tuple[Symbol, float], ...]
    pinned: tuple[Symbol, ...] = ()
    """The definitions the text points at by line: the innermost traceback frame's function in the
    repository, then the ones holding the error messages it quotes (first of each)."""


def localize(store: IndexStore, question: str, k: int = 20, weights: Weights = DEFAULT_WEIGHTS,
             dense: Sequence[DenseHit] = (), root: Path | None = None) -> Localization:
    """The files and definitions `question` is most likely about; `dense` are embedding hits, if any;
    `root` is the repository's folder, read to find the definitions around quoted text."""
    clues = read_question(question)
    languages = store.file_languages()
    finder = PathFinder(languages)
    named = named_definitions(store, clues, finder)
    literal = find_literals(store, clues.literals, root)
    channels = file_channels(store, question, clues, finder, named, dense, literal.files)
    files = fuse_files(channels, languages, clues, weights)[:k]
    frames = frame_definitions(store, clues, finder, root)
    evidence = definition_evidence(store, clues, named, dense, files, weights, frames, literal)
    best = [f.path for f in files[:_TOP_FILES]]
    outlines = [s for path in best for s in store.outline(path)]
    if root is not None:
        evidence.append((rank_by_code(root, outlines, clues.terms), weights.code))
        evidence.append((attribute_setters(store, root, best, missing_attributes(clues.literals)), weights.setters))
    pinned = tuple(dict.fromkeys([*frames[:1], *literal.definitions[:1]]))
    return Localization(tuple(files), tuple(rank_definitions(evidence, outlines, files, k)), pinned)


Evidence = list[tuple[list[Symbol], float]]
"""Ranked lists of definitions a question points at, each with its weight."""


def definition_evidence(store: IndexStore, clues: Clues, named: list[tuple[str, list[Symbol]]],
                        dense: Sequence[DenseHit], files: Sequence[FileRank], weights: Weights,
                        frames: list[Symbol], literal: LiteralHits) -> Evidence:
    """The definitions the question points at: the traceback's functions, the ones around the lines that
    hold its quoted text, the definitions of the names it uses, BM25 within the best files and over the
    whole index, dense hits (beside which BM25 weighs `lexical_beside_dense`, as in the file ranking)."""
    lexical = weights.lexical_beside_dense if dense else 1.0
    best = [f.path for f in files[:_TOP_FILES]]
    return [
        (frames, 1.0),
        (list(literal.definitions), weights.literals),
        ([s for _, symbols in named for s in symbols], 1.0),
        ([s for s, _ in store.search_symbols(clues.terms, limit=50, paths=best)], lexical),
        ([s for s, _ in store.search_symbols(clues.terms, limit=50)], lexical),
        ([s for path, line, name in dense if (s := store.symbol_named_in(path, name, line))], 1.0),
    ]


_TOP_FILES = 5
"""The best files whose definitions BM25 ranks among themselves too (a file's evidence is spread over its
definitions; this finds the one the question is about inside a file the fusion already trusts), and whose
definitions are all candidates."""


def rank_definitions(evidence: Evidence, candidates: Sequence[Symbol], files: Sequence[FileRank], k: int = 20,
                     own_weight: float = 10.0) -> list[tuple[Symbol, float]]:
    """Definitions ranked by their file's score times how strongly the evidence points at them: weighted
    reciprocal rank in each list, as a share of the best definition's, times `own_weight`, plus one.
    `candidates` (the best files' outlines) have no evidence of their own and rank by their file alone.
    On SWE-bench Lite this order puts the right file first nearly as often as the file ranking (51.6 vs
    55.6 Acc@1), where adding the two scores instead gave 48.4."""
    if not files:
        return []
    file_score = {f.path: f.score / files[0].score for f in files}
    own: dict[Symbol, float] = dict.fromkeys(candidates, 0.0)
    for ranked, weight in evidence:
        for rank, symbol in enumerate(dict.fromkeys(ranked), start=1):
            if symbol.path in file_score:
                own[symbol] = own.get(symbol, 0.0) + weight / (5 + rank)
    best = max(own.values(), default=0.0) or 1.0
    scores = {s: file_score[s.path] * (1.0 + own_weight * value / best) for s, value in own.items()}
    ordered = sorted(scores, key=lambda s: (-scores[s], s.path, s.line))[:k]
    return [(s, round(scores[s], 6)) for s in ordered]


def frame_definitions(store: IndexStore, clues: Clues, finder: PathFinder, root: Path | None = None) -> list[Symbol]:
    """The definitions the traceback's frames ran in, innermost first: in each frame's file, the definition
    of the frame's function holding the source line the traceback printed (with `root`, where files are
    read), else the one around the frame's line, else the nearest one of that name (the reporter's version
    of the file may differ from the indexed one: `eval` at line 590 is one of a dozen `eval` methods)."""
    found: dict[Symbol, None] = {}
    for frame in reversed(clues.frames):
        for path in finder.find(frame.path)[:1]:
            named = [s for s in store.outline(path) if s.name == frame.function]
            if root is not None and frame.code and len(named) > 1:
                named = _holding_line(named, _lines_reading(root, path, frame.code)) or named
            if named:
                found[min(named, key=lambda s, at=frame.line: (not s.line <= at <= s.end_line,
                                                                abs(s.line - at)))] = None
    return list(found)


def _lines_reading(root: Path, path: str, code: str) -> list[int]:
    """The numbers of the lines of a file that read `code` (stripped)."""
    return [n for n, line in enumerate(read_lines(root, path), start=1) if line.strip() == code]


def _holding_line(symbols: list[Symbol], numbers: list[int]) -> list[Symbol]:
    """The symbols whose span holds one of the line numbers."""
    return [s for s in symbols if any(s.line <= n <= s.end_line for n in numbers)]
