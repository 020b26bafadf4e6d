"""Which addresses are this machine: loopback IP literals and `localhost` (the offline guard's test and
the tier registry's test of a local endpoint)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_host(host: object) -> bool:
    """True for a loopback IP literal (127.0.0.0/8, ::1, IPv4-mapped loopback) or `localhost`."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip().rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    name = name.strip("[]").split("%", 1)[0]  # an IPv6 zone id is not part of the address
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def is_loopback_url(url: str | None) -> bool:
    """Whether `url` points at this machine (a loopback host)."""
    return url is not None and is_loopback_host(urlsplit(url).hostname)
