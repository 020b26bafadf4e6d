"""`tiercode doctor`: llama.cpp's backend, installed models, provider keys (set or not), reachability, and
every tier of the cascade and every declared one, each checked by its own backend; exit 1 when a tier the
user configured cannot answer, 2 when the configuration cannot be read."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from assistant.config import Settings
    from assistant.tiers import TierCheck

from assistant import paths
from models.local_servers import KNOWN_SERVERS, ServerStatus, probe
from models.manager import ModelManager
from models.tier_registry import PROVIDER_KINDS

_GPU_BACKENDS = ("CUDA", "Metal", "Vulkan", "ROCm", "HIP", "SYCL", "OpenCL", "CANN", "MUSA", "Kompute")
_REACH_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Provider:
    """A cloud provider: the environment variables holding its key and its base URL."""

    name: str
    key_env: tuple[str, ...]
    config_key: str
    base_url_env: str
    default_base_url: str

    @property
    def base_url(self) -> str:
        """The base URL in effect (the environment's override, or the provider's own)."""
        return (os.environ.get(self.base_url_env) or self.default_base_url).rstrip("/")


PROVIDERS = tuple(
    Provider(kind.name, kind.key_env, f"{kind.name}_api_key", kind.base_url_env or "", kind.default_base_url or "")
    for kind in PROVIDER_KINDS.values() if kind.default_base_url
)
"""The provider kinds with a public API of their own (models/tier_registry.py)."""


@dataclass(frozen=True)
class KeyStatus:
    """Whether a provider's key is set, and where from (never its value)."""

    provider: str
    set: bool
    source: str | None
    """The environment variable's name or `user file`; None when unset."""


@dataclass(frozen=True)
class Reachability:
    """Whether a provider's base URL answered."""

    provider: str
    url: str
    status: str
    """`reachable`, `unreachable` or `skipped`."""
    detail: str = ""
    latency_ms: float | None = None


def llama_backend() -> dict[str, object]:
    """llama.cpp's build: GPU offload support, the backend in use (CPU, CUDA, Metal, Vulkan…) and system info."""
    try:
        import llama_cpp
    except ImportError as exc:
        return {"backend": "unavailable", "gpu_offload": False, "version": None, "system_info": str(exc)}
    info = llama_cpp.llama_print_system_info()
    text = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
    offload = bool(llama_cpp.llama_supports_gpu_offload())
    found = {name.upper() for name in re.findall(r"(?:^|\|)\s*([A-Za-z][A-Za-z0-9_]*) :", text)}
    gpu = [name for name in _GPU_BACKENDS if name.upper() in found]
    backend = (gpu[0] if gpu else "GPU") if offload else "CPU"
    return {"backend": backend, "gpu_offload": offload, "version": getattr(llama_cpp, "__version__", None),
            "system_info": text.strip()}


def key_status() -> list[KeyStatus]:
    """Each provider's key: set or unset, and from where; values are never read into the report."""
    from assistant.config import read_config_file

    try:
        user = read_config_file(paths.user_config_file(), False)
    except Exception:
        user = {}
    result = []
    for provider in PROVIDERS:
        source = next((env for env in provider.key_env if os.environ.get(env)), None)
        if source is None and user.get(provider.config_key):
            source = "user file"
        result.append(KeyStatus(provider.name, source is not None, source))
    return result


