"""Whether two questions ask the same thing, by their words: the check a semantic cache hit must pass.

Embeddings alone are not trusted (small embedders put a question next to its reverse), so two questions
agree only when their code identifiers and numbers, their content words up to inflection and framing,
and their negations match, in order.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"`[^`]+`|[A-Za-z_][\w.]*\w|[A-Za-z_]|\d+(?:\.\d+)?")
_CONTRACTIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), replacement) for pattern, replacement in (
        (r"\bcan'?t\b|\bcannot\b", "can not"),
        (r"\bwon'?t\b", "will not"),
        (r"\bshan't\b", "shall not"),
        (r"\bain't\b", "is not"),
        (r"\b(\w+)n't\b", r"\1 not"),
        (r"\b(do|does|did|is|are|was|were|has|have|had|should|would|could|must|need)nt\b", r"\1 not"),
        (r"\bit's\b", "it is"),
        (r"\b(what|that|there|here|who|where|how)'?s\b", r"\1 is"),
        (r"(\w)'s\b", r"\1"),
        (r"(\w)'re\b", r"\1 are"),
        (r"(\w)'ve\b", r"\1 have"),
        (r"(\w)'ll\b", r"\1 will"),
        (r"(\w)'d\b", r"\1 would"),
        (r"(\w)'m\b", r"\1 am"),
    )
)
"""Contractions and possessives, expanded before tokenizing ("doesn't" -> "does not", "what's" -> "what is")."""
_NOT = "not"
"""The one negation marker every "not"/"n't" form becomes: counted per clause (as "no", "never", "without"
are), never a content word."""
_NEGATIONS = frozenset({_NOT, "no", "never", "without"})
_CLAUSE_BREAKS = frozenset([
    "when", "if", "because", "but", "while", "unless", "after", "before", "although", "though", "since",
    "until", "whereas", "and", "or", "then",
])
"""Words that start a new clause: "A does not fail when B is set" is not "A fails when B is not set"."""
_MODALS = frozenset(["can", "could", "should", "would", "will", "shall", "must", "may", "might"])
"""Kept with a negated clause's count: "why can't I X" is not "why shouldn't I X" (both stop words otherwise)."""
_STOPWORDS = frozenset([
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "could", "do", "does", "for", "from", "how", "i",
    "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "please", "should", "so", "the", "this",
    "that", "to", "was", "what", "when", "where", "which", "who", "why", "will", "with", "would", "you",
    "your",
])
_FRAMING = frozenset([
    "explain", "describe", "show", "tell", "please", "function", "method",
    "hey", "hi", "hello", "thanks", "thank", "thx",
])
"""Words that frame a question without changing what it asks about ("using" too, as "with" is a stop word)."""
_USE_LEADS = frozenset(["", "i", "we", "you", "to", "should", "can", "could", "must", "and", "or"])
"""After these (or at the start), "use" frames the question ("how do I use X to ..."); elsewhere it is content."""
_USING_VERBS = frozenset(["stop", "avoid", "start", "keep", "quit"])
"""Stems after which "using" is content ("stop using X" is not "stop X")."""


def _is_code_token(token: str) -> bool:
    return (token.startswith("`") or "_" in token or "." in token or token[:1].isdigit()
            or (any(c.isupper() for c in token[1:]) and any(c.islower() for c in token)))


def _stem(word: str) -> str:
    """A light, consistent stem, then the first six letters ("conversion" ~ "convert").

    Plurals: "ies" -> "y", "es" off only after ss/x/z/ch/sh, else "s" off; then "ied" -> "y" or "ed"/"ing" off;
    then a doubled final consonant and a final "e" are dropped, so "raise"/"raises"/"raised"/"raising",
    "file"/"files" and "map"/"mapped" each share one stem.
    """
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif word.endswith(("sses", "xes", "zes", "ches", "shes")):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 4 and word.endswith("ied"):
        word = word[:-3] + "y"
    else:
        for suffix in ("ing", "ed"):
            if len(word) > len(suffix) + 2 and word.endswith(suffix) and not word.endswith("eed"):
                word = word[: -len(suffix)]
                break
    if len(word) > 2 and word[-1] == word[-2] and word[-1] not in "aeiouylsz":
        word = word[:-1]
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word[:6]


def _question_signature(text: str) -> tuple[list[str], list[str], list[tuple[int, tuple[str, ...]]]]:
    """(code identifiers and numbers, content-word stems, per clause: negation count and its modals).

    Identifiers and stems are deduplicated in order of first appearance, so both are ordered; clauses
    without tokens are skipped, a clause without a negation keeps no modals, and trailing ones are dropped.
    """
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    codes: list[str] = []
    content: list[str] = []
    negations = [0]
    modals: list[set[str]] = [set()]
    clause_empty = True
    previous = ""
    for token in _WORD.findall(text.replace("'", "")):
        if _is_code_token(token):
            codes.append(token.strip("`"))
            previous, clause_empty = token, False
            continue
        word = token.lower()
        if word in _CLAUSE_BREAKS and not clause_empty:
            negations.append(0)
            modals.append(set())
            clause_empty = True
        if word in _NEGATIONS:
            negations[-1] += 1
        if word in _MODALS:
            modals[-1].add(word)
        if word == "using":
            is_content = _stem(previous) in _USING_VERBS
        elif word == "use":
            is_content = previous not in _USE_LEADS
        else:
            is_content = word not in _STOPWORDS and word not in _FRAMING and word != _NOT
        if is_content:
            content.append(_stem(word))
        previous, clause_empty = word, False
    clauses = [(count, tuple(sorted(words)) if count else ()) for count, words in zip(negations, modals, strict=True)]
    while clauses and clauses[-1][0] == 0:
        clauses.pop()
    return list(dict.fromkeys(codes)), list(dict.fromkeys(content)), clauses


def questions_agree(a: str, b: str) -> bool:
    """A lexical check a semantic hit must also pass, because embeddings alone are not trusted.

    Small embedders put "parse json" next to "write json" and "celsius to fahrenheit" next to
    "fahrenheit to celsius" (cosine 0.99), so the two questions must also: name the same code
    identifiers and numbers in the same order, agree on negation clause by clause (after "doesn't" ->
    "does not"), use the same content words up to inflection and framing ("explain", "what does ... do",
    "using", "thanks"), and mention those words in the same order.
    """
    return _question_signature(a) == _question_signature(b)
