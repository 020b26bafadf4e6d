"""Routing benchmark: the labelled workload through the real pipeline, against the all-Sonnet counterfactual.

The workload (bench/workloads/route_questions.jsonl: 240 developer questions about the Python standard
library, each labelled with its kind) is asked of the stdlib of the running interpreter with:
- the real index (tree-sitter, SQLite), the real router and the real local tier: the quick-start GGUF
  as coder and as classifier (users run Qwen2.5-Coder and Phi-3 there);
- Groq, Gemini and Anthropic through their official SDKs against the loopback emulators, which bill
  the prompt they actually receive; every call is priced from models/prices.toml;
- a second pass that asks every fifth question again (a developer repeating themselves), which is
  what the response cache is for.
In the same run, the peer: every question of the first pass sent to the Sonnet tier alone (its own
context budget and repo map, the same emulated answer), priced the same way.

Reported: who answered (index, cache, local, each cloud tier), escalations by reason, cost per query
and in total against all-Sonnet, router accuracy on kinds (and how often each stage decided), and the
routing overhead before the first model call (pre-flight, rules, context), p50 and p95; and everything but
model time (the ledger's latencies) per model-answered question.

Answer shapes before and after (issue 23, items 2 and 3), per kind, on the first --shapes questions of each
kind: the Sonnet request as Tiercode built it before (max_tokens 1,024 for every question, no form line, no
effort: Claude's default, high, thinking inside those 1,024) and as it builds it now (the kind's and
difficulty's output limit and form line, the effort and its thinking room); for each, `max_tokens`, the
pre-call estimate (the budget's upper bound, input and max_tokens at Sonnet's prices), and the output tokens
the quick-start model actually generates for that request (a real model obeys the limit and the form line; an
emulated cloud answer would not). `--shapes-only` runs this section alone.

Run: python bench/route_bench.py [--limit N] [--max-tokens 160] [--shapes 2] [--shapes-only]
     -> bench/results/route.json (route_shapes.json with --shapes-only) and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.cascade.estimates import estimate
from assistant.config import load_settings
from assistant.context.builder import build_context
from assistant.context.conversation import History
from assistant.errors import TiercodeError
from assistant.pipeline import Pipeline
from assistant.route.answer_shape import AnswerShape
from assistant.route.preflight import answer_lookup, preflight
from assistant.route.router import classify, classify_fast, classify_lexical
from assistant.session import QuietReporter, Session
from models import pricing
from models.catalog import QUICKSTART_MODEL
from tests.emulators.anthropic_api import AnthropicEmulator
from tests.emulators.gemini_api import GeminiEmulator
from tests.emulators.groq_api import GroqEmulator
from tests.emulators.server import Reply

WORKLOAD = Path(__file__).parent / "workloads" / "route_questions.jsonl"
RESULTS = Path(__file__).parent / "results" / "route.json"
SHAPE_RESULTS = Path(__file__).parent / "results" / "route_shapes.json"
OLD_MAX_TOKENS = 1024
"""What every request carried before answer shapes: one output limit, whatever the question."""
KEYS = {"anthropic": "sk-ant-bench", "gemini": "AIza-bench", "groq": "gsk_bench"}
REPEAT_EVERY = 5
CLOUD_ANSWER = (
    "The behaviour comes from the function the question names: it validates its arguments first, then "
    "delegates to the helper that does the work, and the caller in the same module handles the result. "
    "A minimal change keeps that split and adds the new case next to the existing ones:\n\n"
    "```python\ndef handle(value, *, strict=False):\n    if value is None:\n        raise ValueError('value is "
    "required')\n    result = process(value)\n    return result if not strict else validate(result)\n```\n\n"
    "Three things to check afterwards: the existing tests for the module still pass, the new branch has a "
    "test of its own, and the docstring mentions the new keyword argument. If the function is public, "
    "also note the change in the module's documentation so that callers know what to expect, and keep "
    "the default behaviour exactly as it was so nothing that already works changes."
)
"""What the emulated cloud tiers answer (about 200 tokens, passes the verifiers)."""


def load_workload(limit: int | None) -> list[dict[str, Any]]:
    """The labelled questions, the first `limit` of them when given."""
    rows = [json.loads(line) for line in WORKLOAD.read_text().splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def install_quickstart(data_home: Path) -> Path:
    """Link the quick-start GGUF into the benchmark's own models folder (pulled once if missing)."""
    from bench.local_bench import find_model

    source = find_model()
    target = data_home / "tiercode" / "models" / QUICKSTART_MODEL / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.symlink_to(source)
    return target


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] if ordered else 0.0


