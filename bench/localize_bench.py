"""Localization benchmark: SWE-bench Lite bug reports against the repositories they were filed on.

For each instance the issue text is the question and the repository is the PyPI sdist closest to its base
commit (../shared/bench-data/swebench-lite). Reports file-level Acc@1/3/5 and function-level Acc@1/5/10 for
Tiercode's ranking (`tiercode search`) and for plain BM25 over whole .py files (rank_bm25, measured in the
same run; "tiercode" is the file ranking, "search" the files of `tiercode search`'s definitions in
order), the context recall of the local (1,500 tokens) and Sonnet (12,000 tokens) budgets on two paths
(the issue text typed as the question, and the path users take: the issue piped into `ask` with a short
typed question, `build_context(ASK_QUESTION, ..., extra=issue)`), search latency, and an ablation of each
ranking stage. Context recall is counted three ways: the gold files among the context's sources, the gold
functions among them (a signature counts), and "lines": whether the context shows the code the gold patch
changes (`lines_to_change`; of the instances whose indexed version still has those lines, `lines_told`).
Django is reported apart (its sdist versions are estimates).

The instances are split into a dev half and a held-out half by a fixed rule (`split_of`: the parity of
the first byte of the SHA-256 of the instance id). The ranking is developed on `--split dev` only; the
held-out half is measured before a change and once after it, never tuned on.

Run: pip install -e '.[bench]' && python bench/localize_bench.py [--split dev] [--repos sympy,flask] [--no-django]
The sdists are downloaded once with pip into $TIERCODE_BENCH_CACHE (default ~/.cache/tiercode-bench),
unpacked and indexed there; results go to bench/results/localize.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import assistant.context.builder
from assistant.context.builder import build_context
from indexer.build import build_index
from indexer.localize import DEFAULT_WEIGHTS, Weights, localize
from indexer.source import read_lines
from indexer.store import IndexStore

RESULTS = Path(__file__).parent / "results" / "localize.json"
DATA = Path(__file__).resolve().parents[2] / "shared" / "bench-data" / "swebench-lite"
if not DATA.exists():
    DATA = Path("/work/shared/bench-data/swebench-lite")
CACHE = Path(os.environ.get("TIERCODE_BENCH_CACHE", Path.home() / ".cache" / "tiercode-bench"))
BUDGETS = {"local": 1500, "sonnet": 12000}
"""Context budgets in tokens: the local tier's and Sonnet's defaults."""
ASK_QUESTION = "why does this fail, and how do I fix it?"
"""The short question typed on the path users take, with the issue text piped in as the attached text."""
SPLITS = ("dev", "held-out")
CONSTRAINTS = "setuptools<69\ncython<3\n"
"""Build pins old sdists need to prepare their metadata on Python 3.11 (astropy 5.x, scikit-learn 1.2.0)."""


@dataclasses.dataclass
class Instance:
    instance_id: str
    repo: str
    sdist: str
    strip_prefix: str
    question: str
    gold_files: list[str]
    gold_spans: dict[str, list[str]]
    patch: str = ""
    """The gold patch (its lines to change are looked for in the context)."""


def split_of(instance_id: str) -> str:
    """The half an instance belongs to, fixed by its id: "dev" (developed on) or "held-out" (never tuned on)."""
    return SPLITS[hashlib.sha256(instance_id.encode()).digest()[0] % 2]


def load_instances() -> list[Instance]:
    corpora = {row["instance_id"]: row for row in map(json.loads, (DATA / "corpora.jsonl").open())}
    found = []
    for row in map(json.loads, (DATA / "instances.jsonl").open()):
        corpus = corpora[row["instance_id"]]
        if corpus["gold_present"]:
            found.append(Instance(row["instance_id"], row["repo"].split("/")[1], corpus["pypi"],
                                  corpus["strip_prefix"], row["problem_statement"], row["gold_files"],
                                  row["gold_spans"], row.get("golden_patch", "")))
    return found


def fetch(spec: str) -> Path | None:
    """The sdist archive for NAME==VERSION, downloaded once with pip; None when pip cannot get it."""
    folder = CACHE / "sdists"
    folder.mkdir(parents=True, exist_ok=True)
    name, version = spec.split("==")
    if archive := _archive(folder, name, version):
        return archive
    failed = folder / f"{spec}.failed"
    if failed.exists():
        return None  # pip could not prepare it before (delete the marker to try again)
    constraints = CACHE / "constraints.txt"
    constraints.write_text(CONSTRAINTS)
    for extra_env in ({}, {"PIP_CONSTRAINT": str(constraints)}):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", name, spec,
                        "-d", str(folder)], env={**os.environ, **extra_env}, capture_output=True, timeout=900)
        if archive := _archive(folder, name, version):
            return archive
    failed.write_text("pip download failed on this Python\n")
    return None


def _archive(folder: Path, name: str, version: str) -> Path | None:
    spelled = "[-_.]".join(map(re.escape, re.split(r"[-_.]", name)))
    pattern = re.compile(rf"{spelled}-{re.escape(version)}\.(tar\.gz|zip)$", re.I)
    return next((p for p in folder.iterdir() if pattern.match(p.name)), None)


def unpack(archive: Path, strip_prefix: str, spec: str) -> Path:
    """The sdist's tree with its top folder stripped, unpacked once."""
    tree = CACHE / "trees" / spec.replace("==", "-")
    if (tree / ".unpacked").exists():
        return tree
    tree.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                _write_member(tree, info.filename, strip_prefix, lambda i=info: zipped.read(i), info.is_dir())
    else:
        with tarfile.open(archive) as tarred:
            for member in tarred.getmembers():
                if member.isfile():
                    _write_member(tree, member.name, strip_prefix, lambda m=member: tarred.extractfile(m).read(), False)
    (tree / ".unpacked").write_text("")
    return tree


