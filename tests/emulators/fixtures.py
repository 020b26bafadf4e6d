"""Pytest fixtures for the API emulators; import the ones a test module or conftest needs.

Each emulator fixture yields a running emulator that accepts only its test key (in KEYS). Benchmarks
and scripts can use the emulator classes directly, as context managers, without pytest.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.emulators.anthropic_api import AnthropicEmulator
from tests.emulators.gemini_api import GeminiEmulator
from tests.emulators.groq_api import GroqEmulator

KEYS = {
    "anthropic": "sk-ant-emulator-4c1d2e3f",
    "gemini": "AIzaEmulator-5b6c7d8e",
    "groq": "gsk_emulator_9a8b7c6d",
}
"""The API key each emulator fixture accepts."""
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@pytest.fixture
def anthropic_emulator() -> Iterator[AnthropicEmulator]:
    """A running Anthropic Messages API emulator that accepts KEYS["anthropic"]."""
    with AnthropicEmulator(api_key=KEYS["anthropic"]) as emulator:
        yield emulator


@pytest.fixture
def gemini_emulator() -> Iterator[GeminiEmulator]:
    """A running Gemini API emulator that accepts KEYS["gemini"]."""
    with GeminiEmulator(api_key=KEYS["gemini"]) as emulator:
        yield emulator


@pytest.fixture
def groq_emulator() -> Iterator[GroqEmulator]:
    """A running Groq chat completions emulator that accepts KEYS["groq"]."""
    with GroqEmulator(api_key=KEYS["groq"]) as emulator:
        yield emulator


@dataclass(frozen=True)
class CloudEmulators:
    """The three emulators, running, with the environment pointing the SDKs at them."""

    anthropic: AnthropicEmulator
    gemini: GeminiEmulator
    groq: GroqEmulator


@pytest.fixture
def cloud_emulators(monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudEmulators]:
    """All three emulators, with *_BASE_URL and *_API_KEY set so code that reads the environment uses them."""
    with (
        AnthropicEmulator(api_key=KEYS["anthropic"]) as anthropic,
        GeminiEmulator(api_key=KEYS["gemini"]) as gemini,
        GroqEmulator(api_key=KEYS["groq"]) as groq,
    ):
        monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic.base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEYS["anthropic"])
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", gemini.base_url)
        monkeypatch.setenv("GEMINI_API_KEY", KEYS["gemini"])
        monkeypatch.setenv("GROQ_BASE_URL", groq.base_url)
        monkeypatch.setenv("GROQ_API_KEY", KEYS["groq"])
        yield CloudEmulators(anthropic, gemini, groq)


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any TCP connection to a host other than the loopback interface."""
    connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else None
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in LOOPBACK:
            raise ConnectionRefusedError(f"test tried to reach {address!r}; only the loopback emulators are allowed")
        connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)