def reason_group(reason: str) -> str:
    """An escalation reason without its numbers, so that reasons can be counted."""
    return re.sub(r"\s*\(.*\)$", "", reason.split(":")[0]).strip() or "unknown"


def ask_all(pipeline: Pipeline, questions: list[str], **options: Any) -> list[dict[str, Any]]:
    """Ask each question; one row per question with who answered and what it cost."""
    rows = []
    for question in questions:
        started = time.perf_counter()
        try:
            answer = pipeline.ask(question, assume_yes=True, **options)
        except TiercodeError as exc:
            rows.append({"question": question, "tier": "none", "error": str(exc), "cost_usd": 0.0, "cached": False,
                         "kind": "", "escalations": [], "ms": (time.perf_counter() - started) * 1000})
            continue
        rows.append({
            "question": question, "query_id": answer.query_id, "tier": answer.tier, "cached": answer.cached,
            "kind": answer.kind,
            "cost_usd": answer.cost_usd, "escalations": [e.reason for e in answer.escalations],
            "ms": (time.perf_counter() - started) * 1000, "input_tokens": answer.usage.total_input_tokens,
            "output_tokens": answer.usage.output_tokens,
        })
    return rows


def pipeline_overhead(session: Session, rows: list[dict[str, Any]]) -> list[float]:
    """Milliseconds of everything a question took but the model calls themselves (their ledger latency):
    pre-flight, routing, context, cache lookups, budget checks, verifiers, ledger writes. Per question a
    model answered (index answers are all overhead and would flatter the number)."""
    model_ms: dict[str, float] = {}
    for record in session.ledger.records():  # the index's own records time the index: overhead, not model
        if record.tier != "index" and not record.cached and record.outcome != "cache_hit":
            model_ms[record.query_id] = model_ms.get(record.query_id, 0.0) + record.latency_ms
    return [row["ms"] - model_ms[row["query_id"]] for row in rows if row.get("query_id") in model_ms]


def routing_overhead(session: Session, questions: list[str]) -> list[float]:
    """Milliseconds of pre-flight, the rules stage and context building per question (no model time)."""
    store = session.store()
    counter = session.tiers.local("coder").count_tokens
    times = []
    for question in questions:
        started = time.perf_counter()
        if preflight(question, store, session.repo) is None:
            route = classify(question)  # the rules (the classifier model is timed apart)
            if route.kind != "lookup" or answer_lookup(question, store) is None:
                budget = session.settings.context.for_tier(route.start_tier)
                build_context(question, store, session.repo, budget, counter)
        times.append((time.perf_counter() - started) * 1000)
    return times


def router_accuracy(session: Session, workload: list[dict[str, Any]]) -> dict[str, Any]:
    """Kind accuracy of the router as the pipeline runs it: pre-flight, rules, lexical model, classifier model."""
    store = session.store()
    classifier = session.tiers.local("classifier")
    stages: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    confusion: Counter[str] = Counter()
    classifier_ms = []
    fast_ms = []
    for row in workload:
        if preflight(row["question"], store, session.repo) is not None:
            stage, kind = "index", "lookup"
        else:
            started = time.perf_counter()
            route = classify(row["question"], classifier)
            elapsed = (time.perf_counter() - started) * 1000
            stage, kind = route.stage, route.kind
            (classifier_ms if stage == "classifier" else fast_ms).append(elapsed)
        stages[stage] += 1
        correct[stage] += kind == row["kind"]
        if kind != row["kind"]:
            confusion[f"{row['kind']}→{kind}"] += 1
    return {
        "accuracy": sum(correct.values()) / len(workload),
        "by_stage": {s: {"questions": n, "accuracy": round(correct[s] / n, 4)} for s, n in stages.items()},
        "fast_stages_on_held_out_half": held_out_accuracy(workload),
        "top_confusions": dict(confusion.most_common(8)),
        "classifier_p50_ms": round(statistics.median(classifier_ms), 1) if classifier_ms else None,
        "fast_stage_ms": {"questions": len(fast_ms), "p50": round(percentile(fast_ms, 50), 3),
                          "p95": round(percentile(fast_ms, 95), 3)} if fast_ms else None,
    }


