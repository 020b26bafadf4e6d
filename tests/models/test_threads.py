"""The default thread count for llama.cpp: the physical cores other work leaves free, never fewer than one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from models.threads import choose_threads, physical_cores, usable_cpus


@pytest.mark.parametrize(("usable", "physical", "load", "expected"), [
    (2, 2, 0.2, 2),   # a quiet two-core machine: both cores
    (2, 2, 1.0, 1),   # one core taken by other work: one thread, which never waits for a descheduled twin
    (2, 2, 6.0, 1),   # the load the issue measured (a pip build and a test suite): one thread, not a collapse
    (16, 8, 0.0, 8),  # hyper-threads: the physical cores
    (16, 8, 12.0, 4),
    (1, 8, 0.0, 1),   # a process pinned to one CPU
])
def test_threads_are_the_physical_cores_that_other_work_leaves_free(
        usable: int, physical: int, load: float, expected: int) -> None:
    assert choose_threads(usable, physical, load) == expected


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_the_default_follows_the_cpus_the_process_may_use() -> None:
    one_cpu = next(iter(os.sched_getaffinity(0)))
    done = subprocess.run(
        [sys.executable, "-c", "from models.threads import default_threads; print(default_threads())"],
        capture_output=True, text=True, timeout=60, check=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {one_cpu}),  # pins the child only
    )
    assert done.stdout.strip() == "1"
    assert 1 <= usable_cpus() <= (os.cpu_count() or 1) and physical_cores() >= 1
