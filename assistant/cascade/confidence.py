"""Decide whether an answer is good enough to stop the cascade, and say why when it is not."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from assistant.cascade.known_names import known_to
from indexer.store import IndexStore
from models.base import GenerationResult

_HEDGES = re.compile(
    r"\b(i('| a)m not sure|i don'?t know|i cannot|i can'?t (help|answer|determine)|as an ai|"
    r"without (more|additional) (context|information)|i do not have access|unable to (determine|answer))\b",
    re.I,
)
_CODE_BLOCK = re.compile(r"```(\w+)?\n(.*?)```", re.S)
_EDIT_BLOCK = re.compile(r"^\s*<{5,9} SEARCH\s*$", re.M)
"""A SEARCH/REPLACE edit inside a fence: not code to parse; assistant.changes.patch_check verifies it applies."""
_CODE_SPAN = re.compile(r"`([A-Za-z_][\w.]*)`")


@dataclass(frozen=True)
class Verdict:
    """The confidence in one answer and, when low, the reason."""

    score: float
    """0..1; the cascade stops at or above its threshold."""
    reason: str
    """Empty when confident; otherwise why not (recorded as the escalation reason)."""

    @property
    def confident(self) -> bool:
        """True when there is nothing against the answer."""
        return not self.reason


def logprob_score(logprobs: tuple[float, ...]) -> float | None:
    """Geometric-mean token probability of an answer, or None without logprobs."""
    if not logprobs:
        return None
    return math.exp(sum(logprobs) / len(logprobs))


def repeats_itself(text: str, min_repeats: int = 4) -> bool:
    """True when some non-trivial line occurs `min_repeats` times or more (a looping model)."""
    counts: dict[str, int] = {}
    for line in text.splitlines():
        line = line.strip()
        if len(line) >= 12:
            counts[line] = counts.get(line, 0) + 1
            if counts[line] >= min_repeats:
                return True
    return False


def judge(
    result: GenerationResult,
    threshold: float,
    code_parses: Callable[[str, str], bool] | None = None,
    symbol_exists: Callable[[str], bool] | None = None,
    unknown_symbol_limit: int = 2,
) -> Verdict:
    """Score an answer with logprobs (where given) and verifiers; the first failed check is the reason.

    An answer that names `unknown_symbol_limit` or more symbols the index lacks fails (0: never).
    """
    text = result.text.strip()
    if not text:
        return Verdict(0.0, "empty answer")
    if result.finish_reason == "length" and len(text) < 40:
        return Verdict(0.1, "answer cut off")
    if repeats_itself(text):
        return Verdict(0.1, "the answer repeats itself")
    if _HEDGES.search(text):
        return Verdict(0.2, "the answer hedges or refuses")
    if code_parses is not None:
        for language, code in _CODE_BLOCK.findall(text):
            if language and not _EDIT_BLOCK.search(code) and not code_parses(language, code):
                return Verdict(0.3, f"a {language} code block does not parse")
    if symbol_exists is not None and unknown_symbol_limit > 0:
        named = dict.fromkeys(name.rstrip(".") for name in _CODE_SPAN.findall(text) if "." in name or "_" in name)
        missing = [name for name in named if not symbol_exists(name)]
        if len(missing) >= unknown_symbol_limit:
            return Verdict(0.4, f"names symbols the index does not have ({', '.join(missing[:3])})")
    score = logprob_score(result.token_logprobs)
    if score is not None and score < threshold:
        return Verdict(score, f"low token confidence ({score:.2f} < {threshold:.2f})")
    return Verdict(score if score is not None else 1.0, "")


_FENCE_LANGUAGES = {"python": "python", "py": "python", "js": "javascript", "javascript": "javascript",
                    "ts": "typescript", "typescript": "typescript", "go": "go", "rust": "rust", "rs": "rust",
                    "java": "java", "c": "c", "cpp": "cpp", "c++": "cpp"}


def code_parses(fence_language: str, code: str) -> bool:
    """Whether a fenced block in a language the index parses parses without errors (others pass)."""
    from indexer.parse import parse_source

    language = _FENCE_LANGUAGES.get(fence_language.lower())
    if language is None:
        return True
    return not parse_source(language, code.encode()).has_errors


def judge_in(store: IndexStore, result: GenerationResult, threshold: float, unknown_symbol_limit: int) -> Verdict:
    """`judge` with the repository's verifiers: its code blocks must parse, the symbols it names must be in the
    index (the patch check, which runs tests, is the cascade's own next step)."""
    return judge(result, threshold, code_parses=code_parses, symbol_exists=known_to(store),
                 unknown_symbol_limit=unknown_symbol_limit)
