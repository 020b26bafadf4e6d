"""Lookup bench: the wall time of a lookup answered by the index, from the shell, against ripgrep and grep run
on the same names in the same run.

For each repository (this repository's own tracked files, and the Python standard library) the index is built
once (warm: the question finds it up to date), then for NAMES definitions sampled from the index:

- `tiercode ask --offline "where is NAME defined?"` (pre-flight: the index answers, no model);
- `tiercode find NAME`;
- `rg -n -w "(class|def) NAME"` and `grep -rnwE "(class|def) NAME" --include=*.py .` (the peers: they find
  the text, not the definition, and print every match).

Every command is a fresh process (what a user or a script pays), timed from spawn to exit; the table gives the
median and the 90th percentile, and each Tiercode command's median as a multiple of ripgrep's. The ledger,
caches and index live in a temporary folder. Run alone: other CPU work on the machine inflates every figure.

Run: python bench/lookup_bench.py [--names 25] -> bench/results/lookup.json and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "lookup.json"
SEED = 22
TIERCODE = [str(Path(sys.executable).with_name("tiercode"))]
"""The console script users run (not `python -c`, whose sys.path would import the copy under test)."""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """Seconds from spawn to exit, and stderr; a failed command stops the bench."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):  # grep and rg exit 1 on no match
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[:300]}")
    return elapsed, done.stderr


def this_repository(into: Path) -> Path:
    """A copy of this repository's tracked files (the index of a checkout with venvs would measure the venv)."""
    target = into / "tiercode-src"
    target.mkdir()
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)
    return target


def stdlib_copy(into: Path) -> Path:
    """A copy of the standard library's Python files (a large real code base, the same on every machine)."""
    source = Path(sysconfig.get_paths()["stdlib"])
    target = into / "stdlib"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("site-packages", "__pycache__", "test", "tests",
                                                                   "idlelib", "*.so", "*.a", "config-*"))
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)
    return target


def sample_names(index_root: Path, count: int) -> list[str]:
    """Class and function names defined once in the index (an unambiguous lookup), seeded."""
    database = next(index_root.rglob("index.sqlite"))
    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            "SELECT name FROM symbols WHERE kind IN ('class', 'function') AND length(name) > 5 "
            "GROUP BY name HAVING count(*) = 1 ORDER BY name").fetchall()
    names = [name for (name,) in rows if name.isidentifier() and not name.startswith("_")]
    return random.Random(SEED).sample(names, min(count, len(names)))


def measure(repo: Path, names: list[str], env: dict[str, str]) -> dict[str, dict[str, float]]:
    """Each command's wall times over the names, interleaved so drift hits every command alike."""
    commands = {
        "tiercode ask (index answers)": lambda n: [*TIERCODE, "ask", "--offline", f"where is {n} defined?"],
        "tiercode find": lambda n: [*TIERCODE, "find", n],
        "rg": lambda n: ["rg", "-n", "-w", f"(class|def) {n}"],
        "grep -r": lambda n: ["grep", "-rnwE", f"(class|def) {n}", "--include=*.py", "."],
    }
    times: dict[str, list[float]] = {label: [] for label in commands}
    answered = 0
    for name in names:
        for label, make in commands.items():
            elapsed, err = timed(make(name), repo, env)
            times[label].append(elapsed)
            answered += label.startswith("tiercode ask") and "tier index" in err  # the metadata line
    rows = {label: {"median_s": statistics.median(v), "p90_s": pct(v, 0.9)} for label, v in times.items()}
    rows["tiercode ask (index answers)"]["answered_by_index"] = answered
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=25)
    args = parser.parse_args()
    if shutil.which("rg") is None:
        raise SystemExit("ripgrep (rg) is the peer: install it first (apt install ripgrep)")
    results: dict[str, object] = {"machine": f"{platform.processor() or platform.machine()}, "
                                             f"{os.cpu_count()} cores, Python {platform.python_version()}",
                                  "names": args.names, "repositories": {}}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = {**os.environ, "XDG_DATA_HOME": str(home / "data"), "XDG_CACHE_HOME": str(home / "cache"),
               "XDG_CONFIG_HOME": str(home / "config"), "PYTHONPATH": str(ROOT)}
        for make in (this_repository, stdlib_copy):
            repo = make(home)
            started = time.perf_counter()
            subprocess.run([*TIERCODE, "index"], cwd=repo, env=env, capture_output=True, check=True)
            files = sum(1 for _ in repo.rglob("*.py"))
            names = sample_names(home / "cache", args.names)  # the only index there: each is removed after
            rows = measure(repo, names, env)
            results["repositories"][repo.name] = {  # type: ignore[index]
                "python_files": files, "index_s": time.perf_counter() - started, "commands": rows}
            shutil.rmtree(home / "cache" / "tiercode")
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'repository':<14} {'command':<30} {'median':>8} {'p90':>8} {'× rg':>6}")
    for repo_name, data in results["repositories"].items():  # type: ignore[union-attr]
        rg = data["commands"]["rg"]["median_s"]
        for label, row in data["commands"].items():
            print(f"{repo_name:<14} {label:<30} {row['median_s']:>7.3f}s {row['p90_s']:>7.3f}s "
                  f"{row['median_s'] / rg:>6.1f}")


if __name__ == "__main__":
    main()
