"""The offline guard refuses every non-loopback address before the kernel sees it."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator

import pytest

from assistant import offline
from assistant.offline import OfflineViolation, offline_guard

TEST_NET = "192.0.2.1"
"""RFC 5737 TEST-NET-1: documentation only, never routed."""
TEST_NET_V6 = "2001:db8::1"
"""RFC 3849: the IPv6 documentation prefix."""


@pytest.fixture
def echo_server() -> Iterator[int]:
    """A one-shot echo server on 127.0.0.1; yields its port."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(conn.recv(64))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    server.close()
    thread.join(timeout=5)


def test_non_loopback_connect_is_refused_before_the_socket_is_even_bound() -> None:
    with offline_guard():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)  # a real connect would return at once with a SYN sent and a port bound
        try:
            with pytest.raises(OfflineViolation, match=r"192\.0\.2\.1"):
                sock.connect((TEST_NET, 80))
            with pytest.raises(OfflineViolation):
                sock.connect_ex((TEST_NET, 443))
            # the kernel never got the address: no ephemeral port was ever assigned to the socket
            assert sock.getsockname() == ("0.0.0.0", 0)
            with pytest.raises(OSError):
                sock.getpeername()
        finally:
            sock.close()


def test_create_connection_udp_and_ipv6_are_refused() -> None:
    with offline_guard():
        with pytest.raises(OfflineViolation):
            socket.create_connection((TEST_NET, 80), timeout=1)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            with pytest.raises(OfflineViolation):
                udp.sendto(b"x", (TEST_NET, 53))
            with pytest.raises(OfflineViolation):
                udp.sendto(b"x", 0, (TEST_NET, 53))
            assert udp.getsockname() == ("0.0.0.0", 0)
        finally:
            udp.close()
        if socket.has_ipv6:
            six = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            try:
                with pytest.raises(OfflineViolation):
                    six.connect((TEST_NET_V6, 80, 0, 0))
                with pytest.raises(OfflineViolation):  # IPv4 mapped into IPv6 is still not loopback
                    six.connect((f"::ffff:{TEST_NET}", 80, 0, 0))
            finally:
                six.close()


def test_names_are_refused_without_a_dns_query() -> None:
    with offline_guard():
        with pytest.raises(OfflineViolation, match=r"api\.anthropic\.com"):
            socket.getaddrinfo("api.anthropic.com", 443)
        with pytest.raises(OfflineViolation):
            urllib.request.urlopen("http://example.invalid/", timeout=1)
        with pytest.raises(OfflineViolation):
            urllib.request.urlopen(f"http://{TEST_NET}/", timeout=1)


def test_loopback_still_works(echo_server: int) -> None:
    with offline_guard():
        for host in ("127.0.0.1", "localhost"):
            with socket.create_connection((host, echo_server), timeout=5) as conn:
                conn.sendall(b"ping")
                assert conn.recv(64) == b"ping"
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            assert sock.connect_ex(("127.0.0.1", echo_server)) == 0
        finally:
            sock.close()


def test_unix_sockets_are_allowed() -> None:
    left, right = socket.socketpair(socket.AF_UNIX)
    with offline_guard(), left, right:
        left.sendall(b"local")
        assert right.recv(16) == b"local"


def test_the_guard_nests_and_comes_off() -> None:
    original = socket.socket.connect
    with offline_guard():
        with offline_guard():
            assert offline.active()
        assert offline.active()  # the inner exit does not remove the outer guard
        with pytest.raises(OfflineViolation):
            socket.create_connection((TEST_NET, 80), timeout=1)
    assert not offline.active()
    assert socket.socket.connect is original
    with offline_guard(enabled=False):
        assert not offline.active()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("[::1]", True), ("::ffff:127.0.0.1", True),
     ("localhost", True), ("LOCALHOST.", True), ("10.255.255.1", False), ("192.0.2.1", False),
     ("0.0.0.0", False), ("::", False), ("example.com", False), ("127.0.0.1.nip.io", False), (None, False)],
)
def test_loopback_classification(host: object, loopback: bool) -> None:
    assert offline.is_loopback_host(host) is loopback


def test_a_whole_process_with_the_guard_cannot_reach_out() -> None:
    script = (
        "import socket, sys\n"
        "from assistant.offline import install, OfflineViolation\n"
        "install()\n"
        "try:\n"
        f"    socket.create_connection(('{TEST_NET}', 443), timeout=1)\n"
        "except OfflineViolation as exc:\n"
        "    print('refused:', exc)\n"
        "    sys.exit(0)\n"
        "sys.exit(1)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "offline mode" in done.stdout
