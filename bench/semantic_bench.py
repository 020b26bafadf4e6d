"""Semantic-cache benchmark: how often a cached answer is returned for a question that means something else.

The workload (bench/workloads/semantic_pairs.jsonl: developer questions about the Python standard library
in pairs, each pair labelled `same` when the second question deserves exactly the first one's answer,
and otherwise a near-miss: reversed direction, another symbol or module, negation, narrower or broader
scope, another argument) is embedded with the real `LlamaEmbedder` (mean pooling, L2-normalized; the text
is `assistant.accounting.cache.embedding_text(question)`, as the pipeline embeds it). The only GGUF on the benchmark
machine is the quick-start chat model (SmolLM2-135M); users run a model made for embeddings there
(bge-small, nomic-embed-text), and `--model PATH` runs the bench with one.

For each pair and each threshold (0.80, 0.85, 0.90, the default `SEMANTIC_THRESHOLD`, 0.95), Tiercode is a
fresh `ResponseCache` (real SQLite + FAISS) built with that `semantic_threshold`: the first question is
`store`d with its embedding, kind and a context hash, then `semantic_lookup` asks with the second
question's embedding, the same context hash and the same kind. In the same run, the peer: a plain
cosine-threshold cache (GPTCache-style: a FAISS inner-product index, hit when cosine >= threshold, no
lexical agreement check, no edit exclusion) on the same embeddings.

Reported per threshold, for both: hits on same-pairs (recall), wrong hits (hits on different pairs),
wrong-hit share = wrong hits / all hits (the published "about 9% wrong at 0.8" is this number), false-hit
rate on different pairs, wrong hits by `why`; and for Tiercode, that edit pairs never hit semantically.

Run: python bench/semantic_bench.py [--model PATH] -> bench/results/semantic.json and a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import faiss
import numpy as np

from assistant.accounting.agreement import questions_agree
from assistant.accounting.cache import SEMANTIC_THRESHOLD, ResponseCache, embedding_text
from assistant.config import Settings
from bench.minilm_gguf import made_gguf
from models.embedder import LlamaEmbedder
from models.threads import physical_cores

WORKLOAD = Path(__file__).parent / "workloads" / "semantic_pairs.jsonl"
RESULTS = Path(__file__).parent / "results" / "semantic.json"
DEFAULT_THRESHOLD = float(Settings.model_fields["semantic_threshold"].default)
"""The settings default (the pipeline builds its cache with it); `SEMANTIC_THRESHOLD` is the class default."""
THRESHOLDS = sorted({0.80, 0.85, 0.90, DEFAULT_THRESHOLD, 0.95})
CONTEXT_HASH = "ctx-semantic-bench"
"""Both questions of a pair are asked over the same context (same repo state)."""
PUBLISHED_WRONG_SHARE_AT_080 = 0.09


def load_workload() -> list[dict[str, Any]]:
    return [json.loads(line) for line in WORKLOAD.read_text().splitlines() if line.strip()]


class PlainCosineCache:
    """The peer: nearest earlier question by cosine, a hit when it reaches the threshold; nothing else."""

    def __init__(self, dim: int, threshold: float) -> None:
        self.index = faiss.IndexFlatIP(dim)
        self.threshold = threshold
        self.answers: list[str] = []

    def store(self, embedding: np.ndarray, answer: str) -> None:
        self.index.add(np.ascontiguousarray(embedding.reshape(1, -1), dtype=np.float32))
        self.answers.append(answer)

    def lookup(self, embedding: np.ndarray) -> str | None:
        scores, ids = self.index.search(np.ascontiguousarray(embedding.reshape(1, -1), dtype=np.float32), 1)
        if ids[0][0] < 0 or scores[0][0] < self.threshold:
            return None
        return self.answers[int(ids[0][0])]


def tiercode_hit(pair: dict[str, Any], first: np.ndarray, second: np.ndarray, embedder: str, threshold: float,
                 tmp: Path, *, semantic_edits: bool = False, context_hash: str = CONTEXT_HASH) -> dict[str, Any]:
    """Store the first question in a fresh ResponseCache, ask the second semantically; what came back."""
    path = tmp / f"{pair['id']}-{threshold:.2f}-{int(semantic_edits)}-{context_hash[-5:]}.sqlite"
    cache = ResponseCache(path, semantic_threshold=threshold, semantic_edits=semantic_edits)
    try:
        answer = f"answer to {pair['id']}"
        cache.store(model="bench-model", tier="local", prompt=f"semantic:{pair['first']}", context_hash=CONTEXT_HASH,
                    answer=answer, question=pair["first"], kind=pair["kind"], embedding=first, embedder=embedder)
        hit = cache.semantic_lookup(question=pair["second"], embedding=second, embedder=embedder,
                                    context_hash=context_hash, kind=pair["kind"])
    finally:
        cache.close()
    for suffix in (".sqlite", ".faiss", ".sqlite-wal", ".sqlite-shm"):
        path.with_suffix(suffix).unlink(missing_ok=True)
    if hit is None:
        return {"hit": False}
    assert hit.answer == answer and hit.match == "semantic"
    return {"hit": True, "shown_question": hit.question, "similarity": hit.similarity}


def summarize(pairs: list[dict[str, Any]], hits: list[bool]) -> dict[str, Any]:
    same = [h for p, h in zip(pairs, hits, strict=True) if p["same"]]
    diff = [h for p, h in zip(pairs, hits, strict=True) if not p["same"]]
    right, wrong = sum(same), sum(diff)
    return {
        "hits": right + wrong,
        "same_pairs": len(same), "same_hits": right, "recall": round(right / len(same), 4) if same else None,
        "different_pairs": len(diff), "wrong_hits": wrong,
        "wrong_hit_share": round(wrong / (right + wrong), 4) if right + wrong else None,
        "false_hit_rate": round(wrong / len(diff), 4) if diff else None,
        "wrong_hits_by_why": dict(Counter(p["why"] for p, h in zip(pairs, hits, strict=True) if h and not p["same"])
                                  .most_common()),
        "same_hits_by_why": dict(Counter(p["why"] for p, h in zip(pairs, hits, strict=True) if h and p["same"])
                                 .most_common()),
        "edit_pair_hits": sum(h for p, h in zip(pairs, hits, strict=True) if p["kind"] == "edit"),
    }


def machine(path: Path, embedder: LlamaEmbedder, threads: int) -> dict[str, Any]:
    """local_bench's machine facts, with the embedder's instead of a chat context size."""
    from bench.local_bench import machine as local_machine

    info = local_machine(path, threads)
    info.pop("n_ctx", None)
    return {**info, "faiss": faiss.__version__, "embedder": embedder.name, "embedding_dim": embedder.dim,
            "pooling": embedder.name.rsplit(":", 1)[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=made_gguf(),
                        help="an embedding GGUF (default: bench/minilm_gguf.py's, else the quick-start model)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.model is None:
        from bench.local_bench import find_model

        args.model = find_model()
    pairs = load_workload()
    threads = physical_cores()
    embedder = LlamaEmbedder(args.model, threads=threads)
    texts = sorted({embedding_text(q) for p in pairs for q in (p["first"], p["second"])})
    started = time.perf_counter()
    vectors = dict(zip(texts, embedder.embed(texts), strict=True))
    embed_s = time.perf_counter() - started
    firsts = [vectors[embedding_text(p["first"])] for p in pairs]
    seconds = [vectors[embedding_text(p["second"])] for p in pairs]
    cosines = [float(np.dot(a, b)) for a, b in zip(firsts, seconds, strict=True)]
    agree = [questions_agree(p["second"], p["first"]) for p in pairs]

    tier_hits: dict[float, list[bool]] = {}
    peer_hits: dict[float, list[bool]] = {}
    shown_ok = True
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tiercode-semantic-bench-") as tmp:
        for threshold in THRESHOLDS:
            tier_hits[threshold], peer_hits[threshold] = [], []
            for pair, a, b in zip(pairs, firsts, seconds, strict=True):
                got = tiercode_hit(pair, a, b, embedder.name, threshold, Path(tmp))
                tier_hits[threshold].append(got["hit"])
                shown_ok &= not got["hit"] or got["shown_question"] == pair["first"]
                peer = PlainCosineCache(a.shape[0], threshold)
                peer.store(a, f"answer to {pair['id']}")
                peer_hits[threshold].append(peer.lookup(b) is not None)
        edits = [(p, a, b) for p, a, b in zip(pairs, firsts, seconds, strict=True) if p["kind"] == "edit"]
        edits_allowed = [tiercode_hit(p, a, b, embedder.name, DEFAULT_THRESHOLD, Path(tmp), semantic_edits=True)["hit"]
                         for p, a, b in edits]
        other_context = [tiercode_hit(p, a, b, embedder.name, 0.0 + 1e-6, Path(tmp), context_hash="other-ctx")["hit"]
                         for p, a, b in zip(pairs, firsts, seconds, strict=True)]
    cache_s = time.perf_counter() - started

    default_tier, default_peer = tier_hits[DEFAULT_THRESHOLD], peer_hits[DEFAULT_THRESHOLD]
    same_cos = [c for p, c in zip(pairs, cosines, strict=True) if p["same"]]
    diff_cos = [c for p, c in zip(pairs, cosines, strict=True) if not p["same"]]
    non_edit = [i for i, p in enumerate(pairs) if p["kind"] != "edit"]
    # Why Tiercode missed a same-pair at the default threshold: under the threshold, the lexical check, edit rule.
    miss_reasons = Counter(
        "edit request" if p["kind"] == "edit" else "cosine below threshold" if c < DEFAULT_THRESHOLD
        else "questions_agree rejected" if not g else "other"
        for p, c, g, h in zip(pairs, cosines, agree, default_tier, strict=True) if p["same"] and not h)
    report = {
        "machine": machine(args.model, embedder, threads),
        "note": ("embedder is the quick-start chat GGUF with mean pooling; users run an embedding model "
                 "(bge-small, nomic-embed-text) for the semantic cache" if args.model.name.startswith("SmolLM2")
                 else "embedder is all-MiniLM-L6-v2, a sentence embedder (bench/minilm_gguf.py)"
                 if args.model == made_gguf() else "embedder given with --model"),
        "workload": {"pairs": len(pairs), "same": sum(p["same"] for p in pairs),
                     "different": sum(not p["same"] for p in pairs),
                     "edit_pairs": sum(p["kind"] == "edit" for p in pairs)},
        "default_threshold": DEFAULT_THRESHOLD, "cache_class_default_threshold": SEMANTIC_THRESHOLD,
        "published_peer_wrong_hit_share_at_0.80": PUBLISHED_WRONG_SHARE_AT_080,
        "cosine": {"same_pairs": _spread(same_cos), "different_pairs": _spread(diff_cos)},
        "questions_agree": {"same_pairs_passing": sum(g for p, g in zip(pairs, agree, strict=True) if p["same"]),
                            "different_pairs_passing": sum(g for p, g in zip(pairs, agree, strict=True)
                                                           if not p["same"])},
        "thresholds": {
            f"{t:.2f}": {"tiercode": summarize(pairs, tier_hits[t]), "peer": summarize(pairs, peer_hits[t]),
                         "peer_without_edit_pairs": summarize([pairs[i] for i in non_edit],
                                                              [peer_hits[t][i] for i in non_edit])}
            for t in THRESHOLDS},
        "tiercode_same_misses_at_default": dict(miss_reasons.most_common()),
        "edit_pairs": {"pairs": len(edits), "tiercode_hits_at_all_thresholds": sum(
            h for t in THRESHOLDS for p, h in zip(pairs, tier_hits[t], strict=True) if p["kind"] == "edit"),
            "tiercode_hits_with_semantic_edits_on": sum(edits_allowed),
            "tiercode_wrong_hits_with_semantic_edits_on": [
                p["id"] for (p, _, _), h in zip(edits, edits_allowed, strict=True) if h and not p["same"]],
            "peer_hits_at_default": sum(h for p, h in zip(pairs, default_peer, strict=True) if p["kind"] == "edit")},
        "hit_shows_original_question": shown_ok,
        "other_context_hash_hits_at_threshold_0": sum(other_context),
        "seconds": {"embed": round(embed_s, 2), "texts_embedded": len(texts), "caches": round(cache_s, 2)},
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "per_pair": [
            {"id": p["id"], "same": p["same"], "kind": p["kind"], "why": p["why"], "cosine": round(c, 4),
             "questions_agree": g, "tiercode_hit": th, "peer_hit": ph}
            for p, c, g, th, ph in zip(pairs, cosines, agree, default_tier, default_peer, strict=True)],
    }
    embedder.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"wrote {args.out}")


def _spread(values: list[float]) -> dict[str, float]:
    q = np.percentile(values, [5, 25, 50, 75, 95])
    return {"min": round(min(values), 4), "p5": round(float(q[0]), 4), "p25": round(float(q[1]), 4),
            "median": round(float(q[2]), 4), "p75": round(float(q[3]), 4), "p95": round(float(q[4]), 4),
            "max": round(max(values), 4)}


def print_table(r: dict[str, Any]) -> None:
    m, w = r["machine"], r["workload"]
    print(f"{m['cpu']} · llama-cpp-python {m['llama_cpp_python']} · {m['model']} (dim {m['embedding_dim']}, mean)")
    print(f"{w['pairs']} pairs: {w['same']} same, {w['different']} different ({w['edit_pairs']} edit pairs); "
          f"embedded {r['seconds']['texts_embedded']} texts in {r['seconds']['embed']} s")
    cs, cd = r["cosine"]["same_pairs"], r["cosine"]["different_pairs"]
    print(f"cosine median same {cs['median']:.3f} (p5 {cs['p5']:.3f}), different {cd['median']:.3f} "
          f"(p95 {cd['p95']:.3f}); questions_agree passes {r['questions_agree']['same_pairs_passing']}/{w['same']} "
          f"same, {r['questions_agree']['different_pairs_passing']}/{w['different']} different")
    print()
    head = f"{'threshold':<11}{'cache':<10}{'hits':>6}{'recall':>9}{'wrong':>7}{'wrong/hits':>12}{'false-hit':>11}"
    print(head + "  wrong hits by why")
    for t, row in r["thresholds"].items():
        mark = "*" if float(t) == r["default_threshold"] else ""
        for name in ("tiercode", "peer"):
            s = row[name]
            share = "-" if s["wrong_hit_share"] is None else f"{s['wrong_hit_share']:.1%}"
            why = ", ".join(f"{k} {v}" for k, v in s["wrong_hits_by_why"].items()) or "-"
            print(f"{t + mark:<11}{name:<10}{s['hits']:>6}{s['recall']:>9.1%}{s['wrong_hits']:>7}{share:>12}"
                  f"{s['false_hit_rate']:>11.1%}  {why}")
    e = r["edit_pairs"]
    print()
    print(f"* default. edit pairs: Tiercode {e['tiercode_hits_at_all_thresholds']} semantic hits at any threshold "
          f"({e['tiercode_hits_with_semantic_edits_on']}/{e['pairs']} with semantic_cache_edits on, wrong: "
          f"{', '.join(e['tiercode_wrong_hits_with_semantic_edits_on']) or 'none'}), peer "
          f"{e['peer_hits_at_default']} at the default; a hit shows the original question: "
          f"{r['hit_shows_original_question']}; other context hash: {r['other_context_hash_hits_at_threshold_0']} hits")
    print("Tiercode same-pair misses at the default: "
          + ", ".join(f"{k} {v}" for k, v in r["tiercode_same_misses_at_default"].items()))


if __name__ == "__main__":
    main()
