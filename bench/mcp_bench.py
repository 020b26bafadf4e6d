"""MCP bench: the tokens an agent receives to answer lookup questions about the Python standard library
through `tiercode mcp`'s tools, against the baseline an agent uses without them, and the answers checked
against `ast`.

- "Where is NAME defined?": `find_definition(NAME)` against `grep -rn NAME` (Python files, the index's
  vendored folders excluded, run from the library's root) plus reading the whole file that holds the
  definition; also against reading that file alone (a lower bound for the baseline).
- "What is in FILE?": `outline(FILE)` against reading the whole file.

The server is the real one (`tiercode mcp` as a subprocess, the official MCP client over stdio, the ledger in
a temporary folder); tokens are counted with the quick-start model's tokenizer (SmolLM2's BPE) on both sides.

Run: python bench/mcp_bench.py [--questions 200] [--files 50] -> bench/results/mcp.json and a table on stdout.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcp import Client, StdioServerParameters

from assistant.accounting.ledger import Ledger
from assistant.accounting.stats import compute_stats
from indexer.repomap import estimate_tokens
from indexer.scan import VENDORED_DIRS, scan

RESULTS = Path(__file__).parent / "results" / "mcp.json"
SEED = 25
_LOCATION = re.compile(r"^\s+(\S+?):(\d+)\s", re.M)
_OUTLINE_LINE = re.compile(r"^\s+(\d+): ", re.M)
Locations = set[tuple[str, int]]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def token_counter() -> tuple[Callable[[str], int], str]:
    """SmolLM2's tokenizer (vocabulary only) when its GGUF is on this machine, else the 2-bytes estimate."""
    candidates = [os.environ.get("TIERCODE_TEST_GGUF", "")]
    for root in (Path.home() / ".local/share/tiercode/models", Path.home() / ".cache/tiercode-tests/models"):
        candidates += [str(p) for p in sorted(root.glob("smollm2/*.gguf"))]
    found = next(filter(None, candidates), None)
    if found is None:
        return estimate_tokens, "estimate (2 bytes per token)"
    import llama_cpp

    vocab = llama_cpp.Llama(found, vocab_only=True, verbose=False)
    return (lambda text: len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))), \
        f"SmolLM2-135M ({Path(found).name})"


def ast_truth(root: Path, paths: list[str]) -> tuple[dict[str, Locations], dict[str, Locations], dict[str, set[int]]]:
    """Per name: where ast finds a def/class of it, and where it is defined at all (also assigned at module or
    class level); per file: the lines of its defs and classes."""
    defs: dict[str, Locations] = defaultdict(set)
    assigned: dict[str, Locations] = defaultdict(set)
    lines: dict[str, set[int]] = {}
    """Per file: its def and class lines."""
    for path in paths:
        try:
            tree = ast.parse((root / path).read_bytes())
        except (SyntaxError, ValueError):
            continue
        lines[path] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defs[node.name].add((path, node.lineno))
                lines[path].add(node.lineno)
                for child in node.body if isinstance(node, ast.ClassDef) else ():
                    _add_assigned(child, path, assigned)
        for child in tree.body:
            _add_assigned(child, path, assigned)
    for name, found in defs.items():
        assigned[name] |= found
    return defs, assigned, lines


def _add_assigned(node: ast.stmt, path: str, into: dict[str, Locations]) -> None:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    for target in targets:
        if isinstance(target, ast.Name):
            into[target.id].add((path, node.lineno))


def grep_baseline(root: Path, name: str) -> str:
    """What `grep -rn NAME` prints over the library's Python files (the index's vendored folders left out)."""
    excluded = [f"--exclude-dir={d}" for d in sorted(VENDORED_DIRS)]
    done = subprocess.run(["grep", "-rn", "--include=*.py", *excluded, "-e", name, "."], cwd=root,
                          capture_output=True, text=True, errors="replace")
    return done.stdout


async def ask_server(root: Path, env: dict[str, str], calls: list[tuple[str, dict]]) -> tuple[list[str], list[float]]:
    """Each call's result text from `tiercode mcp` over stdio, and its latency in ms."""
    params = StdioServerParameters(command=sys.executable, env=env, args=[
        "-c", "from assistant.cli.main import main; main()", "mcp", "--repo", str(root)])
    texts, latencies = [], []
    async with Client(params, read_timeout_seconds=1800) as client:
        for tool, arguments in calls:
            started = time.perf_counter()
            result = await client.call_tool(tool, arguments)
            latencies.append((time.perf_counter() - started) * 1000)
            texts.append("\n".join(getattr(block, "text", "") for block in result.content))
    return texts, latencies


def summary(values: list[float]) -> dict:
    return {"min": round(min(values), 2), "median": round(statistics.median(values), 2),
            "p95": round(pct(values, 0.95), 2), "mean": round(statistics.fmean(values), 2)}


def score_definitions(names: list[tuple[str, str, int]], texts: list[str], defs: dict[str, Locations],
                      assigned: dict[str, Locations]) -> dict:
    """Whether each answer lists the asked definition, every ast def of the name (as many as it lists), and
    nothing that is not defined there."""
    asked = complete = clean = 0
    for (name, path, line), text in zip(names, texts, strict=True):
        listed = {(p, int(n)) for p, n in _LOCATION.findall(text)}
        truth = defs[name]
        asked += (path, line) in listed
        complete += truth <= listed or (len(listed) >= 50 and listed <= assigned[name])
        clean += listed <= assigned[name]
    n = len(names)
    return {"asked_definition_listed": round(asked / n, 4), "all_ast_definitions_listed": round(complete / n, 4),
            "only_real_definitions_listed": round(clean / n, 4)}


