"""How many CPU threads llama.cpp gets when the settings do not say: the cores this process may use that
other work leaves free, never more than the physical cores.

llama.cpp's threads meet at a barrier after every step of every token and spin while they wait. With
more threads than free cores, one of them is always descheduled and the others spin for it, so a busy
machine does not slow an answer down by its share of the CPU but collapses it (a 334-token answer took
309 s on two cores at load 6, against a few seconds quiet). Fewer threads than cores cost a little on a
quiet machine and keep a busy one near its fair share; `bench/local_bench.py --busy` measures both.
"""

from __future__ import annotations

import os


def physical_cores() -> int:
    """Physical CPU cores (llama.cpp is slower on hyper-threads); falls back to logical CPUs."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            cores = {
                (block.get("physical id"), block.get("core id"))
                for block in _cpuinfo_blocks(f.read())
                if "core id" in block
            }
        if cores:
            return len(cores)
    except OSError:
        pass
    return os.cpu_count() or 1


def usable_cpus() -> int:
    """Logical CPUs this process may run on (its affinity mask, as `taskset` or a container sets it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def choose_threads(usable: int, physical: int, load: float) -> int:
    """Threads for `usable` logical CPUs and `physical` cores while `load` runnable tasks (the load average)
    compete: the cores other work leaves free, at most the physical ones, at least one."""
    cores = max(1, min(usable, physical))
    free = usable - int(load + 0.5)
    return max(1, min(cores, free))


def default_threads() -> int:
    """`choose_threads` for this process now, from its affinity, the physical cores and the 1-minute load."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        load = 0.0
    return choose_threads(usable_cpus(), physical_cores(), load)


def _cpuinfo_blocks(text: str) -> list[dict[str, str]]:
    blocks = []
    for chunk in text.split("\n\n"):
        pairs = (line.split(":", 1) for line in chunk.splitlines() if ":" in line)
        blocks.append({k.strip(): v.strip() for k, v in pairs})
    return blocks
