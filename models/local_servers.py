"""Model servers on this machine: which of the usual local servers (Ollama, llama.cpp's llama-server,
LM Studio) answer on their loopback ports and what models they list (models/loopback.py says which
addresses are loopback).

The probe only ever asks 127.0.0.1 and ::1; which ports it asks is a parameter, so tests point it at a
server they started.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from models.base import ModelError
from models.loopback import is_loopback_host

KNOWN_SERVERS: tuple[tuple[str, int], ...] = (("Ollama", 11434), ("llama-server", 8080), ("LM Studio", 1234))
"""(name, port) of the local model servers people usually run, each on its default port."""
LOOPBACK_HOSTS = ("127.0.0.1", "::1")
"""The only hosts the probe asks."""
PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ServerStatus:
    """What one loopback port answered."""

    name: str
    base_url: str
    answered: bool
    models: tuple[str, ...] = ()
    error: str = ""


def probe(servers: Sequence[tuple[str, int]] = KNOWN_SERVERS, hosts: Sequence[str] = LOOPBACK_HOSTS,
          timeout: float = PROBE_TIMEOUT_S) -> list[ServerStatus]:
    """Ask each server's OpenAI-compatible `GET /v1/models` on loopback, all at once; one status per
    server (the first host that answered, else the first host's failure)."""
    if not all(is_loopback_host(host) for host in hosts):
        raise ValueError("the local server probe asks loopback addresses only")
    with ThreadPoolExecutor(max_workers=max(1, len(servers))) as pool:
        return list(pool.map(lambda server: _probe_one(*server, hosts, timeout), servers))


def _probe_one(name: str, port: int, hosts: Sequence[str], timeout: float) -> ServerStatus:
    from models.cloud.openai_compat import OpenAICompatTier

    first: ServerStatus | None = None
    for host in hosts:
        url = f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"
        tier = OpenAICompatTier("", url, name=name, timeout=timeout)
        try:
            return ServerStatus(name, url, True, tuple(tier.list_models()))
        except ModelError as exc:
            first = first or ServerStatus(name, url, False, error=str(exc))
        finally:
            tier.close()
    assert first is not None
    return first
