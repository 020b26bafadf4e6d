"""The one interface every model tier implements, and the values that cross it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]
TextCallback = Callable[[str], None]


@dataclass(frozen=True)
class Message:
    """One chat message."""

    role: Role
    content: str


@dataclass(frozen=True)
class GenerationRequest:
    """What the caller asks of a tier: the same shape for every provider."""

    messages: tuple[Message, ...]
    """System message first (if any), then the conversation; the last message is the user's."""
    max_tokens: int = 512
    """Upper bound on output tokens; budgets estimate cost with it."""
    temperature: float = 0.2
    """Sampling temperature."""
    stable_prefix: int = 1
    """How many leading messages are stable across queries (cached by providers that can)."""
    cache_ttl: Literal["5m", "1h"] = "5m"
    """Prompt-cache lifetime on providers with explicit caching (Anthropic)."""
    logprobs: bool = False
    """Ask for token log-probabilities (local tier)."""
    json_schema: dict[str, object] | None = None
    """Constrain the output to this JSON schema (local tier, via a grammar)."""
    effort: str | None = None
    """How hard a backend that thinks (`Capabilities.thinking`) should think: low, medium, high, max."""

    @property
    def system(self) -> str:
        """The system message's text, or an empty string."""
        return "\n\n".join(m.content for m in self.messages if m.role == "system")

    @property
    def chat(self) -> tuple[Message, ...]:
        """The messages other than the system message."""
        return tuple(m for m in self.messages if m.role != "system")