def held_out_accuracy(workload: list[dict[str, Any]]) -> dict[str, Any]:
    """The rules, and the lexical model on what the rules leave, over the even-numbered questions: those
    were never used to tune either stage (the odd-numbered ones were)."""
    remaining = [r for r in workload if int(r["id"][1:]) % 2 == 0]
    report: dict[str, Any] = {"questions": len(remaining)}
    for name, stage in (("rules", classify_fast), ("lexical", classify_lexical)):
        routes = [(r, stage(r["question"])) for r in remaining]
        decided = [(r, route) for r, route in routes if route is not None]
        report[name] = {"decided": len(decided), "accuracy_when_decided": round(
            sum(r["kind"] == route.kind for r, route in decided) / max(1, len(decided)), 4)}
        remaining = [r for r, route in routes if route is None]
    return report


def shape_comparison(session: Session, workload: list[dict[str, Any]], per_kind: int) -> dict[str, Any]:
    """Per labelled kind, the Sonnet request before and after answer shapes: max_tokens, the pre-call upper
    bound, and the output tokens the quick-start model generates for the same request."""
    pipeline = Pipeline(session)
    sonnet, spec = session.tiers.get("sonnet"), session.tiers.spec("sonnet")
    local = session.tiers.get("local")
    by_kind: dict[str, list[str]] = {}
    for row in workload:
        by_kind.setdefault(row["kind"], []).append(row["question"])
    before = AnswerShape(OLD_MAX_TOKENS, effort="")
    result: dict[str, Any] = {}
    for kind, questions in sorted(by_kind.items()):
        rows: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
        for question in questions[:per_kind]:
            route = replace(classify(question), kind=kind)  # the label's kind, the router's difficulty
            for label, shape in (("before", before), ("after", pipeline.shape_for(route))):
                rows[label].append(_shaped_request(pipeline, question, shape, ("sonnet", sonnet, spec), local))
        result[kind] = {label: {key: round(statistics.mean(r[key] for r in values), 6) for key in values[0]}
                        for label, values in rows.items()}
        print(f"answer shapes: {kind} done", file=sys.stderr, flush=True)  # long: a few minutes a kind on 2 cores
    total = {label: {key: round(statistics.mean(k[label][key] for k in result.values()), 6)
                     for key in next(iter(result.values()))[label]} for label in ("before", "after")}
    return {"per_kind": result, "mean_over_kinds": total, "questions_per_kind": per_kind}


def _shaped_request(pipeline: Pipeline, question: str, shape: AnswerShape, cloud: tuple[str, Any, Any],
                    local: Any) -> dict[str, float]:
    """One question under one shape: Sonnet's max_tokens and upper bound, the local model's actual output."""
    name, backend, spec = cloud
    context = pipeline.context_for(question, "", name, backend, History(), shape)
    request = pipeline.request_for(name, question, context, backend, History(), shape)
    local_context = pipeline.context_for(question, "", "local", local, History(), shape)
    generated = local.generate(pipeline.request_for("local", question, local_context, local, History(), shape))
    return {"sonnet_max_tokens": request.max_tokens, "sonnet_upper_bound_usd": estimate(spec, backend, request),
            "local_output_tokens": generated.usage.output_tokens}


