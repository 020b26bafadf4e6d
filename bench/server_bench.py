"""The local tier in-process (GGUF loaded per `ask`) against the same GGUF behind llama.cpp's server.

1. One-shot `tiercode ask` wall time for a local answer, as real `--offline --no-cache` subprocesses on a
   copy of tests/fixtures/sample_py with their own XDG_DATA_HOME, XDG_CACHE_HOME and XDG_CONFIG_HOME:
   the default (each process loads the model) against `local.server` pointing at `python -m
   llama_cpp.server` (warm, 127.0.0.1, free port), alternating per question; median and p95, the stage
   times of `ask -v`, and the model-load share of the in-process time (`import llama_cpp` plus the
   `LocalModel` load, timed in fresh processes).
2. Decode tokens/s and time to first token of `LocalBackend` against `OpenAICompatTier` on that server,
   same prompts and max tokens, greedy, alternating, medians and the overhead ratios; with token
   log-probabilities (what `ask` asks of both) and without.

Both sides get the same threads (`local.threads` and the server's `--n_threads`) and context size.
Run: python bench/server_bench.py [--questions 20] [--reps 7] -> bench/results/server.json and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.config import LocalSettings
from bench.local_bench import SYSTEM, Run, decode_rate, find_model, machine, question, timed
from bench.route_bench import install_quickstart, percentile
from models.base import Backend, Capabilities, GenerationRequest, Message
from models.catalog import QUICKSTART_MODEL
from models.cloud.openai_compat import OpenAICompatTier
from models.local import LocalBackend, LocalModel, LocalOptions
from models.threads import physical_cores
from tests.models.llama_server import LlamaServer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "server.json"
SAMPLE_REPO = ROOT / "tests" / "fixtures" / "sample_py"
N_CTX = LocalSettings().context_tokens
"""`local.context_tokens`' default: what `ask` loads the GGUF with, and the server's --n_ctx."""
QUESTIONS = [
    "explain how make_report builds its report string",
    "why does Shape.area raise NotImplementedError instead of returning zero?",
    "add a Square shape with a side length and an area method",
    "write a pytest test for total_area with two circles",
    "review Circle.__init__: should it reject a negative radius?",
    "explain the difference between Shape and Circle",
    "add a perimeter method to Circle",
    "how could make_report also print the largest circle?",
    "write a docstring example for make_report",
    "is the f-string in make_report rounding correctly?",
    "add a Rectangle shape with width and height",
    "explain why total_area takes a list of Shape rather than Circle",
    "how would I make Shape an abstract base class with abc?",
    "write a test that Circle(0).area() is zero",
    "suggest a better name for the radii parameter of make_report",
    "add type hints for a shapes module that also has triangles",
    "explain what main prints and why",
    "make total_area accept any iterable of shapes",
    "review the shapes module for style problems",
    "write a function that returns the circle with the largest area",
]
"""About tests/fixtures/sample_py, each routed to the local tier (checked with `ask --dry-run --json`)."""
MODES = ("in_process", "server")


@dataclass(frozen=True)
class Sandbox:
    """A throwaway home for the `ask` subprocesses: data, cache, a config per mode, and the repository."""

    root: Path
    repo: Path

    def env(self, mode: str) -> dict[str, str]:
        """The environment of an `ask` in `mode` (its own XDG_CONFIG_HOME, shared data and cache)."""
        return {**os.environ, "XDG_DATA_HOME": str(self.root / "data"), "XDG_CACHE_HOME": str(self.root / "cache"),
                "XDG_CONFIG_HOME": str(self.root / mode)}

    def configure(self, mode: str, threads: int, server: str | None = None) -> None:
        """Write the user config of `mode`: the threads, and `local.server` when given."""
        lines = ["[local]", f"threads = {threads}", f"context_tokens = {N_CTX}"]
        if server:
            lines.append(f'server = "{server}"')
        path = self.root / mode / "tiercode" / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")


@dataclass(frozen=True)
class Ask:
    """One timed `tiercode ask`."""

    wall_s: float
    tier: str
    output_tokens: int
    stages_ms: dict[str, float]


def tiercode() -> str:
    """The `tiercode` console script of this interpreter's environment."""
    beside = Path(sys.executable).with_name("tiercode")
    return str(beside) if beside.exists() else shutil.which("tiercode") or "tiercode"


