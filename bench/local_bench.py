"""Local-tier benchmark on the quickstart GGUF: overhead against raw llama-cpp-python, and prefix reuse.

1. Decode tokens/s and time to first token (TTFT) of `LocalBackend.generate` against raw
   `Llama.create_chat_completion(stream=True)` with the same model file, n_ctx, threads, prompt and
   sampling, in the same process, alternating which goes first, several repetitions; medians and ratios
   (target: overhead <= 1.05). Greedy decoding (temperature 0) so both produce the same tokens.
2. Classifier latency (a JSON-schema-constrained, logprob-scored label, as `classify_with_model` asks) on
   a ~500-token system prompt with prefix reuse on and off (target: >= 3x faster with reuse).

3. With `--busy`: the local tier's answer with zero, one and two cores kept busy (`yes > /dev/null`
   processes the bench starts and kills), at each thread count one could choose, beside the count
   `models.threads.choose_threads` picks at that load: whether a busy machine degrades gracefully.

Run: python bench/local_bench.py [--reps 7] [--max-tokens 128] -> bench/results/local.json and a table;
     python bench/local_bench.py --busy [--reps 3] [--max-tokens 128] -> bench/results/local_busy.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import llama_cpp

from assistant import paths
from assistant.cli.doctor_cmd import llama_backend
from assistant.route.router import _CLASSIFIER_PROMPT, _CLASSIFIER_SCHEMA, KINDS, label_probability
from models.base import GenerationRequest, Message
from models.catalog import QUICKSTART_MODEL
from models.local import LocalBackend, LocalModel, LocalOptions, gpu_offload_available
from models.manager import ModelManager
from models.threads import choose_threads, physical_cores, usable_cpus

RESULTS = Path(__file__).parent / "results" / "local.json"
BUSY_RESULTS = Path(__file__).parent / "results" / "local_busy.json"
N_CTX = 2048
TOP_K, TOP_P, MIN_P, REPEAT_PENALTY = 40, 0.95, 0.05, 1.1
"""The sampling LocalBackend uses (models/local.py); the raw side is given the same."""
SYSTEM = "You are a patient Python teacher. Answer with long, detailed explanations and code examples."
TOPICS = ["list comprehensions", "generators", "decorators", "context managers", "dataclasses", "asyncio",
          "the GIL", "descriptors", "metaclasses", "type hints", "exceptions", "closures", "iterators"]
QUESTIONS = ["where is the config file parsed?", "why does the ledger double count cache tokens?",
             "add a --verbose flag to the index command", "rename Pipeline.ask to Pipeline.answer everywhere",
             "TypeError: 'NoneType' object is not subscriptable in router.py line 40",
             "is this retry loop correct?", "how should the cache and the ledger be split into modules?",
             "what calls build_index?", "write a test for the budget module", "explain the repo map ranking",
             "fix the flaky watcher test", "review the new embedder protocol", "plan a plugin system"]


def find_model() -> Path:
    """The quickstart GGUF: installed, in the test cache, or pulled into the test cache."""
    for root in (paths.models_dir(), Path.home() / ".cache" / "tiercode-tests" / "models"):
        found = ModelManager(root).path(QUICKSTART_MODEL)
        if found:
            return found
    return ModelManager(Path.home() / ".cache" / "tiercode-tests" / "models").pull(QUICKSTART_MODEL)


@dataclass(frozen=True)
class Run:
    """One timed generation."""

    ttft_s: float
    total_s: float
    text: str


def timed(stream: Callable[[Callable[[str], None]], str]) -> Run:
    """Time a generation that reports text deltas through a callback and returns the whole text."""
    first: list[float] = []
    started = time.perf_counter()
    text = stream(lambda delta: first.append(time.perf_counter()) if delta and not first else None)
    total = time.perf_counter() - started
    return Run((first[0] - started) if first else total, total, text)


def raw_stream(llm: llama_cpp.Llama, messages: list[dict[str, str]], max_tokens: int) -> Callable[..., str]:
    """Raw llama-cpp-python: create_chat_completion(stream=True) with the local tier's sampling."""
    def run(on_text: Callable[[str], None]) -> str:
        parts = []
        for chunk in llm.create_chat_completion(  # type: ignore[union-attr]
            messages=messages, stream=True, temperature=0.0, top_k=TOP_K, top_p=TOP_P, min_p=MIN_P,
            repeat_penalty=REPEAT_PENALTY, max_tokens=max_tokens,
        ):
            delta = chunk["choices"][0]["delta"].get("content") or ""  # type: ignore[index,union-attr]
            if delta:
                on_text(delta)
                parts.append(delta)
        return "".join(parts)
    return run


