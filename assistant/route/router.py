"""Classify a question (kind, difficulty) and pick the tier the cascade starts at.

Three stages, cheapest first: deterministic rules (microseconds) decide the clear cases; when they are
unsure, a naive Bayes model over labelled example requests (assistant/route/kind_model.py, microseconds)
decides when it is confident; only then does the local classifier model (if one is installed) label the
question with a JSON-constrained answer and its probability.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from assistant.route.kind_model import kind_model
from models.base import Backend, GenerationRequest, GenerationResult, Message
from models.tier_registry import DEFAULT_ORDER

Kind = Literal["lookup", "explain", "generate", "edit", "debug", "review", "design"]
Difficulty = Literal["simple", "medium", "complex"]
KINDS: tuple[Kind, ...] = ("lookup", "explain", "generate", "edit", "debug", "review", "design")
DIFFICULTIES: tuple[Difficulty, ...] = ("simple", "medium", "complex")

_CODE_NAME = r"`?[A-Za-z_][\w]*(?:\.[\w]+)+`?|`[^`]+`|[a-z]+_[\w]+|[A-Z][a-z]+[A-Z]\w*"
"""A name that looks like code: dotted, backticked, snake_case or CamelCase."""
_PLACE_NOUNS = (r"(files?|modules?|packages?|folders?|director(y|ies)|paths?|lines?|class(es)?|functions?|methods?|"
                r"tests?)\b")
"""What "which ... is X in?" asks for when it asks where code is (a lookup), not how it behaves."""
_RULES: dict[Kind, tuple[str, ...]] = {
    "lookup": (r"^where (is|are|does|do|did|'s)\b", r"^where\b(?!.*\bshould\b)", r"^(find|locate|list|go to)\b",
               r"^show( me)?\s+\S+$", r"\bwho (calls|uses|imports)\b", r"\bwhich (files?|modules?|class|classes)\b",
               r"\bdefined\b", r"\b(callers|usages|references) of\b", r"^(what|which) (functions|classes)\b",
               r"\bwhat does \S+\.py contain\b", r"\b(module|file) (has|defines)\b"),
    "debug": (r"\b(error|exception|traceback|stack ?trace|bug|crash(es|ed)?|fails?|failing|broken|segfault)\b",
              r"\b[A-Z]\w*(Error|Exception|Disconnected)\b", r"\braises?\b",
              r"\bdoesn'?t (work|stop|return|finish)\b", r"\bnot working\b",
              r"^why (does|is|do)\b.*\b(fail|error|wrong|slow|hang)", r"\bdebug\b", r"\bunexpected\b",
              r"\b(hangs?|hanging|deadlocks?|freezes|never (finishes|returns|stops|ends))\b",
              r"\b(keeps (growing|running)|memory (leak|keeps)|printed twice|returns None)\b"),
    "edit": (r"^(rename|refactor|change|modify|update|replace|remove|delete|move|extract|inline|convert|fix|rewrite|"
             r"simplify|clean up|tidy)\b",
             r"\b(add|make) .* (parameter|param|argument|option|flag|type hints?|docstrings?|logging)\b",
             rf"^make ({_CODE_NAME})\b",
             rf"^add (a |an )?[\w.`' -]+ (to|in|into) ({_CODE_NAME}|every|all|the)\b",
             r"\bsearch.and.replace\b"),
    "generate": (r"^(write|create|implement|generate|build|scaffold)\b", r"^(make|add) (me )?(a|an|new)\b",
                 r"\bnew (function|class|test|module|script)\b", r"\bunit tests? for\b", r"\bwrite it\b",
                 r"\b(class|function|script|converter|loader|helper|decorator|wrapper) "
                 r"(that|to|for|on top of|using)\b"),
    "review": (r"^review\b", r"\bcode review\b", r"\b(look over|critique|any (issues|problems|bugs) (with|in))\b",
               r"\bis (this|it) (correct|safe|ok|idiomatic)\b", r"\breview this\b",
               r"^check this\b", r"\bfor (problems|issues|bugs)\b"),
    "design": (r"\b(design|architecture|architect|structure|trade-?offs?|approach|strategy|plan)\b",
               r"^how should (i|we)\b", r"\bbest way to (organi[sz]e|structure)\b", r"\bshould (we|i)\b",
               r"\bwhere should\b", r"\b(good fit|or would|or should)\b"),
    "explain": (r"^(explain|describe|summari[sz]e|walk me through|can you explain)\b", r"^what('?s| does| is| are)\b",
                r"^how (does|do|is)\b", r"^why\b", r"\bwhat happens when\b",
                r"\b(difference between|vs\.?|versus)\b", r"^what (args|arguments|parameters)\b",
                rf"^which (?!{_PLACE_NOUNS})\w+ (does|do|did|will)\b",
                rf"^which (?!{_PLACE_NOUNS})\w+ (is|are) \S+ (?!(defined|declared|located|imported)\b)"),
}


@functools.cache
def _compiled_rules() -> dict[str, tuple[re.Pattern[str], ...]]:
    """The rules, compiled when a question is first routed (a lookup the index answers never needs them)."""
    return {kind: tuple(re.compile(p, re.I) for p in patterns) for kind, patterns in _RULES.items()}


_COMPLEX_HINTS = re.compile(
    r"\b(architecture|across (the )?(whole|entire|all)|every file|whole (repo|codebase|project)|redesign|"
    r"migrat\w+|concurren\w+|race condition|thread[- ]safe|performance|security|distributed)\b",
    re.I,
)
_START_TIER: dict[tuple[Kind, Difficulty], str] = {
    ("lookup", "simple"): "local", ("lookup", "medium"): "local", ("lookup", "complex"): "local",
    ("explain", "simple"): "local", ("explain", "medium"): "local", ("explain", "complex"): "groq",
    ("generate", "simple"): "local", ("generate", "medium"): "groq", ("generate", "complex"): "gemini",
    ("edit", "simple"): "local", ("edit", "medium"): "groq", ("edit", "complex"): "gemini",
    ("debug", "simple"): "local", ("debug", "medium"): "groq", ("debug", "complex"): "gemini",
    ("review", "simple"): "groq", ("review", "medium"): "groq", ("review", "complex"): "gemini",
    ("design", "simple"): "groq", ("design", "medium"): "gemini", ("design", "complex"): "sonnet",
}
"""Where each kind and difficulty starts: the cheapest tier that usually answers it well. Only complex
design starts at Sonnet; everything else reaches it by escalation, when the answers below it are weak."""
_COST_ORDER = DEFAULT_ORDER
"""The start tiers above are cost levels named by the built-in tiers; `start_index` maps them onto the
configured cascade."""
LEXICAL_MIN_PROBABILITY = 0.6
"""The lexical stage decides only at or above this posterior (chosen on the tuning half of the bench)."""
MODEL_MIN_PROBABILITY = 0.5
"""Below this, the classifier model's label is kept for the record but does not raise the start tier:
an unsure label never sends a question straight to a dear tier; the cascade escalates if needed."""


@dataclass(frozen=True)
class Route:
    """Where a question starts, and how that was decided."""

    kind: Kind
    difficulty: Difficulty
    start_tier: str
    stage: Literal["index", "rules", "lexical", "classifier", "default"]
    """Which stage decided: pre-flight (the index answered), the rules, the lexical model, the local
    classifier model, or the default when the others were unsure and no classifier is installed."""
    probability: float
    """Confidence of the deciding stage in its kind label (0..1)."""


def difficulty_of(question: str, kind: Kind) -> Difficulty:
    """A cheap difficulty estimate from length, scope words and the kind."""
    words = len(question.split())
    if _COMPLEX_HINTS.search(question) or words > 80:
        return "complex"
    if kind == "lookup" or (words <= 14 and kind in ("explain", "edit", "generate")):
        return "simple"
    return "medium"


def classify_fast(question: str) -> Route | None:
    """The rules stage: a Route when one kind clearly wins, None when unsure."""
    scores: dict[Kind, float] = {}
    for kind, patterns in _compiled_rules().items():
        for pattern in patterns:
            found = pattern.search(question)
            if found:
                # a match on the question's first words says more than one in the middle
                scores[kind] = scores.get(kind, 0.0) + (2.0 if found.start() == 0 else 1.0)
    if not scores:
        return None
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    best, top = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    if top - runner_up < 1.0:
        return None
    probability = top / (top + runner_up + 0.5)
    difficulty = difficulty_of(question, best)
    return Route(best, difficulty, start_tier(best, difficulty), "rules", round(probability, 3))


_CLASSIFIER_SCHEMA = {
    "type": "object",
    "properties": {"kind": {"type": "string", "enum": list(KINDS)}},
    "required": ["kind"],
}
_CLASSIFIER_PROMPT = (
    "You label developer requests about a codebase with one task kind.\n"
    "lookup: find where code is or who uses it. explain: how or why code works. generate: write new code.\n"
    "edit: change existing code. debug: find the cause of an error. review: judge code quality.\n"
    "design: plan architecture or structure.\nAnswer with JSON: {\"kind\": \"...\"}."
)


def classify_with_model(
    question: str, backend: Backend, on_call: Callable[[GenerationResult], None] | None = None
) -> Route:
    """The model stage: a JSON-constrained label, its probability from the token logprobs. `on_call`
    receives the model call's result (for the ledger)."""
    request = GenerationRequest(
        messages=(Message("system", _CLASSIFIER_PROMPT), Message("user", question[:2000])),
        max_tokens=16,
        temperature=0.0,
        logprobs=True,
        json_schema=_CLASSIFIER_SCHEMA,
    )
    result = backend.generate(request)
    if on_call is not None:
        on_call(result)
    match = re.search(r'"kind"\s*:\s*"(\w+)"', result.text)
    kind: Kind = match.group(1) if match and match.group(1) in KINDS else "explain"  # type: ignore[assignment]
    difficulty = difficulty_of(question, kind)
    probability = label_probability(result, kind, KINDS)
    return Route(kind, difficulty, start_tier(kind, difficulty, probability), "classifier", round(probability, 3))


