"""llama.cpp's own OpenAI-compatible server (`python -m llama_cpp.server`) on 127.0.0.1, for tests.

`LlamaServer` starts the server on a free loopback port serving one GGUF, waits until `GET
/v1/models` answers, and stops it on exit; the `llama_server` fixture shares one for the session.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest

STARTUP_LIMIT = 120.0
"""Seconds the server may take to load the model and answer."""
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""No proxy: the test server is on this machine."""


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LlamaServer:
    """`python -m llama_cpp.server` serving `model` on 127.0.0.1, as a context manager."""

    def __init__(self, model: Path, context_tokens: int = 2048, threads: int = 1) -> None:
        self.model = model
        self.port = free_port()
        self._args = ["--n_ctx", str(context_tokens), "--n_threads", str(threads)]
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - open while the server runs, closed on exit
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """What an OpenAI SDK client takes as its base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model_id(self) -> str:
        """The model id the server lists (the path it was given)."""
        return str(self.model)

    def __enter__(self) -> Self:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--host", "127.0.0.1",
             "--port", str(self.port), "--verbose", "False", *self._args],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + STARTUP_LIMIT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self._process.returncode}: {self.log()[-2000:]}")
            with contextlib.suppress(OSError), _OPENER.open(f"{self.base_url}/models", timeout=2) as response:
                if response.status == 200:
                    return
            time.sleep(0.25)
        raise RuntimeError(f"llama_cpp.server did not answer within {STARTUP_LIMIT:g}s: {self.log()[-2000:]}")

    def log(self) -> str:
        """What the server has printed so far."""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()


@pytest.fixture(scope="session")
def llama_server(quickstart_gguf: Path) -> Iterator[LlamaServer]:
    """The quick-start GGUF behind llama.cpp's OpenAI-compatible server, for the whole session."""
    with LlamaServer(quickstart_gguf) as server:
        yield server
