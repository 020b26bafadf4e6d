"""The machinery the API emulators share: a loopback HTTP server, scripted behaviours, recording.

An emulator is a context manager that serves one provider's API on 127.0.0.1 (an ephemeral port)
from a background thread. Each request takes the next behaviour from its script (then the default
one): answer with some text (`Reply`), fail with an HTTP status (`Fail`), cut the stream off midway
(`Drop`), send an error event inside a started stream (`StreamFail`), or send bytes that are not
the API's format at all (`Garbage`). Every request is recorded
with its headers and JSON body so tests can check API keys and cache breakpoints.

Token counts are estimated as characters / 4, rounded up; a `Reply(usage=...)` overrides any count
a test wants exact.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import socket
import sys
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

_POLL_INTERVAL = 0.02
"""Seconds between the server's shutdown checks (how long leaving the context takes)."""
PAUSE_LIMIT = 10.0
"""Seconds a paused stream waits for `resume` before it carries on anyway."""


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server on the loopback for tests: daemon threads, and a client that hangs up (a
    download cancelled, a probe, a raced mirror) is what the tests do, not an error to print."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass(frozen=True)
class Reply:
    """Answer normally, streaming `text` (as `chunks` when given, else word by word)."""

    text: str = "Hello from the emulator."
    chunks: tuple[str, ...] | None = None
    finish: str = "stop"
    """`stop` or `length`, mapped to the provider's own word."""
    thinking: str = ""
    """Reasoning the model does before answering (billed as output; streamed where the API does)."""
    usage: Mapping[str, Any] | None = None
    """Usage fields (the provider's own names) that replace the computed ones."""
    delay: float = 0.0
    """Seconds between deltas."""
    pause_after: int | None = None
    """After this many text deltas, wait until the emulator's `resume` event is set."""
    headers: Mapping[str, str] = field(default_factory=dict)

    def deltas(self) -> list[str]:
        """The text deltas to stream."""
        return list(self.chunks) if self.chunks is not None else split_text(self.text)


@dataclass(frozen=True)
class Fail:
    """Answer with an HTTP error status and the provider's error body."""

    status: int
    retry_after: float | str | None = None
    """Sent as the `retry-after` header (Gemini: as RetryInfo in the body)."""
    message: str | None = None
    error_type: str | None = None
    """The provider's error type/status name; default: the usual one for `status`."""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Drop:
    """Start streaming `text`, then close the socket after `after` deltas (a connection lost midway)."""

    text: str = "This answer is cut off somewhere in the middle of its sentence."
    after: int = 3
    clean: bool = False
    """End the body properly instead of cutting the connection (a stream that just stops short)."""


@dataclass(frozen=True)
class StreamFail:
    """Start streaming, then send the provider's in-stream error event for `status` after `after` deltas."""

    status: int = 529
    text: str = "This answer fails partway through."
    after: int = 2
    message: str | None = None


@dataclass(frozen=True)
class Garbage:
    """Start streaming `text`, then after `after` deltas send `raw` as it is and end the body: a misbehaving
    server (a body that is not UTF-8, a `data:` line that is not JSON)."""

    raw: bytes = b"data: \xff\xfe not utf-8\n\n"
    text: str = "A few good words before the server goes wrong."
    after: int = 2


Behaviour = Reply | Fail | Drop | StreamFail | Garbage


@dataclass(frozen=True)
class RecordedRequest:
    """A request an emulator received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Header names lower-cased."""
    body: Any
    """The JSON body, parsed (None when there was none or it was not JSON)."""
    raw: bytes


def split_text(text: str) -> list[str]:
    """`text` as word-sized deltas that join back to it."""
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


def count_tokens(text: str) -> int:
    """The emulators' token estimate: characters / 4, rounded up."""
    return math.ceil(len(text) / 4)


def prefix_key(model: str, parts: list[str]) -> str:
    """A cache key for a prompt prefix."""
    digest = hashlib.sha256(model.encode())
    for part in parts:
        digest.update(b"\0" + part.encode())
    return digest.hexdigest()