@dataclass(frozen=True)
class Usage:
    """Token counts normalized across providers.

    `input_tokens` never includes cached tokens: it counts only the tokens billed at the plain
    input price, whatever the provider's own convention is.
    """

    input_tokens: int = 0
    """Uncached input tokens."""
    output_tokens: int = 0
    """Generated tokens."""
    cache_read_tokens: int = 0
    """Input tokens read from the provider's prompt cache."""
    cache_write_5m_tokens: int = 0
    """Input tokens written to a 5-minute prompt cache."""
    cache_write_1h_tokens: int = 0
    """Input tokens written to a 1-hour prompt cache."""
    thinking_tokens: int = 0
    """Of `output_tokens`, those the model spent thinking before it answered (billed as output; a part of
    `output_tokens`, never added to it). Exact where the provider reports it (Gemini, Groq), else estimated."""

    @property
    def cache_write_tokens(self) -> int:
        """All cache-write tokens, whatever their lifetime."""
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def total_input_tokens(self) -> int:
        """Every prompt token, cached or not."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_5m_tokens + other.cache_write_5m_tokens,
            self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            self.thinking_tokens + other.thinking_tokens,
        )


@dataclass(frozen=True)
class CallTimings:
    """Where one call's time went, as far as its backend can tell (None: this backend cannot tell).

    An in-process model knows its load and its prompt evaluation; a streamed one (served or cloud)
    knows when the first token came, so the rest of the call is decoding.
    """

    load_ms: float | None = None
    """Loading the model for this call (an in-process model's first call)."""
    prompt_ms: float | None = None
    """Evaluating the prompt, up to the first generated token."""
    prompt_tokens: int | None = None
    """Prompt tokens evaluated (fewer than the prompt's when a saved prefix was reused)."""
    decode_ms: float | None = None
    """From the first generated token to the last."""


@dataclass(frozen=True)
class GenerationResult:
    """The end of one call: the whole text, usage and timings."""

    text: str
    provider: str
    model: str
    usage: Usage
    latency_ms: float
    """Wall time from the request to the last token."""
    ttft_ms: float | None
    """Time to the first text delta; None when nothing was generated."""
    finish_reason: str
    """`stop`, `length`, `cancelled` or the provider's own word."""
    token_logprobs: tuple[float, ...] = field(default=())
    """Log-probability of each generated token, where the tier gives them."""
    top_logprobs: tuple[tuple[tuple[str, float], ...], ...] = field(default=())
    """Per generated token: (text, log-probability) of the chosen token, then of the likeliest others."""
    notes: tuple[str, ...] = field(default=())
    """Things the caller should tell the user (for example: context was trimmed)."""
    timings: CallTimings = field(default_factory=CallTimings)
    """Where the call's time went (load, prompt evaluation, decoding), where the backend knows."""
    thinking: str = ""
    """What the model showed of its thinking (a summary on current Claude models), apart from the answer."""


class ModelError(Exception):
    """A call failed. `transient` failures may be retried; the others fail at once."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        transient: bool = False,
        retry_after: float | None = None,
        partial_usage: Usage | None = None,
        partial_text: str = "",
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.transient = transient
        self.retry_after = retry_after
        self.partial_usage = partial_usage or Usage()
        self.partial_text = partial_text


class ModelUnavailable(ModelError):
    """The tier cannot be used at all (model file missing or corrupt, no API key)."""


class MissingKey(ModelUnavailable):
    """A keyed tier with no API key in the settings or the environment."""

    def __init__(self, label: str, env_name: str, *, provider: str) -> None:
        super().__init__(f"{label}: no API key; set {env_name}", provider=provider)
        self.label = label
        self.env_name = env_name


class Cancelled(Exception):
    """The caller cancelled a generation; the partial result is attached."""

    def __init__(self, result: GenerationResult) -> None:
        super().__init__("generation cancelled")
        self.result = result


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, so callers decide by capability instead of by tier name.

    The defaults are a priced cloud tier's: it bills every call, gives no token log-probabilities, is
    worth retrying on transient failures, has no window the caller must fit and caches stable prefixes.
    """

    free: bool = False
    """Calls cost nothing (no price lookup, nothing for a budget to stop)."""
    logprobs: bool = False
    """Answers carry token log-probabilities (`GenerationResult.token_logprobs`) when the request asks."""
    retries: bool = True
    """Transient failures are worth retrying (models/retry.py)."""
    context_window: int | None = None
    """Tokens a prompt and its answer must fit together; None when it does not limit what is sent."""
    prompt_caching: bool = True
    """The provider reuses a stable prefix (the repo map in the system prompt is worth sending)."""
    thinking: bool = False
    """The model thinks before it answers, billed as output within max_tokens, steered by a request's effort."""
    batch: bool = False
    """The provider also takes many requests at once and answers them within a day at its batch price: the
    backend has `batches()` (models/batching.py, `batches_of`)."""


@dataclass(frozen=True)
class TierHealth:
    """What a backend found when it checked itself (`tiercode doctor`)."""

    ok: bool
    """It can answer: reachable, and (where it can tell) serving its model."""
    detail: str
    """One line: what it found (the model served, or why it cannot answer)."""
    warning: str = ""
    """Something that does not stop it answering but is likely a mistake (a model the server does not list)."""


LOCAL_CAPABILITIES = Capabilities(free=True, logprobs=True, retries=False, prompt_caching=False)
"""The in-process llama.cpp tier's (its window comes from the loaded model)."""


@runtime_checkable
class Backend(Protocol):
    """A model tier: streams text deltas to `on_text` and returns one result.

    A backend may also declare `capabilities` (a `Capabilities`), read with `capabilities_of`, and
    `check(timeout) -> TierHealth`, how it checks itself without generating, read with `health_of`. One that
    loads its model on first use declares `loaded` and `load()` (see `pending_load`).
    """

    provider: str
    model: str

    def generate(
        self,
        request: GenerationRequest,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        """Run one generation; raise ModelError on failure and Cancelled when `cancel` is set."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes for this model (exact where the tokenizer is local)."""
        ...


def approx_tokens(text: str) -> int:
    """A model-free token estimate: four characters a token, rounded up (what a cloud call is estimated at
    before it is made, and what a reply without usage figures is counted at)."""
    return -(-len(text) // 4)


def pending_load(backend: Backend) -> Callable[[], None] | None:
    """The `load` of a backend that loads its model on first use and has not yet (an in-process model), for
    the caller to run and time apart; None for any other backend."""
    if getattr(backend, "loaded", True):
        return None
    load = getattr(backend, "load", None)
    return load if callable(load) else None


def capabilities_of(backend: Backend) -> Capabilities:
    """A backend's `capabilities` attribute; a backend that declares none is a priced cloud tier."""
    declared = getattr(backend, "capabilities", None)
    return declared if isinstance(declared, Capabilities) else Capabilities()


def health_of(backend: Backend, timeout: float) -> TierHealth:
    """A backend's own check (`check(timeout)`); one that declares none was built, which is all it can tell."""
    check = getattr(backend, "check", None)
    if not callable(check):
        return TierHealth(True, f"{backend.provider} {backend.model}: built (it has no check of its own)")
    health = check(timeout)
    assert isinstance(health, TierHealth)
    return health