def tier_stream(backend: LocalBackend, messages: list[dict[str, str]], max_tokens: int) -> Callable[..., str]:
    """The local tier: LocalBackend.generate streaming to a callback."""
    request = GenerationRequest(tuple(Message(m["role"], m["content"]) for m in messages),  # type: ignore[arg-type]
                                max_tokens=max_tokens, temperature=0.0)

    def run(on_text: Callable[[str], None]) -> str:
        return backend.generate(request, on_text=on_text).text
    return run


def question(rep: int) -> str:
    """A question per round that shares no leading words with the others, so that raw llama-cpp-python's
    longest-prefix KV match reuses the same span as the local tier's prefix (the system message)."""
    topic = TOPICS[rep % len(TOPICS)]
    return f"{topic[0].upper()}{topic[1:]}: explain this topic in depth, with Python examples."


def decode_rate(run: Run, tokens: int) -> float:
    """Tokens per second after the first one."""
    return (tokens - 1) / max(run.total_s - run.ttft_s, 1e-9)


def bench_overhead(path: Path, reps: int, max_tokens: int, threads: int, gpu_layers: int) -> dict:
    raw = llama_cpp.Llama(model_path=str(path), n_ctx=N_CTX, n_threads=threads, n_gpu_layers=gpu_layers,
                          verbose=False)
    model = LocalModel(path, LocalOptions(context_tokens=N_CTX, threads=threads, gpu_layers=-1))
    backend = LocalBackend(model, QUICKSTART_MODEL)
    rows: dict[str, list[float]] = {k: [] for k in ("raw_ttft", "tier_ttft", "raw_tps", "tier_tps", "raw_total",
                                                      "tier_total", "tokens")}
    same = 0
    for rep in range(reps + 1):  # the first round warms both up and is not counted
        messages = [{"role": "system", "content": SYSTEM},
                    {"role": "user", "content": question(rep)}]
        order = [("raw", raw_stream(raw, messages, max_tokens)), ("tier", tier_stream(backend, messages, max_tokens))]
        if rep % 2:
            order.reverse()
        runs = {name: timed(stream) for name, stream in order}
        if rep == 0:
            continue
        tokens = {name: len(raw.tokenize(r.text.encode(), add_bos=False, special=True)) for name, r in runs.items()}
        same += runs["raw"].text == runs["tier"].text
        rows["tokens"].append(tokens["tier"])
        for name, r in runs.items():
            rows[f"{name}_ttft"].append(r.ttft_s * 1000)
            rows[f"{name}_total"].append(r.total_s * 1000)
            rows[f"{name}_tps"].append(decode_rate(r, tokens[name]))
    med = {k: round(statistics.median(v), 2) for k, v in rows.items()}
    return {
        "reps": reps, "max_tokens": max_tokens, "same_text_reps": same, "median": med,
        "decode_overhead_ratio": round(med["raw_tps"] / med["tier_tps"], 3),
        "ttft_ratio": round(med["tier_ttft"] / med["raw_ttft"], 3),
        "total_time_ratio": round(med["tier_total"] / med["raw_total"], 3),
        "samples": {k: [round(x, 2) for x in v] for k, v in rows.items()},
    }


def classifier_system_prompt(model: LocalModel, target_tokens: int = 500) -> str:
    """The classifier's own instructions followed by worked examples, padded to about `target_tokens`."""
    examples = [f"Request: {q}\nAnswer: {{\"kind\": \"{KINDS[i % len(KINDS)]}\"}}" for i, q in enumerate(QUESTIONS)]
    text, i = _CLASSIFIER_PROMPT + "\nExamples:", 0
    while len(model.tokenize(text)) < target_tokens:
        text += "\n" + examples[i % len(examples)]
        i += 1
    return text