def score_outlines(files: list[str], texts: list[str], lines: dict[str, set[int]], assigned: dict[str, Locations]
                   ) -> dict:
    """Recall of ast's def and class lines among the outlines' lines; precision of those lines against every
    line ast finds a definition on (defs, classes, module- and class-level assignments)."""
    defined: dict[str, set[int]] = defaultdict(set)
    for locations in assigned.values():
        for path, line in locations:
            defined[path].add(line)
    hits = truth = listed = real = 0
    for path, text in zip(files, texts, strict=True):
        got = {int(n) for n in _OUTLINE_LINE.findall(text)}
        hits, truth = hits + len(got & lines[path]), truth + len(lines[path])
        listed, real = listed + len(got), real + len(got & defined[path])
    return {"recall": round(hits / max(truth, 1), 4), "precision": round(real / max(listed, 1), 4)}


def run(questions: int, files: int) -> dict:
    root = Path(sysconfig.get_paths()["stdlib"])
    count, tokenizer = token_counter()
    paths = sorted(c.path for c in scan(root).files if c.path.endswith(".py"))
    defs, assigned, lines = ast_truth(root, paths)
    rng = random.Random(SEED)
    names = sorted(n for n in defs if len(n) >= 4 and not n.startswith("__"))
    sampled = [(name, *sorted(defs[name])[0]) for name in rng.sample(names, questions)]
    outlined = rng.sample(sorted(p for p in lines if lines[p]), files)
    calls = [("find_definition", {"name": n}) for n, _, _ in sampled] + [("outline", {"path": p}) for p in outlined]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        for name in ("DATA", "CACHE", "CONFIG"):
            env[f"XDG_{name}_HOME"] = str(Path(tmp) / name.lower())
        started = time.perf_counter()
        texts, latencies = anyio.run(ask_server, root, env, calls)
        served_s = time.perf_counter() - started
        ledger = Ledger(Path(tmp) / "data" / "tiercode" / "ledger.sqlite")
        stats = compute_stats(ledger)
        ledger.close()
    definition_texts, outline_texts = texts[:questions], texts[questions:]
    file_tokens = {p: count((root / p).read_text(errors="replace")) for p in {*outlined, *(p for _, p, _ in sampled)}}
    grep_tokens = [count(grep_baseline(root, name)) for name, _, _ in sampled]
    mcp_def = [count(t) for t in definition_texts]
    baseline = [g + file_tokens[p] for g, (_, p, _) in zip(grep_tokens, sampled, strict=True)]
    file_only = [file_tokens[p] for _, p, _ in sampled]
    mcp_outline = [count(t) for t in outline_texts]
    return {
        "python": sys.version.split()[0], "corpus": str(root), "indexed_python_files": len(paths),
        "tokenizer": tokenizer, "seed": SEED, "server_seconds_incl_index_build": round(served_s, 1),
        "definitions": {
            "questions": questions, "mcp_tokens": summary(mcp_def), "baseline_tokens": summary(baseline),
            "grep_tokens": summary(grep_tokens), "file_only_tokens": summary(file_only),
            "ratio_baseline_over_mcp": summary([b / m for b, m in zip(baseline, mcp_def, strict=True)]),
            "ratio_file_only_over_mcp": summary([f / m for f, m in zip(file_only, mcp_def, strict=True)]),
            "correct_vs_ast": score_definitions(sampled, definition_texts, defs, assigned),
            "latency_ms": summary(latencies[:questions]),
        },
        "outlines": {
            "files": files, "mcp_tokens": summary(mcp_outline),
            "file_tokens": summary([file_tokens[p] for p in outlined]),
            "ratio_file_over_mcp": summary([file_tokens[p] / m for p, m in zip(outlined, mcp_outline, strict=True)]),
            "correct_vs_ast": score_outlines(outlined, outline_texts, lines, assigned),
            "latency_ms": summary(latencies[questions:]),
        },
        "ledger": {"tool_calls": stats.tool_calls, "returned_tokens_server_count": stats.totals.returned_tokens,
                   "cost_usd": stats.totals.cost_usd},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=200, help="Definition lookups (names sampled from ast).")
    parser.add_argument("--files", type=int, default=50, help="Outline lookups (files sampled).")
    args = parser.parse_args()
    results = run(args.questions, args.files)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    d, o = results["definitions"], results["outlines"]
    print(f"{'question':<24}{'MCP tokens':>12}{'baseline':>12}{'ratio median':>14}{'ratio p95':>11}  correct vs ast")
    print(f"{'where is NAME defined':<24}{d['mcp_tokens']['median']:>12}{d['baseline_tokens']['median']:>12}"
          f"{d['ratio_baseline_over_mcp']['median']:>14}{d['ratio_baseline_over_mcp']['p95']:>11}  "
          f"{d['correct_vs_ast']}")
    print(f"{'  (file alone)':<24}{'':>12}{d['file_only_tokens']['median']:>12}"
          f"{d['ratio_file_only_over_mcp']['median']:>14}{d['ratio_file_only_over_mcp']['p95']:>11}")
    print(f"{'what is in FILE':<24}{o['mcp_tokens']['median']:>12}{o['file_tokens']['median']:>12}"
          f"{o['ratio_file_over_mcp']['median']:>14}{o['ratio_file_over_mcp']['p95']:>11}  {o['correct_vs_ast']}")
    print(f"tokens counted with {results['tokenizer']}; ledger: {results['ledger']}")


if __name__ == "__main__":
    main()
