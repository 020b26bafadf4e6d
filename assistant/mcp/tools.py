"""What each MCP tool does, as plain Python over a session: the index's answers (the same queries and text as
pre-flight, `tiercode find`, `search` and `map`) and `ask_cheap`, the cascade limited to what costs
nothing unless the server was started allowing a paid tier with a per-call budget."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from assistant.answer import Answer, metadata_line
from assistant.config import Settings
from assistant.errors import NoTierAnswered, TiercodeError
from assistant.pipeline import Pipeline
from assistant.route.preflight import IndexAnswer, callers_answer, definition_answer, grep_answer, outline_answer
from assistant.session import Session
from indexer.repomap import estimate_tokens, render_map
from indexer.search import hybrid_search
from models.base import Cancelled, ModelUnavailable

TokenCounter = Callable[[str], int]
_FREE_ONLY = (" (only free tiers answer here: `tiercode models pull smollm2` installs a local model;"
              " `tiercode mcp --allow-paid --max-cost USD` allows paid tiers)")


class ToolFailure(Exception):
    """An input the agent can correct (an unknown name or path, blank text): the MCP result is an error
    whose text says what to do; the server goes on."""


def agent_tokens(session: Session) -> TokenCounter:
    """How the tokens a tool returns are counted (and `repo_map` fits its budget): the local tier's tokenizer,
    whose model `ask_cheap` shares (loaded once), else the conservative estimate when none is installed."""
    try:
        backend = session.tiers.local("coder")
        backend.count_tokens("x")
    except ModelUnavailable:
        return estimate_tokens
    return backend.count_tokens


def cheap_settings(settings: Settings, max_cost: float | None) -> Settings:
    """The settings `ask_cheap` runs under: with no `max_cost`, only the free tiers of the cascade (the
    local model, free served ones); with one, every configured tier, each call stopped by that budget."""
    if max_cost is None:
        specs = settings.tier_specs()
        return settings.model_copy(update={"tiers": [t for t in settings.tiers if specs[t].free]})
    budget = settings.budget.model_copy(update={"per_query": max_cost, "action": "fail"})
    return settings.model_copy(update={"budget": budget})


@dataclass
class RepoTools:
    """The tools of one served repository. Not thread-safe: the server calls one at a time."""

    session: Session
    count_tokens: TokenCounter
    paid_allowed: bool = False
    """Whether the session's settings came from `cheap_settings` with a budget (paid tiers allowed)."""

    def find_definition(self, name: str) -> str:
        """Where `name` is defined: path:line, kind and signature of each definition."""
        return _known(definition_answer(_given(name, "name"), self.session.store()))

    def find_references(self, name: str, path: str | None = None) -> str:
        """Where `name` is used, each with its enclosing definition; only in `path` when given."""
        store = self.session.store()
        if path and outline_answer(path, store) is None:
            raise ToolFailure(_no_file(path))
        return _known(callers_answer(_given(name, "name"), store, path or ""))

    def outline(self, path: str) -> str:
        """The definitions of one file, nested, with lines and signatures."""
        found = outline_answer(_given(path, "path"), self.session.store())
        if found is None:
            raise ToolFailure(_no_file(path))
        return found.text

    def grep(self, text: str, limit: int = 50) -> str:
        """Lines of the indexed files containing `text` (smart case), each with its enclosing definition."""
        return grep_answer(_given(text, "text"), self.session.store(), self.session.repo, limit).text

    def search(self, query: str, k: int = 10) -> str:
        """The definitions a description, error message or question is about, best first."""
        query = _given(query, "query")
        vectors = self.session.vectors()
        embedder = self.session.code_embedder() if vectors is not None and vectors.size else None
        hits = hybrid_search(self.session.store(), query, k=k, vectors=vectors if embedder else None,
                             embedder=embedder)
        if not hits:
            return f"No definition matches '{query}'; try other words, or grep for a literal string."
        return "\n".join(f"{h.path}:{h.line}  {h.symbol}" for h in hits)

    def repo_map(self, tokens: int = 1024, query: str | None = None) -> str:
        """The most referenced definitions (ranked towards `query`'s names) in at most `tokens` tokens."""
        text = render_map(self.session.store(), tokens, self.count_tokens, query=(query or "").strip() or None)
        return text or f"No definition fits in {tokens} tokens; ask for more."

    def ask_cheap(self, question: str) -> Answer:
        """The question through pre-flight, the caches and the cascade this session's settings allow."""
        try:
            return Pipeline(self.session).ask(_given(question, "question"))
        except NoTierAnswered as exc:
            hint = "" if self.paid_allowed else _FREE_ONLY
            raise ToolFailure(f"ask_cheap: {exc}{hint}") from None
        except (TiercodeError, ModelUnavailable, Cancelled) as exc:
            raise ToolFailure(f"ask_cheap: {exc}") from None


def cheap_reply(answer: Answer) -> str:
    """An `ask_cheap` answer as the agent reads it: the text, notes, then who answered and the cost."""
    notes = "".join(f"\nnote: {note}" for note in answer.notes)
    stopped = f"\nstopped by the budget: {answer.budget_stop}" if answer.budget_stop else ""
    return f"{answer.answer.rstrip()}{notes}{stopped}\n({metadata_line(answer)})"


def _given(value: str, what: str) -> str:
    """`value` stripped; a blank one is a failure that says what to give."""
    if not value.strip():
        raise ToolFailure(f"{what} is blank; give a non-empty {what}")
    return value.strip()


def _known(found: IndexAnswer) -> str:
    """The answer's text, or a failure when the index does not know the name (the text names close ones)."""
    if not found.found:
        raise ToolFailure(found.text)
    return found.text


def _no_file(path: str) -> str:
    return (f"no file '{path}' in the index; give a path relative to the repository root (or its unique end,"
            " e.g. 'shapes.py'); repo_map or search list indexed files")