def _write_member(tree: Path, name: str, strip_prefix: str, read, is_dir: bool) -> None:
    if is_dir or not name.startswith(strip_prefix) or ".." in name.split("/"):
        return
    target = tree / name[len(strip_prefix):]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(read())


def index(tree: Path, spec: str) -> IndexStore:
    """The Tiercode index of one tree, brought up to date (a no-op when nothing changed)."""
    store = IndexStore(CACHE / "indexes" / f"{spec.replace('==', '-')}.sqlite")
    build_index(store, tree)
    return store


class Bm25Peer:
    """Okapi BM25 (rank_bm25) over whole .py files, identifiers split on case and underscores."""

    def __init__(self, store: IndexStore, tree: Path) -> None:
        from rank_bm25 import BM25Okapi

        self.paths = [p for p in store.paths() if p.endswith(".py")]
        self.bm25 = BM25Okapi([_tokens((tree / p).read_text(errors="replace")) for p in self.paths])

    def rank(self, question: str, k: int = 50) -> list[str]:
        scores = self.bm25.get_scores(_tokens(question))
        return [self.paths[i] for i in sorted(range(len(scores)), key=lambda i: -scores[i])[:k]]


def _tokens(text: str) -> list[str]:
    words = re.findall(r"[A-Za-z0-9_]+", text)
    split = [w.lower() for word in words for w in re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", word)]
    return split + [w.lower() for w in words if "_" in w or not w.islower()]


def file_hit(ranked: list[str], gold: list[str], k: int) -> bool:
    return set(gold) <= set(ranked[:k])


def function_hit(ranked: list[tuple[str, str]], spans: dict[str, list[str]], k: int) -> bool:
    wanted = {(path, name) for path, names in spans.items() for name in names}
    return wanted <= set(ranked[:k])


def spans_indexed(store: IndexStore, spans: dict[str, list[str]]) -> bool:
    """Whether every gold span is a definition of the index: `imports`, module-level code (`impl:13`) and
    functions the patch adds are not, and no ranking of definitions can hit them."""
    return all(name in {s.qualified_name for s in store.outline(path)} for path, names in spans.items()
               for name in names)


def evaluate(instance: Instance, store: IndexStore, tree: Path, peer: Bm25Peer | None, weights: Weights,
             context: bool) -> dict:
    """One instance's ranks (the BM25 peer's when `peer` is given) and, with `context`, context recall."""
    started = time.perf_counter()
    found = localize(store, instance.question, k=_SEARCH_K, weights=weights, root=tree)
    seconds = time.perf_counter() - started
    files = [f.path for f in found.files[:20]]
    definitions = [(d.path, d.qualified_name) for d, _ in found.definitions[:20]]
    searched = list(dict.fromkeys(d.path for d, _ in found.definitions))
    row = {"id": instance.instance_id, "repo": instance.repo, "split": split_of(instance.instance_id),
           "gold": instance.gold_files,
           "top": files[:5], "rank": _rank(files, instance.gold_files), "seconds": round(seconds, 4),
           "search_rank": _rank(searched, instance.gold_files),
           "bm25_rank": _rank(peer.rank(instance.question), instance.gold_files) if peer else None,
           "has_spans": any(instance.gold_spans.values()),
           **{f"fn@{k}": function_hit(definitions, instance.gold_spans, k) for k in (1, 5, 10)},
           "fn_indexed": spans_indexed(store, instance.gold_spans)}
    if context:
        anchors = lines_to_change(instance.patch, tree)
        for tier, budget in BUDGETS.items():
            for path, (question, extra) in {"context": (instance.question, ""),
                                            "ask": (ASK_QUESTION, instance.question)}.items():
                built = build_context(question, store, tree, budget, lambda text: len(text) // 4, extra=extra)
                paths = {s.path for s in built.sources}
                names = {(s.path, s.symbol) for s in built.sources}
                row[f"{path}_file_{tier}"] = set(instance.gold_files) <= paths
                row[f"{path}_fn_{tier}"] = {(p, n) for p, ns in instance.gold_spans.items() for n in ns} <= names
                row[f"{path}_lines_{tier}"] = shows_lines(built.text, anchors, instance.question)
                row[f"{path}_tokens_{tier}"] = built.tokens
    return row


def lines_to_change(patch: str, tree: Path) -> dict[str, list[str]]:
    """Per gold file, the lines of the patch that the indexed version of the file has too, stripped: the ones
    it removes, and for an insertion the line before it; only lines of a dozen characters or more that occur
    at most twice in the file (`return None` says nothing). Empty when a file has none (the sdist's version
    differs too much from the report's commit to tell)."""
    anchors: dict[str, list[str]] = {}
    path, before = None, None
    for line in patch.splitlines():
        if line.startswith(("diff ", "--- ", "@@")):
            before = None
        elif line.startswith("+++ "):
            path = line[6:] if line.startswith("+++ b/") else None
        elif path and line.startswith("-"):
            anchors.setdefault(path, []).append(line[1:].strip())
        elif path and line.startswith("+") and before:
            anchors.setdefault(path, []).append(before)
        elif path:
            before = line[1:].strip()
    found: dict[str, list[str]] = {}
    for path, lines in anchors.items():
        held = [line.strip() for line in read_lines(tree, path)]
        found[path] = [a for a in dict.fromkeys(lines) if len(a) >= 12 and 1 <= held.count(a) <= 2]
    return found if found and all(found.values()) else {}


def shows_lines(text: str, anchors: dict[str, list[str]], report: str) -> bool | None:
    """Whether a context shows a line to change of every gold file (the report's own lines do not count: it is
    sent too); None when the lines cannot be told (`lines_to_change` found none)."""
    if not anchors:
        return None
    shown = {line.strip() for line in text.splitlines()} - {line.strip() for line in report.splitlines()}
    return all(any(a in shown for a in lines) for lines in anchors.values())


_SEARCH_K = 50
"""Definitions `tiercode search -k 50` would list (`hybrid_search` is `localize(k=max(k, 20))`'s definitions):
one ranking gives the file ranking's first 20, the function level's first 20 and the search's files."""


def rank_each_text_once() -> None:
    """`build_context` for the two budgets of one text ranks the same text twice, with the same result: the
    bench keeps the last few rankings so that each is computed once (the scores do not change)."""
    assistant.context.builder.locate = functools.lru_cache(maxsize=4)(assistant.context.builder.locate)


def _rank(ranked: list[str], gold: list[str]) -> int | None:
    """The rank at which every gold file has appeared (None past the list)."""
    positions = [ranked.index(g) + 1 if g in ranked else None for g in gold]
    return None if None in positions else max(positions)  # type: ignore[type-var]


def summarize(rows: list[dict]) -> dict:
    n = len(rows)
    if not n:
        return {"instances": 0}
    spans = [r for r in rows if r["has_spans"]]
    out = {"instances": n}
    for name, key in (("tiercode", "rank"), ("search", "search_rank"), ("bm25", "bm25_rank")):
        out[name] = {f"acc@{k}": _pct(sum(1 for r in rows if r[key] and r[key] <= k), n) for k in (1, 3, 5, 10)}
    out["tiercode"]["function"] = {f"acc@{k}": _pct(sum(1 for r in spans if r[f"fn@{k}"]), len(spans))
                                   for k in (1, 5, 10)} | {"instances": len(spans),
                                                           "indexed": sum(1 for r in spans if r.get("fn_indexed"))}
    for path, key in (("context", "context_recall"), ("ask", "ask_context_recall")):
        if f"{path}_file_local" in rows[0]:
            told = [r for r in rows if r[f"{path}_lines_local"] is not None]
            out[key] = {tier: {"file": _pct(sum(r[f"{path}_file_{tier}"] for r in rows), n),
                               "function": _pct(sum(r[f"{path}_fn_{tier}"] for r in spans), len(spans)),
                               "lines": _pct(sum(r[f"{path}_lines_{tier}"] for r in told), len(told)),
                               "lines_told": len(told),
                               "tokens_p50": statistics.median(r[f"{path}_tokens_{tier}"] for r in rows)}
                        for tier in BUDGETS}
    seconds = [r["seconds"] for r in rows]
    out["search_ms"] = {"p50": round(statistics.median(seconds) * 1000, 1),
                        "p95": round(sorted(seconds)[int(0.95 * (n - 1))] * 1000, 1)}
    return out


def _pct(hits: int, n: int) -> float:
    return round(100 * hits / n, 1) if n else 0.0


ABLATIONS = {"all stages": {}, "no text BM25": {"text": 0.0}, "no definition BM25": {"definitions": 0.0},
             "no names": {"names": 0.0}, "no frames": {"frames": 0.0}, "no file mentions": {"files": 0.0},
             "no literals": {"literals": 0.0}, "no code rerank": {"code": 0.0},
             "no path priors": {"demoted": 1.0, "other_language": 1.0}}


def prepare(instances: list[Instance], peers: bool = True,
            ) -> tuple[dict[str, tuple[IndexStore, Path, Bm25Peer | None]], list[str]]:
    """Download, unpack and index every sdist (with its BM25 peer unless `peers` is false); the ones pip
    could not get are listed."""
    ready: dict[str, tuple[IndexStore, Path, Bm25Peer | None]] = {}
    failed: list[str] = []
    specs = sorted({i.sdist: i.strip_prefix for i in instances}.items())
    for at, (spec, prefix) in enumerate(specs, start=1):
        archive = fetch(spec)
        if archive is None:
            failed.append(spec)
            print(f"[{at}/{len(specs)}] {spec}: pip could not download it on Python 3.11; skipped", flush=True)
            continue
        tree = unpack(archive, prefix, spec)
        started = time.perf_counter()
        store = index(tree, spec)
        ready[spec] = (store, tree, Bm25Peer(store, tree) if peers else None)
        print(f"[{at}/{len(specs)}] {spec}: indexed in {time.perf_counter() - started:.1f} s", flush=True)
    return ready, failed


def run(instances: list[Instance], ready: dict, weights: Weights, context: bool, peers: bool = True) -> list[dict]:
    rows = []
    for instance in instances:
        if instance.sdist in ready:
            store, tree, peer = ready[instance.sdist]
            rows.append(evaluate(instance, store, tree, peer if peers else None, weights, context))
    return rows


def report(rows: list[dict]) -> dict:
    """Each split's summary (non-django, django apart, per repository)."""
    out = {}
    for split in SPLITS:
        by_repo: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            if row["split"] == split:
                by_repo[row["repo"]].append(row)
        if by_repo:
            others = [r for repo, repo_rows in by_repo.items() if repo != "django" for r in repo_rows]
            out[split] = {"non_django": summarize(others), "django": summarize(by_repo.get("django", [])),
                          "per_repo": {repo: summarize(repo_rows) for repo, repo_rows in sorted(by_repo.items())}}
    return out


def print_table(result: dict, ablation: dict[str, dict[str, dict]]) -> None:
    for split in SPLITS:
        if split not in result:
            continue
        total = result[split]["non_django"]
        print(f"\n{split + ' non-django':<28}{'Acc@1':>7}{'Acc@3':>7}{'Acc@5':>7}{'Acc@10':>7}"
              f"   ({total['instances']} instances)")
        for name in ("tiercode", "search", "bm25"):
            row = total[name]
            print(f"{name:<28}{row['acc@1']:>7}{row['acc@3']:>7}{row['acc@5']:>7}{row['acc@10']:>7}")
        for name, summary in ablation.get(split, {}).items():
            row = summary["tiercode"]
            print(f"  {name:<26}{row['acc@1']:>7}{row['acc@3']:>7}{row['acc@5']:>7}{row['acc@10']:>7}"
                  f"   fn@5 {row['function']['acc@5']}")
        print(f"function level: {total['tiercode']['function']}")
        for key in ("context_recall", "ask_context_recall"):
            if key in total:
                print(f"{key}: {total[key]}")
        print(f"search: {total['search_ms']}")
        django = result[split]["django"]
        if django["instances"]:
            print(f"django apart ({django['instances']}): tiercode {django['tiercode']}, bm25 {django['bm25']}")
            for key in ("context_recall", "ask_context_recall"):
                if key in django:
                    print(f"django {key}: {django[key]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=[*SPLITS, "all"], default="all",
                        help="Which half to measure (develop on dev only; default: both, each reported apart).")
    parser.add_argument("--repos", help="Only these repositories (comma-separated, e.g. sympy,flask).")
    parser.add_argument("--no-django", action="store_true", help="Leave django out.")
    parser.add_argument("--no-ablation", action="store_true", help="Skip the stage-by-stage ablation.")
    parser.add_argument("--no-context", action="store_true", help="Skip context recall.")
    parser.add_argument("--no-peer", action="store_true",
                        help="Skip the BM25 peer (its ranks do not depend on Tiercode; building it reads every file).")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"Where the results go (default {RESULTS}).")
    args = parser.parse_args()
    try:
        import rank_bm25  # noqa: F401  (the BM25 peer)
    except ImportError:
        sys.exit("localize_bench: the BM25 peer needs rank_bm25: pip install -e '.[bench]'")
    instances = [i for i in load_instances() if args.split in ("all", split_of(i.instance_id))]
    if args.repos:
        instances = [i for i in instances if i.repo in args.repos.split(",")]
    if args.no_django:
        instances = [i for i in instances if i.repo != "django"]
    ready, failed = prepare(instances, peers=not args.no_peer)
    rank_each_text_once()
    rows = run(instances, ready, DEFAULT_WEIGHTS, context=not args.no_context)
    result = report(rows)
    ablation: dict[str, dict[str, dict]] = {} if args.no_ablation else ablate(instances, ready)
    result.update({"sdists_failed": failed, "instances_skipped": sum(1 for i in instances if i.sdist not in ready),
                   "ablation": {split: {name: s["tiercode"] for name, s in by_name.items()}
                                for split, by_name in ablation.items()}, "rows": rows})
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print_table(result, ablation)
    print(f"sdists pip could not get: {len(failed)} ({', '.join(failed)}); results: {args.out}")


def ablate(instances: list[Instance], ready: dict) -> dict[str, dict[str, dict]]:
    """Each split's non-django summary with one stage left out at a time."""
    out: dict[str, dict[str, dict]] = defaultdict(dict)
    for name, change in ABLATIONS.items():
        if change:
            rows = run(instances, ready, dataclasses.replace(DEFAULT_WEIGHTS, **change), False, peers=False)
            for split in SPLITS:
                if chosen := [r for r in rows if r["split"] == split and r["repo"] != "django"]:
                    out[split][name] = summarize(chosen)
    return dict(out)


if __name__ == "__main__":
    main()
