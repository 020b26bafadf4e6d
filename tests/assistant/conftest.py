"""Fixtures of the assistant tests: the running API emulators and sessions on the sample repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.config import load_settings
from assistant.session import Reporter, Session
from tests.emulators import fixtures

cloud_emulators = fixtures.cloud_emulators
loopback_only = fixtures.loopback_only


@pytest.fixture
def open_session(sample_repo: Path, cloud_emulators: fixtures.CloudEmulators) -> Iterator[Any]:
    """Open sessions on the sample repo (the cloud tiers, with the emulators' keys) with settings
    overrides and an optional reporter; all are closed afterwards."""
    sessions: list[Session] = []

    def make(reporter: Reporter | None = None, **overrides: Any) -> Session:
        overrides.setdefault("tiers", ["groq", "gemini", "sonnet"])
        overrides.setdefault("max_output_tokens", 256)
        session = Session(sample_repo, load_settings(sample_repo, **overrides), reporter)
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()