def start_tier(kind: Kind, difficulty: Difficulty, probability: float = 1.0) -> str:
    """The tier a label starts at; an unsure label (below MODEL_MIN_PROBABILITY) starts no higher than an
    explanation of the same difficulty would."""
    start = _START_TIER[(kind, difficulty)]
    if probability < MODEL_MIN_PROBABILITY:
        start = min(start, _START_TIER[("explain", difficulty)], key=_COST_ORDER.index)
    return start


def start_index(order: Sequence[str], start: str) -> int:
    """Where the cascade `order` starts for a route's start tier: that tier when configured, else the first
    configured tier at its cost level or above (a declared tier has the level of the built-in tier before
    it, the local tier's when none is), else the dearest configured one. The tiers before the start are
    asked when none from it up can answer (the cascade's fallback), so every listed tier is reachable."""
    if start not in _COST_ORDER:
        return order.index(start) if start in order else 0
    wanted, level = _COST_ORDER.index(start), 0
    for i, name in enumerate(order):
        level = _COST_ORDER.index(name) if name in _COST_ORDER else level
        if level >= wanted:
            return i
    return max(0, len(order) - 1)


def classify_lexical(question: str) -> Route | None:
    """The lexical stage: a Route when the example-trained model is confident, None when unsure."""
    label, probability = kind_model().predict(question)
    if probability < LEXICAL_MIN_PROBABILITY:
        return None
    kind: Kind = label  # type: ignore[assignment]
    difficulty = difficulty_of(question, kind)
    return Route(kind, difficulty, start_tier(kind, difficulty), "lexical", round(probability, 3))