def print_shapes(shapes: dict[str, Any]) -> None:
    """The before/after table of answer shapes."""
    print(f"\nanswer shapes, {shapes['questions_per_kind']} question(s) per kind: before -> after")
    print(f"{'kind':10}{'Sonnet max_tokens':>22}{'Sonnet bound (USD)':>26}{'local output tokens':>24}")
    for kind, row in {**shapes["per_kind"], "mean": shapes["mean_over_kinds"]}.items():
        b, a = row["before"], row["after"]
        print(f"{kind:10}{b['sonnet_max_tokens']:>10.0f} -> {a['sonnet_max_tokens']:<8.0f}"
              f"{b['sonnet_upper_bound_usd']:>12.5f} -> {a['sonnet_upper_bound_usd']:<10.5f}"
              f"{b['local_output_tokens']:>10.0f} -> {a['local_output_tokens']:<8.0f}")


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Who answered, escalations and cost over a list of per-question rows."""
    answered: Counter[str] = Counter("cache" if r["cached"] else r["tier"] for r in rows)
    reasons: Counter[str] = Counter(reason_group(reason) for r in rows for reason in r["escalations"])
    escalated = sum(1 for r in rows if r["escalations"])
    model_rows = [r for r in rows if r["tier"] not in ("index", "none") and not r["cached"]]
    total = sum(r["cost_usd"] for r in rows)
    return {
        "queries": len(rows),
        "share": {name: round(n / len(rows), 4) for name, n in answered.most_common()},
        "escalation_rate": round(escalated / max(1, len(model_rows)), 4),
        "escalations_by_reason": dict(reasons.most_common()),
        "cost_usd": round(total, 6),
        "cost_per_query_usd": round(total / len(rows), 6),
        "errors": [r["error"] for r in rows if r["tier"] == "none"][:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions")
    parser.add_argument("--max-tokens", type=int, default=160, help="answer length bound for every tier")
    parser.add_argument("--corpus", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--shapes", type=int, default=2, help="questions per kind for answer shapes (0: none)")
    parser.add_argument("--shapes-only", action="store_true", help="run the answer-shapes section alone")
    args = parser.parse_args()
    workload = load_workload(args.limit)
    questions = [r["question"] for r in workload]
    repeats = questions[::REPEAT_EVERY]

    with tempfile.TemporaryDirectory(prefix="tiercode-route-bench-") as tmp:
        for name in ("CONFIG", "DATA", "CACHE"):
            os.environ[f"XDG_{name}_HOME"] = str(Path(tmp) / name.lower())
        install_quickstart(Path(tmp) / "data")
        with (
            AnthropicEmulator(api_key=KEYS["anthropic"], default=Reply(CLOUD_ANSWER),
                              min_cache_tokens=pricing.min_cache_tokens(pricing.default_model("sonnet"), 1024)) as ant,
            GeminiEmulator(api_key=KEYS["gemini"], default=Reply(CLOUD_ANSWER)) as gem,
            GroqEmulator(api_key=KEYS["groq"], default=Reply(CLOUD_ANSWER)) as groq,
        ):
            os.environ.update({
                "ANTHROPIC_BASE_URL": ant.base_url, "ANTHROPIC_API_KEY": KEYS["anthropic"],
                "GOOGLE_GEMINI_BASE_URL": gem.base_url, "GEMINI_API_KEY": KEYS["gemini"],
                "GROQ_BASE_URL": groq.base_url, "GROQ_API_KEY": KEYS["groq"],
            })
            if args.shapes:
                shaped = Session(args.corpus, load_settings(args.corpus), QuietReporter())
                try:
                    shapes = shape_comparison(shaped, workload, args.shapes)
                finally:
                    shaped.close()
                if args.shapes_only:
                    SHAPE_RESULTS.write_text(json.dumps(shapes, indent=2) + "\n")
                    print_shapes(shapes)
                    return
            settings = load_settings(args.corpus, max_output_tokens=args.max_tokens)
            session = Session(args.corpus, settings, QuietReporter())
            try:
                started = time.perf_counter()
                session.store()
                index_s = time.perf_counter() - started
                pipeline = Pipeline(session)
                started = time.perf_counter()
                first = ask_all(pipeline, questions)
                second = ask_all(pipeline, repeats)
                cascade_s = time.perf_counter() - started
                overhead = routing_overhead(session, questions)
                around_models = pipeline_overhead(session, first)
                router = router_accuracy(session, workload)
                started = time.perf_counter()
                sonnet = ask_all(Pipeline(session), questions, tier="sonnet", use_cache=False)
                sonnet_s = time.perf_counter() - started
            finally:
                session.close()

    cascade = summarize(first + second)
    cascade_first = summarize(first)
    all_sonnet = sum(r["cost_usd"] for r in sonnet)
    all_sonnet_with_repeats = all_sonnet + sum(
        r["cost_usd"] for r, q in zip(sonnet, questions, strict=True) if q in repeats)
    for r, label in zip(first, workload, strict=True):
        r["label"] = label["kind"]
    result = {
        "python": platform.python_version(),
        "corpus": str(args.corpus),
        "questions": len(questions),
        "repeats": len(repeats),
        "max_tokens": args.max_tokens,
        "models": {"local": QUICKSTART_MODEL, **{t: pricing.default_model(t) for t in ("groq", "gemini", "sonnet")}},
        "index_seconds": round(index_s, 2),
        "cascade": cascade,
        "cascade_first_pass": cascade_first,
        "all_sonnet": {"cost_usd": round(all_sonnet_with_repeats, 6),
                       "cost_per_query_usd": round(all_sonnet_with_repeats / (len(questions) + len(repeats)), 6),
                       "first_pass_cost_usd": round(all_sonnet, 6)},
        "cost_reduction": (round(1 - cascade["cost_usd"] / all_sonnet_with_repeats, 4)
                           if all_sonnet_with_repeats else None),
        "cost_reduction_first_pass": round(1 - cascade_first["cost_usd"] / all_sonnet, 4) if all_sonnet else None,
        "router": router,
        "routing_overhead_ms": {"p50": round(percentile(overhead, 50), 2), "p95": round(percentile(overhead, 95), 2)},
        "pipeline_overhead_ms": {"questions": len(around_models), "p50": round(percentile(around_models, 50), 2),
                                 "p95": round(percentile(around_models, 95), 2)},
        "wall_seconds": {"cascade": round(cascade_s, 1), "all_sonnet": round(sonnet_s, 1)},
        "targets": {"cost_reduction": 0.90, "router_accuracy": 0.90, "routing_overhead_p50_ms": 30},
        "answer_shapes": shapes if args.shapes else None,
        "per_question": first,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    if args.shapes:
        print_shapes(shapes)


def print_table(r: dict[str, Any]) -> None:
    """The headline numbers as a table."""
    c = r["cascade"]
    lines = [
        f"{r['questions']} questions + {r['repeats']} repeats over {r['corpus']} "
        f"(index built in {r['index_seconds']} s)",
        "",
        f"{'':34}{'cascade':>14}{'all-Sonnet':>14}",
        f"{'total cost (USD)':34}{c['cost_usd']:>14.4f}{r['all_sonnet']['cost_usd']:>14.4f}",
        f"{'cost per query (USD)':34}{c['cost_per_query_usd']:>14.6f}{r['all_sonnet']['cost_per_query_usd']:>14.6f}",
        f"{'cost reduction (target >= 90%)':34}{r['cost_reduction']:>14.1%}",
        f"{'  first pass only':34}{r['cost_reduction_first_pass']:>14.1%}",
        "",
        "answered by: " + ", ".join(f"{k} {v:.1%}" for k, v in c["share"].items()),
        f"escalation rate {c['escalation_rate']:.1%}: "
        + (", ".join(f"{k} ×{v}" for k, v in c["escalations_by_reason"].items()) or "none"),
        f"router accuracy {r['router']['accuracy']:.1%} (target >= 90%): "
        + ", ".join(f"{k} {v['questions']} at {v['accuracy']:.0%}" for k, v in r["router"]["by_stage"].items()),
        f"fast stages on the held-out half: {r['router']['fast_stages_on_held_out_half']}",
        f"routing overhead p50 {r['routing_overhead_ms']['p50']} ms, p95 {r['routing_overhead_ms']['p95']} ms "
        f"(target p50 <= 30 ms); classifier model p50 {r['router']['classifier_p50_ms']} ms; fast stages "
        f"(rules, lexical) p50 {r['router']['fast_stage_ms']['p50']} ms, p95 {r['router']['fast_stage_ms']['p95']} ms",
        f"everything but model time, per model-answered question: p50 {r['pipeline_overhead_ms']['p50']} ms, "
        f"p95 {r['pipeline_overhead_ms']['p95']} ms ({r['pipeline_overhead_ms']['questions']} questions)",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