class Exchange:
    """One request/response on a handler: JSON answers, SSE streams, dropped connections."""

    def __init__(self, handler: _Handler) -> None:
        self._handler = handler
        self.streaming = False

    def json(self, status: int, body: object, headers: Mapping[str, str] | None = None) -> None:
        """Answer with a JSON body."""
        data = json.dumps(body).encode()
        handler = self._handler
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()

    def start_stream(self, headers: Mapping[str, str] | None = None, content_type: str = "text/event-stream") -> None:
        """Send a 200 with a chunked body to follow (server-sent events unless `content_type` says otherwise)."""
        handler = self._handler
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        self.streaming = True

    def sse(self, data: object, event: str | None = None, newline: str = "\n") -> None:
        """Send one server-sent event (`data` as JSON unless it is a string)."""
        payload = data if isinstance(data, str) else json.dumps(data)
        text = (f"event: {event}{newline}" if event else "") + f"data: {payload}{newline}{newline}"
        self._chunk(text.encode())

    def end_stream(self) -> None:
        """Finish the chunked body properly."""
        self._handler.wfile.write(b"0\r\n\r\n")
        self._handler.wfile.flush()

    def cut(self, drop: Drop) -> None:
        """End a stream the way `drop` says: stop short, or lose the connection."""
        if drop.clean:
            self.end_stream()
        else:
            self.drop()

    def raw(self, data: bytes) -> None:
        """Send `data` as the next piece of a started stream's body, whatever it holds."""
        self._chunk(data)

    def drop(self) -> None:
        """Close the connection without finishing the body."""
        handler = self._handler
        handler.close_connection = True
        handler.wfile.flush()
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_RDWR)

    def _chunk(self, data: bytes) -> None:
        self._handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self._handler.wfile.flush()


class Emulator:
    """Base of the provider emulators: a loopback server with a script of behaviours."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        min_cache_tokens: int = 1024,
        default: Behaviour | None = None,
    ) -> None:
        """`api_key`: when set, requests carrying another key are refused as the provider would."""
        self.api_key = api_key
        self.min_cache_tokens = min_cache_tokens
        """Shortest prompt prefix the emulated cache keeps."""
        self.default: Behaviour = default or Reply()
        self.requests: list[RecordedRequest] = []
        self.resume = threading.Event()
        """Set it to let paused streams (`Reply(pause_after=...)`) carry on."""
        self._script: deque[Behaviour] = deque()
        self._cached: set[str] = set()
        self.errors: list[str] = []
        """Exceptions the emulator itself raised while serving (a bug in it or a request it cannot parse)."""
        self._lock = threading.Lock()
        self._httpd: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`; the server must be running."""
        if self._httpd is None:
            raise RuntimeError("the emulator is not running; use it as a context manager")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def base_url(self) -> str:
        """What to pass to the provider's SDK as its base URL."""
        return self.url

    def script(self, *behaviours: Behaviour) -> Self:
        """Queue behaviours for the next requests, in order; afterwards `default` answers."""
        with self._lock:
            self._script.extend(behaviours)
        return self

    @property
    def pending(self) -> int:
        """Scripted behaviours not used yet."""
        with self._lock:
            return len(self._script)

    def bodies(self) -> list[Any]:
        """The JSON bodies of the requests received, in order."""
        with self._lock:
            return [r.body for r in self.requests]

    def __enter__(self) -> Self:
        handler = type(f"{type(self).__name__}Handler", (_Handler,), {"emulator": self})
        self._httpd = LoopbackHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(_POLL_INTERVAL,), name=type(self).__name__, daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.resume.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- for the provider emulators ----------------------------------------------------------

    def record(self, request: RecordedRequest) -> None:
        """Keep a received request."""
        with self._lock:
            self.requests.append(request)

    def note_error(self, message: str) -> None:
        """Keep an error the emulator raised while serving."""
        with self._lock:
            self.errors.append(message)

    def next_behaviour(self) -> Behaviour:
        """The behaviour for the request being served."""
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def cache_lookup(self, key: str, tokens: int) -> bool:
        """Whether a prefix of `tokens` tokens is cached; caches it when it is long enough."""
        if tokens < self.min_cache_tokens:
            return False
        with self._lock:
            hit = key in self._cached
            self._cached.add(key)
        return hit

    def cache_contains(self, key: str) -> bool:
        """Whether `key` is cached."""
        with self._lock:
            return key in self._cached

    def cache_store(self, key: str) -> None:
        """Cache a prefix."""
        with self._lock:
            self._cached.add(key)

    def pause(self, reply: Reply, sent: int) -> None:
        """Wait for `resume` when a reply pauses after `sent` deltas."""
        if reply.pause_after is not None and sent == reply.pause_after:
            self.resume.wait(PAUSE_LIMIT)

    def handle(self, exchange: Exchange, request: RecordedRequest) -> None:
        """Serve one request; the provider emulators implement it."""
        raise NotImplementedError


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    emulator: Emulator

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        parts = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            raw=raw,
        )
        self.emulator.record(request)
        exchange = Exchange(self)
        try:
            self.emulator.handle(exchange, request)
        except (BrokenPipeError, ConnectionResetError):  # the client went away (a cancelled stream)
            self.close_connection = True
        except Exception as exc:  # a bug in the emulator: keep it for the test, answer 500
            self.emulator.note_error(f"{type(exc).__name__}: {exc}")
            self.close_connection = True
            if not exchange.streaming:
                exchange.json(500, {"error": {"message": f"emulator error: {exc}"}})
