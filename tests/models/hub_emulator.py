"""A loopback emulator of the Hugging Face Hub's file endpoints, as huggingface_hub talks to them.

Two servers on 127.0.0.1, like the real Hub and its CDN (different origins, so huggingface_hub does
not follow the redirect on its metadata HEAD and reads the file's metadata off the redirect itself):

- hub: `HEAD|GET /{repo}/resolve/{revision}/{filename}`.
  LFS file -> `302` with `Location` on the CDN, `X-Repo-Commit`, `X-Linked-Etag` (the file's sha256),
  `X-Linked-Size`, `ETag` (the pointer's git oid). Small (non-LFS) file -> `200` with `ETag` (git
  blob sha1), `X-Repo-Commit`, `Content-Length` and the body. Unknown repo or file -> `404` with
  `X-Error-Code: RepoNotFound|EntryNotFound` (what `hf_raise_for_status` maps to its errors).
- cdn: `HEAD|GET /blobs/{sha256}`, with `Accept-Ranges: bytes` and `Range: bytes=N-` -> `206` +
  `Content-Range`, or `416` past the end.

Every request is recorded (method, path, headers) so tests can see Range requests.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from urllib.parse import unquote, urlsplit

from tests.emulators.server import LoopbackHTTPServer

_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<filename>.+)$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class HubFile:
    """One file in a repository of the emulated Hub."""

    data: bytes
    lfs: bool = True
    """LFS files redirect to the CDN and carry their sha256 as `X-Linked-Etag`."""
    advertised_sha256: str | None = None
    """The sha256 the Hub claims (default: the real one); set it to test checksum mismatches."""
    drop_after: int | None = None
    """Close the connection after this many body bytes, on the first GET only (an interrupted download)."""

    @property
    def sha256(self) -> str:
        """The sha256 the Hub advertises."""
        return self.advertised_sha256 or hashlib.sha256(self.data).hexdigest()

    @property
    def git_oid(self) -> str:
        """The git blob sha1 of the file (non-LFS) or of its LFS pointer."""
        body = self.data if not self.lfs else (
            f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.data)}\n".encode()
        )
        return hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()


@dataclass(frozen=True)
class RecordedRequest:
    """A request the emulator received."""

    server: str
    """`hub` or `cdn`."""
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    """Header names lower-cased."""


class HubEmulator:
    """The emulated Hub; use as a context manager, then pass `endpoint` to huggingface_hub."""

    def __init__(self, commit: str = "0123456789abcdef0123456789abcdef01234567") -> None:
        self.commit = commit
        self.files: dict[tuple[str, str, str], HubFile] = {}
        self.requests: list[RecordedRequest] = []
        self.ignore_range = False
        """Answer Range requests with the whole file (200), as some proxies do."""
        self._lock = threading.Lock()
        self._dropped: set[str] = set()
        self._hub = _Server(self, "hub")
        self._cdn = _Server(self, "cdn")

    @property
    def endpoint(self) -> str:
        """The Hub's base URL (what HF_ENDPOINT would be)."""
        return self._hub.url

    @property
    def cdn(self) -> str:
        """The CDN's base URL."""
        return self._cdn.url

    def add(self, repo: str, filename: str, data: bytes, revision: str = "main", **options: object) -> HubFile:
        """Publish `data` as `repo/filename` at `revision`; options as in HubFile."""
        hub_file = HubFile(data, **options)  # type: ignore[arg-type]
        self.files[(repo, revision, filename)] = hub_file
        return hub_file

    def range_requests(self) -> list[str]:
        """The Range headers of every GET received, in order."""
        return [r.headers["range"] for r in self.requests if r.method == "GET" and "range" in r.headers]

    def __enter__(self) -> HubEmulator:
        self._hub.start()
        self._cdn.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._hub.stop()
        self._cdn.stop()

    def record(self, request: RecordedRequest) -> None:
        """Keep a received request."""
        with self._lock:
            self.requests.append(request)

    def take_drop(self, hub_file: HubFile, sha256: str) -> int | None:
        """The byte count to cut this GET at, once per file."""
        with self._lock:
            if hub_file.drop_after is None or sha256 in self._dropped:
                return None
            self._dropped.add(sha256)
            return hub_file.drop_after

    def blob(self, sha256: str) -> HubFile | None:
        """The LFS file with this advertised sha256."""
        return next((f for f in self.files.values() if f.lfs and f.sha256 == sha256), None)


class _Server:
    def __init__(self, hub: HubEmulator, name: str) -> None:
        handler = type(f"{name.title()}Handler", (_Handler,), {"hub": hub, "server_name": name})
        self.httpd = LoopbackHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: HubEmulator
    server_name: str

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._handle(body=False)

    def do_GET(self) -> None:
        self._handle(body=True)

    def _handle(self, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.hub.record(RecordedRequest(self.server_name, self.command, path, headers))
        if self.server_name == "cdn":
            self._cdn(path, body)
        else:
            self._resolve(path, body)

    def _resolve(self, path: str, body: bool) -> None:
        match = _RESOLVE.match(path)
        if match is None:
            self._error(404, "RepoNotFound")
            return
        repo, revision, filename = match["repo"], match["revision"], match["filename"]
        if not any(key[0] == repo for key in self.hub.files):
            self._error(404, "RepoNotFound")
            return
        hub_file = self.hub.files.get((repo, revision, filename))
        if hub_file is None:
            self._error(404, "EntryNotFound")
            return
        common = {"X-Repo-Commit": self.hub.commit, "ETag": f'"{hub_file.git_oid}"'}
        if hub_file.lfs:
            self._send(302, b"", body, {
                **common, "Location": f"{self.hub.cdn}/blobs/{hub_file.sha256}",
                "X-Linked-Etag": f'"{hub_file.sha256}"', "X-Linked-Size": str(len(hub_file.data)),
            })
            return
        self._ranged(hub_file, body, common, hub_file.git_oid)

    def _cdn(self, path: str, body: bool) -> None:
        sha256 = path.rsplit("/", 1)[-1]
        hub_file = self.hub.blob(sha256) if path.startswith("/blobs/") else None
        if hub_file is None:
            self._send(404, b"not found", body, {})
            return
        self._ranged(hub_file, body, {"ETag": f'"{sha256}"'}, sha256)

    def _ranged(self, hub_file: HubFile, body: bool, headers: dict[str, str], key: str) -> None:
        data, status = hub_file.data, 200
        headers = {**headers, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        requested = None if self.hub.ignore_range else self.headers.get("Range")
        if requested:
            match = _RANGE.match(requested.strip())
            start = int(match[1]) if match else len(data)
            end = int(match[2]) if match and match[2] else len(data) - 1
            if start >= len(data):
                self._send(416, b"", body, {"Content-Range": f"bytes */{len(data)}"})
                return
            end = min(end, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start:end + 1], 206
        cut = self.hub.take_drop(hub_file, key) if body else None
        self._send(status, data, body, headers, cut=cut)

    def _error(self, status: int, code: str) -> None:
        message = f"{code}: not on the emulated hub".encode()
        self._send(status, message, self.command == "GET", {"X-Error-Code": code, "X-Repo-Commit": self.hub.commit})

    def _send(self, status: int, data: bytes, body: bool, headers: dict[str, str], cut: int | None = None) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not body:
            return
        if cut is not None and cut < len(data):
            self.wfile.write(data[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(data)
