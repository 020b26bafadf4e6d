"""The router's lexical stage: naive Bayes over labelled example requests, in microseconds.

It learns from `route_examples.tsv` (shipped with the package, written apart from the benchmark
workload) which words, word pairs, opening words and shapes (a pasted error, a backticked name, a file
path) go with each task kind. It decides only when its tempered posterior is high; otherwise the
router asks the classifier model.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import pairwise

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_ERROR_SHAPE = re.compile(r"\b[A-Z]\w*(Error|Exception)\b|\bpanic:|\bTraceback\b|\berror\[?E?\d*\]?:", re.M)
_FILE_SHAPE = re.compile(r"\w\.(py|pyi|js|jsx|ts|tsx|go|rs|java|c|h|cc|cpp|hpp|toml|ya?ml|json|sql)\b")
_SMOOTHING = 0.5
TEMPERATURE = 2.0
"""Naive Bayes multiplies evidence as if every feature were independent, which makes its posteriors far
too sure; scores are divided by this before the softmax (chosen on the tuning half of the route bench)."""


def features(text: str) -> list[str]:
    """Words, adjacent word pairs, the opening one and two words, and shape markers of `text`."""
    words = _WORD.findall(text.lower())
    found = [*words, *(f"{a} {b}" for a, b in pairwise(words))]
    if words:
        found.append(f"^{words[0]}")
    if len(words) > 1:
        found.append(f"^{words[0]} {words[1]}")
    if "`" in text:
        found.append("<code>")
    if _ERROR_SHAPE.search(text):
        found.append("<error>")
    if _FILE_SHAPE.search(text):
        found.append("<file>")
    if text.rstrip().endswith("?"):
        found.append("<question>")
    return found


@dataclass(frozen=True)
class KindModel:
    """Multinomial naive Bayes over `features`, with add-½ smoothing."""

    log_prior: dict[str, float]
    log_likelihood: dict[str, dict[str, float]]
    log_unseen: dict[str, float]

    @classmethod
    def train(cls, examples: list[tuple[str, str]]) -> KindModel:
        """Fit on (kind, text) pairs."""
        counts: dict[str, Counter[str]] = {}
        documents: Counter[str] = Counter()
        for kind, text in examples:
            counts.setdefault(kind, Counter()).update(features(text))
            documents[kind] += 1
        vocabulary = {feature for counter in counts.values() for feature in counter}
        log_prior, log_likelihood, log_unseen = {}, {}, {}
        for kind, counter in counts.items():
            total = sum(counter.values()) + _SMOOTHING * (len(vocabulary) + 1)
            log_prior[kind] = math.log(documents[kind] / len(examples))
            log_likelihood[kind] = {f: math.log((n + _SMOOTHING) / total) for f, n in counter.items()}
            log_unseen[kind] = math.log(_SMOOTHING / total)
        return cls(log_prior, log_likelihood, log_unseen)

    def predict(self, text: str) -> tuple[str, float]:
        """The likeliest kind and its tempered posterior probability (0..1)."""
        found = features(text)
        scores = {
            kind: prior + sum(self.log_likelihood[kind].get(f, self.log_unseen[kind]) for f in found)
            for kind, prior in self.log_prior.items()
        }
        best = max(scores, key=scores.__getitem__)
        top = scores[best]
        weights = {kind: math.exp((score - top) / TEMPERATURE) for kind, score in scores.items()}
        return best, weights[best] / sum(weights.values())


def load_examples() -> list[tuple[str, str]]:
    """The (kind, text) pairs shipped in `assistant/route/route_examples.tsv`."""
    lines = (resources.files("assistant.route") / "route_examples.tsv").read_text(encoding="utf-8").splitlines()
    pairs = (line.split("\t", 1) for line in lines[1:] if "\t" in line)
    return [(kind.strip(), text.strip()) for kind, text in pairs]


@cache
def kind_model() -> KindModel:
    """The model trained on the shipped examples, once per process (a few milliseconds)."""
    return KindModel.train(load_examples())