def bench_classifier(path: Path, reps: int, threads: int) -> dict:
    models = {reuse: LocalModel(path, LocalOptions(context_tokens=N_CTX, threads=threads)) for reuse in (True, False)}
    system = classifier_system_prompt(models[True])
    backends = {reuse: LocalBackend(m, QUICKSTART_MODEL, reuse_prefix=reuse) for reuse, m in models.items()}
    times: dict[bool, list[float]] = {True: [], False: []}
    labels: dict[bool, list[str]] = {True: [], False: []}
    for rep in range(reps * 2 + 1):
        question = QUESTIONS[rep % len(QUESTIONS)] + f" (#{rep})"
        request = GenerationRequest((Message("system", system), Message("user", question)), max_tokens=16,
                                    temperature=0.0, logprobs=True, json_schema=_CLASSIFIER_SCHEMA)
        for reuse in ((True, False) if rep % 2 else (False, True)):
            started = time.perf_counter()
            result = backends[reuse].generate(request)
            label_probability(result, "explain", KINDS)
            elapsed = (time.perf_counter() - started) * 1000
            if rep:
                times[reuse].append(elapsed)
                labels[reuse].append(result.text)
    with_reuse, without = statistics.median(times[True]), statistics.median(times[False])
    return {
        "system_prompt_tokens": len(models[True].tokenize(system)), "reps": len(times[True]),
        "median_ms_with_reuse": round(with_reuse, 2), "median_ms_without_reuse": round(without, 2),
        "speedup": round(without / with_reuse, 2), "same_labels": labels[True] == labels[False],
        "samples_ms": {"with_reuse": [round(x, 1) for x in times[True]],
                       "without_reuse": [round(x, 1) for x in times[False]]},
    }


def thread_choices() -> list[int]:
    """The thread counts one could choose here: one, the physical cores less one, the physical cores and
    every logical CPU this process may use."""
    cores, usable = physical_cores(), usable_cpus()
    return sorted({n for n in (1, cores - 1, cores, usable) if n >= 1})


def busy_cores(count: int) -> list[subprocess.Popen[bytes]]:
    """`count` processes that keep one core each busy (`yes > /dev/null`); the caller stops them."""
    return [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(count)]


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Kill the busy processes this bench started and reap them."""
    for process in processes:
        process.kill()
    for process in processes:
        process.wait()


def bench_busy(path: Path, reps: int, max_tokens: int, busy_levels: tuple[int, ...] = (0, 1, 2)) -> dict:
    """Median decode tokens/s and total time of the local tier's answer per (busy cores, threads)."""
    threads = thread_choices()
    models = {n: LocalModel(path, LocalOptions(context_tokens=N_CTX, threads=n, gpu_layers=0)) for n in threads}
    rows = []
    for busy in busy_levels:
        processes = busy_cores(busy)
        try:
            for n in threads:
                rows.append(_busy_row(models[n], busy, n, reps, max_tokens))
                print(f"busy {busy}, threads {n}: {rows[-1]['median_tps']:.1f} tokens/s, "
                      f"{rows[-1]['median_total_s']:.2f} s", file=sys.stderr)
        finally:
            stop(processes)
    picked = {busy: choose_threads(usable_cpus(), physical_cores(), float(busy)) for busy in busy_levels}
    return {"reps": reps, "max_tokens": max_tokens, "threads": threads, "rows": rows,
            "picked_threads_by_busy_cores": picked}


def _busy_row(model: LocalModel, busy: int, threads: int, reps: int, max_tokens: int) -> dict:
    backend = LocalBackend(model, QUICKSTART_MODEL)
    tps, totals, tokens = [], [], []
    for rep in range(reps + 1):  # the first round loads the model and warms it up
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question(rep)}]
        run = timed(tier_stream(backend, messages, max_tokens))
        if rep == 0:
            continue
        count = len(model.tokenize(run.text, special=False))
        tokens.append(count)
        tps.append(decode_rate(run, count))
        totals.append(run.total_s)
    return {"busy_cores": busy, "threads": threads, "median_tps": round(statistics.median(tps), 2),
            "median_total_s": round(statistics.median(totals), 3), "median_tokens": statistics.median(tokens),
            "samples_tps": [round(x, 2) for x in tps]}