def check_reachable(provider: Provider, timeout: float = _REACH_TIMEOUT_S) -> Reachability:
    """One short HTTPS (or HTTP) HEAD of the provider's base URL; any HTTP answer counts as reachable."""
    import httpx

    url = provider.base_url
    started = time.perf_counter()
    try:
        response = httpx.head(url, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return Reachability(provider.name, url, "unreachable", f"{type(exc).__name__}: {detail}"[:160])
    latency = round((time.perf_counter() - started) * 1000, 1)
    return Reachability(provider.name, url, "reachable", f"HTTP {response.status_code}", latency)


def reachability(offline: bool) -> list[Reachability]:
    """Every provider's reachability, checked in parallel; all `skipped` when offline."""
    if offline:
        return [Reachability(p.name, p.base_url, "skipped", "offline") for p in PROVIDERS]
    with ThreadPoolExecutor(max_workers=len(PROVIDERS)) as pool:
        return list(pool.map(check_reachable, PROVIDERS))


def _settings(offline: bool) -> Settings | str:
    """The user's settings (offline when the flag says so), or the one-line reason they cannot be read."""
    from assistant.config import load_settings

    try:
        return load_settings(None, **({"offline": True} if offline else {}))
    except Exception as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def tier_checks(settings: Settings, timeout: float = _REACH_TIMEOUT_S) -> list[TierCheck]:
    """Every tier of the cascade, then every other declared one, each checked by its backend."""
    from assistant.tiers import TierSet

    tiers = TierSet(settings)
    names = list(dict.fromkeys([*settings.tiers, *settings.tier]))
    return [tiers.check(name, timeout) for name in names]


def build_report(offline: bool, servers: Sequence[tuple[str, int]] = KNOWN_SERVERS) -> dict[str, object]:
    """Everything `doctor` reports, as plain data; `servers`: the (name, port) pairs asked on loopback
    (offline too: loopback stays allowed)."""
    manager = ModelManager(paths.models_dir())
    settings = _settings(offline)
    if not isinstance(settings, str):
        offline = settings.offline
    return {
        "llama_cpp": llama_backend(),
        "models_dir": str(manager.root),
        "models": [{"name": m.entry.name, "roles": list(m.entry.roles), "path": str(m.path), "size": m.size}
                   for m in manager.installed()],
        "keys": [asdict(k) for k in key_status()],
        "providers": [asdict(r) for r in reachability(offline)],
        "local_servers": [asdict(s) for s in probe(servers)],
        "tiers": [] if isinstance(settings, str) else [asdict(c) for c in tier_checks(settings)],
        "cascade": [] if isinstance(settings, str) else list(settings.tiers),
        "config_error": settings if isinstance(settings, str) else None,
        "offline": offline,
    }


def exit_code(report: dict[str, object]) -> int:
    """2 when the configuration cannot be read, 1 when a configured tier of the cascade cannot answer, else 0."""
    if report["config_error"]:
        return 2
    cascade = report["cascade"]
    assert isinstance(cascade, list)
    failed = [c for c in report["tiers"] if c["status"] == "failed" and c["tier"] in cascade]  # type: ignore[attr-defined]
    return 1 if failed else 0


def format_report(report: dict[str, object]) -> str:
    """The report as text lines."""
    llama = report["llama_cpp"]
    assert isinstance(llama, dict)
    lines = [f"llama.cpp {llama['version'] or '?'}: backend {llama['backend']}"
             f" (GPU offload {'yes' if llama['gpu_offload'] else 'no'})",
             f"  {llama['system_info']}", f"models in {report['models_dir']}:"]
    models = report["models"]
    assert isinstance(models, list)
    lines += [f"  {m['name']:<20} {m['size'] / 1e6:>8.1f} MB  {m['path']}" for m in models]
    if not models:
        lines.append("  none installed; run `tiercode models pull smollm2` for a 98 MB quick start")
    lines.append("provider keys:")
    for key in report["keys"]:  # type: ignore[attr-defined]
        lines.append(f"  {key['provider']:<10} {'set (' + key['source'] + ')' if key['set'] else 'not set'}")
    lines.append("providers:")
    for reach in report["providers"]:  # type: ignore[attr-defined]
        latency = f", {reach['latency_ms']:.0f} ms" if reach["latency_ms"] is not None else ""
        lines.append(f"  {reach['provider']:<10} {reach['status']:<12} {reach['url']} ({reach['detail']}{latency})")
    lines.append("local model servers (use one with local.server or a [tier.NAME] table):")
    lines += [_server_line(ServerStatus(**{**s, "models": tuple(s["models"])}))
              for s in report["local_servers"]]  # type: ignore[attr-defined]
    return "\n".join(lines + _tier_lines(report))


def _tier_lines(report: dict[str, object]) -> list[str]:
    if report["config_error"]:
        return [f"tiers: the configuration cannot be read: {report['config_error']}"]
    cascade = report["cascade"]
    assert isinstance(cascade, list)
    lines = [f"tiers (cascade: {' → '.join(cascade)}):"]
    for check in report["tiers"]:  # type: ignore[attr-defined]
        where = "" if check["tier"] in cascade else " (declared, not in tiers)"
        status = "FAILED" if check["status"] == "failed" else check["status"]
        lines.append(f"  {check['tier']:<10} {status:<11} {check['detail']}{where}")
        if check["warning"]:
            lines.append(f"  {'':<10} warning: {check['warning']}")
    return lines


def _server_line(server: ServerStatus) -> str:
    if not server.answered:
        return f"  {server.name:<12} not answering  {server.base_url}"
    return f"  {server.name:<12} answers        {server.base_url}  models: {', '.join(server.models) or 'none listed'}"


@click.command("doctor")
@click.option("--offline", is_flag=True, help="Skip the network checks.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def doctor(offline: bool, as_json: bool) -> None:
    """Report llama.cpp's backend, installed models, which provider keys are set and which providers answer."""
    report = build_report(offline)
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))
    code = exit_code(report)
    if code:
        click.get_current_context().exit(code)


COMMANDS = [doctor]
