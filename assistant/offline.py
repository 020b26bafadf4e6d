"""The offline guard: while it is on, no socket reaches anything but loopback.

It patches the Python socket layer (`socket.socket.connect`, `connect_ex`, `sendto`, `sendmsg`,
`socket.create_connection` and `socket.getaddrinfo`), so every library built on it (httpx, the
provider SDKs, urllib, asyncio) is refused *before* the kernel sees the address: no SYN, no UDP
datagram and no DNS query leaves the machine. Loopback (127.0.0.0/8, ::1, `localhost`) and local
socket families (AF_UNIX, AF_NETLINK) stay allowed. Native code that opens its own sockets is out
of its reach; Tiercode's native code (llama.cpp, FAISS, tree-sitter) opens none.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from assistant.errors import TiercodeError
from models.loopback import is_loopback_host

_LOCAL_FAMILIES = frozenset(
    f for f in (getattr(socket, "AF_UNIX", None), getattr(socket, "AF_NETLINK", None)) if f is not None
)
_INET_FAMILIES = frozenset({socket.AF_INET, socket.AF_INET6})
__all__ = ["OfflineViolation", "active", "install", "is_allowed", "is_loopback_host", "offline_guard", "uninstall"]


class OfflineViolation(TiercodeError):
    """Something tried to reach a non-loopback address while Tiercode is offline."""

    def __init__(self, target: object) -> None:
        super().__init__(
            f"offline mode: refused a network connection to {target!r}; only loopback is allowed "
            "(drop --offline or set offline = false to use cloud tiers)"
        )
        self.target = target


def is_allowed(family: int, address: object) -> bool:
    """Whether a socket of `family` may talk to `address` while offline."""
    if family in _LOCAL_FAMILIES:
        return True
    if family in _INET_FAMILIES:
        return isinstance(address, tuple) and len(address) >= 2 and is_loopback_host(address[0])
    return False


class _Guard:
    """Holds the original functions; installs and removes the patches (reference-counted)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.originals: dict[str, Any] = {}

    def install(self) -> None:
        with self.lock:
            self.depth += 1
            if self.depth > 1:
                return
            cls = socket.socket
            self.originals = {
                "connect": cls.connect, "connect_ex": cls.connect_ex, "sendto": cls.sendto,
                "sendmsg": cls.sendmsg, "create_connection": socket.create_connection,
                "getaddrinfo": socket.getaddrinfo,
            }
            cls.connect = _checked_address(self.originals["connect"])  # type: ignore[method-assign]
            cls.connect_ex = _checked_address(self.originals["connect_ex"])  # type: ignore[method-assign]
            cls.sendto = _checked_sendto(self.originals["sendto"])  # type: ignore[method-assign]
            cls.sendmsg = _checked_sendmsg(self.originals["sendmsg"])  # type: ignore[method-assign]
            socket.create_connection = _checked_create_connection(self.originals["create_connection"])
            socket.getaddrinfo = _checked_getaddrinfo(self.originals["getaddrinfo"])

    def uninstall(self) -> None:
        with self.lock:
            if self.depth == 0:
                return
            self.depth -= 1
            if self.depth > 0:
                return
            cls = socket.socket
            o = self.originals
            cls.connect, cls.connect_ex = o["connect"], o["connect_ex"]  # type: ignore[method-assign]
            cls.sendto, cls.sendmsg = o["sendto"], o["sendmsg"]  # type: ignore[method-assign]
            socket.create_connection = o["create_connection"]
            socket.getaddrinfo = o["getaddrinfo"]
            self.originals = {}


_GUARD = _Guard()


def _checked_address(original: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(self: socket.socket, address: Any) -> Any:
        if not is_allowed(self.family, address):
            raise OfflineViolation(address)
        return original(self, address)

    guarded.__doc__ = original.__doc__
    return guarded


def _checked_sendto(original: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(self: socket.socket, data: Any, *args: Any) -> Any:
        address = args[-1] if args else None
        if address is not None and not is_allowed(self.family, address):
            raise OfflineViolation(address)
        return original(self, data, *args)

    return guarded


def _checked_sendmsg(original: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(self: socket.socket, buffers: Any, ancdata: Any = (), flags: int = 0, address: Any = None) -> Any:
        if address is not None and not is_allowed(self.family, address):
            raise OfflineViolation(address)
        if address is None:
            return original(self, buffers, ancdata, flags)
        return original(self, buffers, ancdata, flags, address)

    return guarded


def _checked_create_connection(original: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(address: Any, *args: Any, **kwargs: Any) -> Any:
        if not (isinstance(address, tuple) and is_loopback_host(address[0])):
            raise OfflineViolation(address)
        return original(address, *args, **kwargs)

    return guarded


def _checked_getaddrinfo(original: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        # a name other than localhost would need DNS; an IP literal needs none but is refused here
        # already, so that the caller learns at once instead of at connect time
        if host is not None and not is_loopback_host(host):
            raise OfflineViolation(host)
        return original(host, *args, **kwargs)

    return guarded


def install() -> None:
    """Turn the guard on for the whole process (nested calls are counted)."""
    _GUARD.install()


def uninstall() -> None:
    """Undo one `install()`; the patches go when the last one is undone."""
    _GUARD.uninstall()


def active() -> bool:
    """Whether the guard is on."""
    return _GUARD.depth > 0


@contextmanager
def offline_guard(enabled: bool = True) -> Iterator[None]:
    """The guard for the duration of a `with` block (a no-op when `enabled` is false)."""
    if not enabled:
        yield
        return
    install()
    try:
        yield
    finally:
        uninstall()