def _default_route(question: str) -> Route:
    difficulty = difficulty_of(question, "explain")
    return Route("explain", difficulty, start_tier("explain", difficulty), "default", 0.0)


def label_probability(result: GenerationResult, label: str, labels: tuple[str, ...]) -> float:
    """P(label) among `labels`, read at the token where the label's value starts.

    The model's top alternatives at that token are matched to the labels they could begin, and their
    probabilities renormalized over the labels (the grammar allows nothing else there).
    """
    texts = [alternatives[0][0] if alternatives else "" for alternatives in result.top_logprobs]
    full = "".join(texts)
    value = re.search(r'"kind"\s*:\s*"', full)
    if value is None:
        return 0.0
    start = value.end()
    consumed = 0
    for step, alternatives in enumerate(result.top_logprobs):
        chosen = texts[step]
        if consumed <= start < consumed + len(chosen):
            offset = start - consumed
            mass = dict.fromkeys(labels, 0.0)
            for alternative, logprob in alternatives:
                piece = alternative[offset:]
                if alternative[:offset] != chosen[:offset] or not piece:
                    continue
                for name in labels:
                    if name.startswith(piece) or piece.startswith(name):
                        mass[name] += math.exp(logprob)
                        break
            total = sum(mass.values())
            return mass.get(label, 0.0) / total if total > 0 else 0.0
        consumed += len(chosen)
    return 0.0


def classify(
    question: str, classifier: Backend | None = None, on_call: Callable[[GenerationResult], None] | None = None,
    attached: str = "",
) -> Route:
    """All stages: rules, then the lexical model, then the classifier model, each only when the one
    before it is unsure; `on_call` receives the classifier model's result when it ran. A question about an
    `attached` error (a traceback, an exception line) that reads as a lookup or an explanation is a debug
    question."""
    route = classify_fast(question) or classify_lexical(question)
    if route is None:
        route = classify_with_model(question, classifier, on_call) if classifier is not None else \
            _default_route(question)
    if route.kind in ("lookup", "explain") and shows_an_error(attached):
        difficulty = difficulty_of(question, "debug")
        return Route("debug", difficulty, start_tier("debug", difficulty), route.stage, route.probability)
    return route


_ERROR_LINE = re.compile(r"^(?:E\s+)?(?:Traceback \(most recent call last\)"
                         r"|\w+(?:\.\w+)*(?:Error|Exception|Warning)\b:?"
                         r"|panic:|thread '.*' panicked|Exception in thread|\s+at [\w$.]+\(.*:\d+\))", re.MULTILINE)


def shows_an_error(text: str) -> bool:
    """Whether `text` holds an error report: a traceback, an `...Error:` line, a panic or a stack frame."""
    return bool(text) and _ERROR_LINE.search(text) is not None
