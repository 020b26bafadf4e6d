"""Read a question the way a developer reads a bug report: traceback frames, file paths, code-shaped names
and the plain words that are left."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from indexer.words import STOPWORDS


@dataclass(frozen=True)
class Frame:
    """One frame of a pasted traceback: the file as the traceback spells it, its line and function."""

    path: str
    line: int
    function: str
    code: str = ""
    """The source line the traceback prints under the frame (Python's tracebacks do), stripped: it finds the
    frame's definition in a file whose line numbers have moved since the report was made."""


@dataclass(frozen=True)
class Clues:
    """What a question says about where to look, strongest evidence first."""

    frames: tuple[Frame, ...]
    """Traceback frames in the order printed (the innermost call last)."""
    files: tuple[str, ...]
    """File paths or names the text mentions outside tracebacks (`sympy/core/basic.py`, `latex.py`)."""
    names: tuple[str, ...]
    """Names shaped like code: dotted (`Request.register_hook`), snake_case, CamelCase, called (`fit(`),
    backticked. A plain word of prose ("I", "Add", "file") is not one."""
    capitalized: tuple[str, ...]
    """Capitalized words of three letters or more past a sentence's start ("the Matrix class"): names only
    when a definition has exactly that spelling."""
    words: tuple[str, ...]
    """Every word of the text, lower-cased."""
    title: str
    """The first line with words in it: a bug report's title, the densest statement of what it is about."""
    terms: tuple[str, ...]
    """The words to search the full-text tables for, each repeated as often as it counts (`search_terms`)."""
    literals: tuple[str, ...] = ()
    """Text the code itself may hold: error and warning messages (`ValueError: Invalid vmin or vmax`) and
    quoted strings of three words or more, innermost error first."""


_PYTHON_FRAME = re.compile(r'File "([^"\n]+)", line (\d+)(?:, in ([\w<>.]+))?'
                           r'(?:[^\n]*\n[ \t]*(?![ \t]*File ")([^\n]*))?')  # and the source line printed under it
_PYTEST_FRAME = re.compile(r"^([\w./\\-]+\.\w+):(\d+):(?: in ([\w<>.]+))?", re.MULTILINE)
_FILE = re.compile(r"(?<![\w/.\\-])((?:[\w.-]+[/\\])*[\w-]+\.(?:py|pyx|pyi|js|ts|tsx|go|rs|java|c|h|cc|cpp|hpp))\b")
_BACKTICKED = re.compile(r"`+([^`\n]+)`+")
_NAME = re.compile(r"[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*(?:\(\)?)?")
_WORD = re.compile(r"[A-Za-z0-9]+")
_INNER_CAPITAL = re.compile(r"[a-z0-9][A-Z]|[A-Z]{2,}[a-z]")
_MESSAGE = re.compile(r"^[\sE>|]*(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Warning|Exit|Failure):[ \t]*(\S.*)$",
                      re.MULTILINE)
_QUOTED = re.compile(r"""(?<![\w\\])("|')([^"'\n]{10,200})\1""")


def read_question(text: str) -> Clues:
    """The clues in a question or bug report."""
    frames = [Frame(m.group(1), int(m.group(2)), m.group(3) or "", source_line(m.group(4) or ""))
              for m in _PYTHON_FRAME.finditer(text)]
    frames += [Frame(m.group(1), int(m.group(2)), m.group(3) or "") for m in _PYTEST_FRAME.finditer(text)]
    framed = {f.path for f in frames}
    files = [m.group(1) for m in _FILE.finditer(text) if m.group(1) not in framed]
    words = [w.lower() for w in _WORD.findall(text)]
    title = next((line.strip() for line in text.splitlines() if _WORD.search(line)), "")
    names = code_names(text)
    if not names and (whole := _NAME.fullmatch(text.strip().strip("`?"))):
        names = [whole.group().rstrip("()").strip(".")]  # a question that is one name asks for it
    return Clues(tuple(frames), tuple(dict.fromkeys(files)), tuple(names),
                 tuple(w for w in capitalized_words(text) if w not in names),
                 tuple(words), title, tuple(search_terms(words, title)), tuple(literals(text)))


def source_line(printed: str) -> str:
    """A frame's printed source line as code, or '' when what follows the frame is not code (an error
    message, a pytest marker, a caret line)."""
    line = printed.strip()
    if not line or _MESSAGE.match(line) or set(line) <= set("^~ "):
        return ""
    return line


def literals(text: str) -> list[str]:
    """The messages of the errors and warnings a text shows (the last one first: the innermost, where the
    code raised it) and then its quoted strings of three words or more, each once."""
    messages = [m.group(1).strip() for m in _MESSAGE.finditer(text)][::-1]
    unframed = _PYTHON_FRAME.sub(lambda m: f" {m.group(4) or ''}", text)  # a frame's path is not the code's text
    quoted = [m.group(2).strip() for m in _QUOTED.finditer(unframed) if len(m.group(2).split()) >= 3]
    kept: dict[tuple[str, ...], str] = {}
    for literal in [*messages, *quoted]:
        kept.setdefault(tuple(w.lower() for w in _WORD.findall(literal)), literal)
    return [literal for words, literal in kept.items() if words]


MAX_REPEATS = 5
"""A word said more often counts more, up to this many times (a long paste repeats words without meaning)."""
TITLE_REPEATS = 3
"""A word of the title counts this many times more."""


def search_terms(words: Sequence[str], title: str) -> list[str]:
    """The question's words for BM25, each repeated by how much it counts: as often as the text says it (up
    to `MAX_REPEATS`), and more when the title says it. BM25 adds a score per query term, so repeating a
    term weighs it; on SWE-bench Lite, whole-file BM25 went from 23.5 to 37.3 Acc@1 with these weights."""
    counts = Counter(w for w in words if len(w) > 1 and w not in STOPWORDS)
    in_title = {w.lower() for w in _WORD.findall(title)}
    return [w for w, n in counts.items() for _ in range(min(n, MAX_REPEATS) + (TITLE_REPEATS if w in in_title else 0))]


def code_names(text: str) -> list[str]:
    """The names in `text` that look like code, in order of first mention, each once.

    Backticked code counts when it is a name of two characters or more; otherwise a name must have a
    dot between names (`np.linalg`, `Poly.degree`), an underscore inside it (`read_csv`), a capital
    inside it (`LabelEncoder`, `getX`), a digit, or be called (`fit(`). A word of prose, capitalized or
    not, is not a name: "I", "A", "Python", "Add" stay words.
    """
    found: dict[str, None] = {}
    for quoted in _BACKTICKED.findall(text):
        for match in _NAME.finditer(quoted):
            name = match.group().rstrip("()").strip(".")
            if len(name.strip("_")) >= 2:
                found[name] = None
    for match in _NAME.finditer(_BACKTICKED.sub(" ", text)):
        word = match.group()
        name = word.rstrip("()").strip(".")
        if len(name.strip("_")) >= 2 and _looks_like_code(name, called=word.endswith("(")):
            found[name] = None
    return list(found)


def capitalized_words(text: str) -> list[str]:
    """Words of three letters or more, capitalized but not all capitals, that do not start a sentence
    ("explain the Account class": `Account`), each once."""
    found: dict[str, None] = {}
    for match in _NAME.finditer(text):
        word = match.group()
        if len(word) >= 3 and word.isalpha() and word[0].isupper() and not word.isupper() \
                and not _SENTENCE_START.search(text[: match.start()]):
            found[word] = None
    return list(found)


_SENTENCE_START = re.compile(r"(?:^|[.?!:\n])\W*$")
"""What comes before a word that starts a sentence (and is capitalized anyway)."""


def _looks_like_code(name: str, called: bool) -> bool:
    if "." in name:
        parts = name.split(".")
        return all(parts) and max(map(len, parts)) > 1 and not _is_abbreviation(name)
    inner = name.strip("_")
    return called or "_" in inner or bool(_INNER_CAPITAL.search(name)) or (
        any(c.isdigit() for c in name) and any(c.isalpha() for c in name) and len(name) >= 3)


def _is_abbreviation(name: str) -> bool:
    """`e.g`, `i.e`, `etc.`: prose, not code."""
    return name.lower() in {"e.g", "i.e", "vs", "etc", "et.al"}