def run_ask(box: Sandbox, mode: str, text: str, *flags: str) -> subprocess.CompletedProcess[str]:
    """`tiercode --offline ask` in the sandbox; raises with its stderr when it fails."""
    command = [tiercode(), "--offline", "ask", "--repo", str(box.repo), "-n", "--no-cache", "--json", *flags, text]
    done = subprocess.run(command, env=box.env(mode), capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"tiercode ask failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done


def check_routes(box: Sandbox, questions: list[str]) -> None:
    """Every question starts at the local tier (`--dry-run --json`)."""
    for text in questions:
        plan = json.loads(run_ask(box, "in_process", text, "--dry-run").stdout)
        if plan["start_tier"] != "local":
            raise SystemExit(f"starts at {plan['start_tier']}, not local: {text}")


def stages(stderr: str) -> dict[str, float]:
    """The per-stage milliseconds of `ask -v`'s timing line."""
    line = next((x for x in stderr.splitlines() if x.startswith("tiercode: timing: ")), "")
    parts = (part.rsplit(" ", 2) for part in line.removeprefix("tiercode: timing: ").split(" · ") if part)
    return {name: float(ms) for name, ms, _unit in parts}


def timed_ask(box: Sandbox, mode: str, text: str) -> Ask:
    """Wall time, answering tier, output tokens and stage times of one `ask` in `mode`."""
    started = time.perf_counter()
    done = run_ask(box, mode, text, "-v")
    wall = time.perf_counter() - started
    answer = json.loads(done.stdout)
    return Ask(wall, answer["tier"], answer["usage"]["output_tokens"], stages(done.stderr))


def bench_asks(box: Sandbox, questions: list[str]) -> dict[str, list[Ask]]:
    """Each question in both modes, alternating which goes first, after one uncounted warm-up each."""
    for mode in MODES:
        timed_ask(box, mode, questions[0])
    runs: dict[str, list[Ask]] = {mode: [] for mode in MODES}
    for i, text in enumerate(questions):
        for mode in MODES[::-1] if i % 2 else MODES:
            runs[mode].append(timed_ask(box, mode, text))
    return runs


def summarize_asks(runs: list[Ask]) -> dict:
    """Median and p95 wall time, tokens, answering tiers and median stage times of one mode."""
    walls = [r.wall_s for r in runs]
    names = dict.fromkeys(name for r in runs for name in r.stages_ms)
    return {
        "median_s": round(statistics.median(walls), 3), "p95_s": round(percentile(walls, 95), 3),
        "median_output_tokens": statistics.median(r.output_tokens for r in runs),
        "tiers": {t: sum(r.tier == t for r in runs) for t in {r.tier for r in runs}},
        "median_stage_ms": {n: round(statistics.median(r.stages_ms.get(n, 0.0) for r in runs), 1) for n in names},
        "samples_s": [round(w, 3) for w in walls],
    }


LOAD_TIMER = """
import json, sys, time
from pathlib import Path
from models.local import LocalModel, LocalOptions
started = time.perf_counter()
import llama_cpp
imported = time.perf_counter()
LocalModel(Path(sys.argv[1]), LocalOptions(context_tokens=int(sys.argv[2]), threads=int(sys.argv[3]))).llm
print(json.dumps({"import_s": imported - started, "load_s": time.perf_counter() - imported}))
"""
"""Run in a fresh process: seconds to import llama_cpp, then to load the GGUF as `ask` does."""


def bench_load(path: Path, threads: int, reps: int) -> dict:
    """LOAD_TIMER in `reps` fresh processes; medians."""
    command = [sys.executable, "-c", LOAD_TIMER, str(path), str(N_CTX), str(threads)]
    rows = [json.loads(subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout)
            for _ in range(reps)]
    med = {k: round(statistics.median(r[k] for r in rows), 3) for k in ("import_s", "load_s")}
    return {**med, "total_s": round(med["import_s"] + med["load_s"], 3), "reps": reps}


def stream(backend: Backend, rep: int, max_tokens: int, logprobs: bool) -> Callable[[Callable[[str], None]], str]:
    """One greedy generation of round `rep`'s prompt streaming to a callback (the system message is the
    stable prefix; `ask` asks both sides for log-probabilities)."""
    request = GenerationRequest((Message("system", SYSTEM), Message("user", question(rep))), max_tokens=max_tokens,
                                temperature=0.0, logprobs=logprobs)
    return lambda on_text: backend.generate(request, on_text=on_text).text


def backends(path: Path, server: LlamaServer, threads: int) -> tuple[LocalModel, dict[str, Backend]]:
    """The local tier's two forms: a GGUF in this process, and the server as `local.server` builds it."""
    model = LocalModel(path, LocalOptions(context_tokens=N_CTX, threads=threads))
    served = OpenAICompatTier(server.model_id, server.base_url, name="local", capabilities=Capabilities(
        free=True, logprobs=True, retries=False, prompt_caching=False, context_window=N_CTX))
    return model, {"in_process": LocalBackend(model, QUICKSTART_MODEL), "server": served}


def bench_stream(model: LocalModel, sides: dict[str, Backend], reps: int, max_tokens: int, logprobs: bool) -> dict:
    """Decode tokens/s, TTFT and total time, in-process against the server; medians and ratios."""
    rows: dict[str, list[float]] = {f"{m}_{k}": [] for m in MODES for k in ("ttft_ms", "tps", "total_ms", "tokens")}
    same = 0
    for rep in range(reps + 1):  # round 0 warms both up and is not counted
        runs: dict[str, Run] = {m: timed(stream(sides[m], rep, max_tokens, logprobs))
                                for m in (MODES[::-1] if rep % 2 else MODES)}
        if rep == 0:
            continue
        same += runs["in_process"].text == runs["server"].text
        for mode, r in runs.items():
            tokens = len(model.tokenize(r.text))
            rows[f"{mode}_tokens"].append(tokens)
            rows[f"{mode}_ttft_ms"].append(r.ttft_s * 1000)
            rows[f"{mode}_total_ms"].append(r.total_s * 1000)
            rows[f"{mode}_tps"].append(decode_rate(r, tokens))
    med = {k: round(statistics.median(v), 2) for k, v in rows.items()}
    return {"reps": reps, "max_tokens": max_tokens, "logprobs": logprobs, "same_text_reps": same, "median": med,
            "decode_overhead_ratio": round(med["in_process_tps"] / med["server_tps"], 3),
            "ttft_ratio": round(med["server_ttft_ms"] / med["in_process_ttft_ms"], 3),
            "total_time_ratio": round(med["server_total_ms"] / med["in_process_total_ms"], 3),
            "samples": {k: [round(x, 2) for x in v] for k, v in rows.items()}}


def make_sandbox(root: Path, threads: int) -> Sandbox:
    """A copy of the sample repository, the quick-start GGUF linked in, the in-process config written."""
    repo = root / "sample_py"
    shutil.copytree(SAMPLE_REPO, repo)
    install_quickstart(root / "data")
    box = Sandbox(root, repo)
    box.configure("in_process", threads)
    return box


def run_all(args: argparse.Namespace, path: Path, threads: int) -> dict:
    """Both parts, with the server up for the whole run."""
    questions = QUESTIONS[: args.questions]
    with tempfile.TemporaryDirectory(prefix="tiercode-server-bench-") as tmp, \
            LlamaServer(path, context_tokens=N_CTX, threads=threads) as server:
        box = make_sandbox(Path(tmp), threads)
        box.configure("server", threads, server.base_url)
        check_routes(box, questions)
        asks = {mode: summarize_asks(runs) for mode, runs in bench_asks(box, questions).items()}
        load = bench_load(path, threads, args.load_reps)
        model, sides = backends(path, server, threads)
        streamed = {f"{'with' if lp else 'without'}_logprobs":
                    bench_stream(model, sides, args.reps, args.max_tokens, lp) for lp in (True, False)}
    inside = asks["in_process"]["median_s"]
    return {"questions": len(questions), "ask": asks, "model_load": {**load, "share_of_in_process_median": round(
                load["total_s"] / inside, 3)},
            "ask_median_ratio": round(asks["server"]["median_s"] / inside, 3),
            "ask_p95_ratio": round(asks["server"]["p95_s"] / asks["in_process"]["p95_s"], 3), "stream": streamed}


def table_rows(report: dict) -> list[tuple[str, float, float]]:
    """(metric, in-process, server) for each line of the table."""
    ask = report["ask"]
    rows = [(f"ask wall, median of {report['questions']} (s)", ask["in_process"]["median_s"],
             ask["server"]["median_s"]),
            ("ask wall, p95 (s)", ask["in_process"]["p95_s"], ask["server"]["p95_s"]),
            ("ask output tokens, median", ask["in_process"]["median_output_tokens"],
             ask["server"]["median_output_tokens"])]
    for variant, st in report["stream"].items():
        med, tag = st["median"], variant.replace("_", " ")
        rows += [(f"decode tokens/s, {tag}", med["in_process_tps"], med["server_tps"]),
                 (f"time to first token (ms), {tag}", med["in_process_ttft_ms"], med["server_ttft_ms"]),
                 (f"total time (ms), {tag}", med["in_process_total_ms"], med["server_total_ms"])]
    return rows


def print_table(report: dict) -> None:
    """The results as a table: in-process, server, server / in-process."""
    m, ask, load, st = report["machine"], report["ask"], report["model_load"], report["stream"]["with_logprobs"]
    print(f"{m['cpu']} · threads {m['threads']} (local.threads = server --n_threads) · n_ctx {m['n_ctx']} · "
          f"llama-cpp-python {m['llama_cpp_python']} · {m['model']}")
    print(f"{'metric (streams: median of ' + str(st['reps']) + ', ' + str(st['max_tokens']) + ' max tokens)':<46}"
          f"{'in-process':>11}{'server':>11}{'server/in':>10}")
    for name, inside, served in table_rows(report):
        print(f"{name:<46}{inside:>11.2f}{served:>11.2f}{served / inside:>10.3f}")
    print(f"model load in a fresh process: import {load['import_s']:.3f} s + load {load['load_s']:.3f} s = "
          f"{load['share_of_in_process_median']:.1%} of the in-process median ask")
    print(f"decode overhead (in-process tokens/s / server's): {st['decode_overhead_ratio']:.3f} with logprobs, "
          f"{report['stream']['without_logprobs']['decode_overhead_ratio']:.3f} without; same text in "
          f"{st['same_text_reps']}/{st['reps']} reps; answering tiers {ask['in_process']['tiers']} / "
          f"{ask['server']['tiers']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=len(QUESTIONS), help="how many of the 20 questions")
    parser.add_argument("--reps", type=int, default=7, help="streamed generations per side")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--load-reps", type=int, default=5, help="fresh processes timing the model load")
    parser.add_argument("--threads", type=int, default=physical_cores())
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    path = find_model()
    load_before = [round(x, 2) for x in os.getloadavg()]
    report = {"machine": machine(path, args.threads) | {"n_ctx": N_CTX}, **run_all(args, path, args.threads),
              "load_average_before": load_before,
              "note": "ask runs alternate between the modes per question; the server stays up (warm) throughout",
              "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