def print_busy(report: dict) -> None:
    """The busy-machine table: one row per busy level, one column per thread count, the pick starred."""
    threads, picked = report["threads"], report["picked_threads_by_busy_cores"]
    print(f"decode tokens/s (median of {report['reps']}; total s) · * = the default's pick at that load")
    print(f"{'busy cores':<12}" + "".join(f"{str(n) + ' thread(s)':>22}" for n in threads))
    for busy in sorted({r["busy_cores"] for r in report["rows"]}):
        cells = []
        for n in threads:
            row = next(r for r in report["rows"] if r["busy_cores"] == busy and r["threads"] == n)
            star = "*" if picked[busy] == n else " "
            cells.append(f"{row['median_tps']:>10.1f} ({row['median_total_s']:>6.2f} s){star}")
        print(f"{busy:<12}" + "".join(f"{cell:>22}" for cell in cells))


def machine(path: Path, threads: int) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    backend = llama_backend()
    return {"cpu": cpu, "physical_cores": physical_cores(), "logical_cpus": os.cpu_count(), "threads": threads,
            "llama_cpp_python": llama_cpp.__version__, "backend": backend["backend"],
            "gpu_offload": backend["gpu_offload"], "python": platform.python_version(), "os": platform.platform(),
            "model": path.name, "model_bytes": path.stat().st_size, "n_ctx": N_CTX,
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--busy", action="store_true", help="measure threads with 0, 1 and 2 cores kept busy")
    args = parser.parse_args()
    path = find_model()
    if args.busy:
        main_busy(path, args.reps, args.max_tokens, args.out or BUSY_RESULTS)
        return
    args.out = args.out or RESULTS
    threads = physical_cores()
    load_before = [round(x, 2) for x in os.getloadavg()]
    gpu_layers = -1 if gpu_offload_available() else 0
    overhead = bench_overhead(path, args.reps, args.max_tokens, threads, gpu_layers)
    classifier = bench_classifier(path, args.reps, threads)
    report = {"machine": machine(path, threads), "overhead": overhead, "classifier": classifier,
              "load_average_before": load_before,
              "note": "load_average_* is the machine's (shared) load; other work running at the same time"
                      " slows both sides alike, as they alternate, but widens the spread",
              "targets": {"decode_overhead_ratio": "<= 1.05", "classifier_speedup": ">= 3"},
              "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    med = overhead["median"]
    print(f"{report['machine']['cpu']} · {threads} threads · llama-cpp-python {llama_cpp.__version__} · "
          f"{report['machine']['backend']} · {path.name}")
    print(f"{'metric (median)':<34}{'raw llama-cpp':>14}{'local tier':>14}{'ratio':>9}")
    print(f"{'decode tokens/s':<34}{med['raw_tps']:>14.1f}{med['tier_tps']:>14.1f}"
          f"{overhead['decode_overhead_ratio']:>9.3f}")
    print(f"{'time to first token (ms)':<34}{med['raw_ttft']:>14.1f}{med['tier_ttft']:>14.1f}"
          f"{overhead['ttft_ratio']:>9.3f}")
    print(f"{'total time (ms)':<34}{med['raw_total']:>14.1f}{med['tier_total']:>14.1f}"
          f"{overhead['total_time_ratio']:>9.3f}")
    print(f"same text in {overhead['same_text_reps']}/{overhead['reps']} reps; {med['tokens']:.0f} tokens (median)")
    print(f"{'classifier, ' + str(classifier['system_prompt_tokens']) + '-token system (ms)':<34}"
          f"{'no reuse':>14}{'reuse':>14}{'speedup':>9}")
    print(f"{'':<34}{classifier['median_ms_without_reuse']:>14.1f}{classifier['median_ms_with_reuse']:>14.1f}"
          f"{classifier['speedup']:>9.2f}")
    print(f"wrote {args.out}")


def main_busy(path: Path, reps: int, max_tokens: int, out: Path) -> None:
    """The busy-machine study: results to `out` and a table on stdout."""
    load_before = [round(x, 2) for x in os.getloadavg()]
    busy = bench_busy(path, reps, max_tokens)
    report = {"machine": machine(path, physical_cores()), "busy": busy, "load_average_before": load_before,
              "note": "run on an otherwise quiet machine: the busy cores are the bench's own `yes` processes",
              "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['machine']['cpu']} · {physical_cores()} physical cores, {usable_cpus()} usable CPUs · "
          f"llama-cpp-python {llama_cpp.__version__} · {path.name} · load before {load_before}")
    print_busy(busy)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
