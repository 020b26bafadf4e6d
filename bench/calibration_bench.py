"""Calibration benchmark: how well the local tier's confidence score tells right answers from wrong ones.

The workload (bench/workloads/quality_questions.jsonl: developer questions about the Python standard
library, each with an automatic grading rule) is asked of the stdlib of the running interpreter through the
real pipeline (index, router, context, the local coder, the verifiers), offline, with no cache, and with
settings that always keep the local answer: tiers ["local"], local.min_confidence 0.0, max_escalations 0.
So every answer gets the score the cascade would judge it by (`Answer.confidence`: the geometric-mean token
probability when the verifiers pass, a fixed 0.1-0.4 when one fails, see assistant/cascade/confidence.py `judge`)
and the reason of a failed verifier (from the "kept local's answer ... although <reason>" note).

Grading: an answer is correct when it contains, case-insensitively, at least one alternative of every group
in `must` and none of `must_not`; an alternative that is a short bare word (at most 4 letters or digits:
`str`, `0`, `list`, `Lock`) must stand as a word, plural or verb ending allowed (`lists`, `sorted`).
Questions the index answers by itself (tier "index") are counted and left out, as are questions that fail
with an error.

Reported: accuracy overall and by kind; the ROC AUC of the score for predicting correctness (over all
answers, and over the answers that pass the verifiers, i.e. the logprob score alone), each with a 95%
bootstrap interval; for thresholds 0.0, 0.1 ... 0.9 and the current default of `local.min_confidence`,
two gates:
- "score >= t": accept iff the score is at least t (the verifier's fixed scores compete with the logprobs);
- "cascade": accept iff no verifier failed and the score is at least t, which is what the pipeline does
  with `local.min_confidence = t` (a failed verifier always escalates);
each with the share of answers accepted locally, the precision of the accepted ones (correct among
accepted), the recall (accepted among correct) and the share of wrong answers that would escalate. Then the
verifier-only gate (accept iff no verifier failed) and the calibrated threshold for the cascade gate, by
this rule: the lowest threshold, on a 0.01 grid, whose accepted answers are at least 10% of all answers and
have a precision >= the target (default 0.8); if none does, that is said, and the threshold with the
highest precision among those that accept at least 10% is given instead.

Sampling is the pipeline's own (temperature 0.2, unseeded), so a rerun differs by a few answers.

Run: python bench/calibration_bench.py [--limit N] [--max-tokens 192] [--model smollm2|qwen2.5-coder-1.5b|PATH]
     [--target-precision 0.8] [--threads 1] -> bench/results/calibration.json and a table.
     On a machine that other work keeps busy, --threads 1: llama.cpp's threads wait on each other at every
     step, and one that is descheduled stalls the rest (2 threads on 2 busy cores ran 10-100x slower).
     python bench/calibration_bench.py --reanalyse [--target-precision 0.9] recomputes the report from the
     answers already in that file, asking nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant import paths
from assistant.config import LocalSettings, load_settings
from assistant.errors import TiercodeError
from assistant.pipeline import Pipeline
from assistant.session import QuietReporter, Session
from bench.local_bench import machine
from bench.route_bench import install_quickstart, percentile
from models.catalog import QUICKSTART_MODEL, entry
from models.manager import ModelManager
from models.threads import physical_cores

WORKLOAD = Path(__file__).parent / "workloads" / "quality_questions.jsonl"
RESULTS = Path(__file__).parent / "results" / "calibration.json"
THRESHOLDS = [round(0.1 * i, 1) for i in range(10)]
FINE_GRID = [round(0.01 * i, 2) for i in range(100)]
MIN_ACCEPTED = 0.10
"""The least share of answers a calibrated threshold must still accept locally."""
DEFAULT_THRESHOLD = LocalSettings().min_confidence
_KEPT = re.compile(r"^kept local's answer, the last the cascade allows, although (?P<reason>.+)$")


def load_workload(limit: int | None) -> list[dict[str, Any]]:
    """The graded questions, the first `limit` of them when given."""
    rows = [json.loads(line) for line in WORKLOAD.read_text().splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def contains(text: str, phrase: str) -> bool:
    """Whether `text` contains `phrase`, ignoring case; a short bare word (at most 4 letters or digits) must
    stand as a word, with at most an inflection (s, es, d, ed, ing), so that `str` does not match `strptime`,
    `0` does not match `10` and `lock` does not match `block`."""
    if re.fullmatch(r"[A-Za-z0-9]{1,4}", phrase):
        return re.search(rf"(?<![A-Za-z0-9_]){re.escape(phrase)}(?:s|es|d|ed|ing)?(?![A-Za-z0-9_])", text,
                         re.I) is not None
    return phrase.lower() in text.lower()


def grade(text: str, must: list[list[str]], must_not: list[str]) -> bool:
    """True when `text` has an alternative of every `must` group and nothing of `must_not`."""
    return all(any(contains(text, alt) for alt in group) for group in must) and not any(
        contains(text, bad) for bad in must_not)


def resolve_model(choice: str, data_home: Path) -> tuple[str, Path]:
    """(the `local.coder` setting, the GGUF) for a catalog name or a path; the quick-start model is linked
    into the benchmark's own models folder (it is also the classifier), others are used where installed."""
    if choice == QUICKSTART_MODEL:
        return QUICKSTART_MODEL, install_quickstart(data_home)
    if entry(choice) is not None:
        for root in (paths.models_dir(), Path.home() / ".cache" / "tiercode-tests" / "models"):
            found = ModelManager(root).path(choice)
            if found:
                return str(found), found
        raise SystemExit(f"model '{choice}' is not installed; run `tiercode models pull {choice}` first")
    path = Path(choice).expanduser().resolve()
    if not path.is_file():
        raise SystemExit(f"model file not found: {path}")
    return str(path), path


def ask_all(pipeline: Pipeline, workload: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ask and grade each question on the local tier; one row per question."""
    rows = []
    for number, item in enumerate(workload, 1):
        started = time.perf_counter()
        row: dict[str, Any] = {"id": item["id"], "kind": item["kind"]}
        try:
            answer = pipeline.ask(item["question"], assume_yes=True, use_cache=False)
        except TiercodeError as exc:
            rows.append({**row, "tier": "none", "error": str(exc)})
            continue
        reasons = [m.group("reason") for note in answer.notes if (m := _KEPT.match(note))]
        row.update({
            "tier": answer.tier,
            "confidence": None if answer.confidence is None else round(answer.confidence, 4),
            "verifier_failure": reasons[0] if reasons else "",
            "correct": grade(answer.answer, item["must"], item["must_not"]),
            "output_tokens": answer.usage.output_tokens,
            "seconds": round(time.perf_counter() - started, 2),
            "answer": answer.answer[:300],
        })
        rows.append(row)
        print(f"  {number}/{len(workload)} {item['id']} {row['seconds']} s, {row['output_tokens']} tokens, "
              f"score {row['confidence']}, {'right' if row['correct'] else 'wrong'}", file=sys.stderr, flush=True)
    return rows


def roc_auc(scores: list[float], labels: list[bool]) -> float | None:
    """Probability that a random correct answer scores above a random wrong one (ties count half)."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    pos, neg = s[y], s[~y]
    if not len(pos) or not len(neg):
        return None
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def auc_interval(scores: list[float], labels: list[bool], resamples: int = 2000) -> list[float] | None:
    """A 95% bootstrap interval of the ROC AUC (answers resampled with replacement, fixed seed)."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    if not y.any() or y.all():
        return None
    rng = np.random.default_rng(0)
    values = []
    for _ in range(resamples):
        pick = rng.integers(0, len(s), len(s))
        value = roc_auc(s[pick].tolist(), y[pick].tolist())
        if value is not None:
            values.append(value)
    return [round(float(np.percentile(values, 2.5)), 4), round(float(np.percentile(values, 97.5)), 4)]


def gate(accepted: np.ndarray, correct: np.ndarray) -> dict[str, Any]:
    """Accept share, precision, recall and the share of wrong answers escalated for one accept mask."""
    n_accepted, n_correct, n_wrong = int(accepted.sum()), int(correct.sum()), int((~correct).sum())
    return {
        "accepted": round(n_accepted / len(correct), 4),
        "precision": round(float((accepted & correct).sum()) / n_accepted, 4) if n_accepted else None,
        "recall": round(float((accepted & correct).sum()) / n_correct, 4) if n_correct else None,
        "wrong_escalated": round(float((~accepted & ~correct).sum()) / n_wrong, 4) if n_wrong else None,
    }


def calibrate(score: np.ndarray, passed: np.ndarray, correct: np.ndarray, target: float) -> dict[str, Any]:
    """The cascade gate's threshold by the rule in the module docstring."""
    candidates = []
    for t in FINE_GRID:
        g = gate(passed & (score >= t), correct)
        if g["accepted"] >= MIN_ACCEPTED and g["precision"] is not None:
            candidates.append((t, g))
    reached = [(t, g) for t, g in candidates if g["precision"] >= target]
    if reached:
        t, g = reached[0]
        return {"threshold": t, "reached_target": True, **g,
                "rule": f"lowest t with precision >= {target} and >= {MIN_ACCEPTED:.0%} accepted"}
    if not candidates:
        return {"threshold": None, "reached_target": False, "rule": f"no t accepts >= {MIN_ACCEPTED:.0%}"}
    t, g = max(candidates, key=lambda c: (c[1]["precision"], -c[0]))
    return {"threshold": t, "reached_target": False, **g,
            "rule": f"no t reaches precision {target}; t with the highest precision among >= {MIN_ACCEPTED:.0%} "
                    "accepted"}


def analyse(rows: list[dict[str, Any]], target: float) -> dict[str, Any]:
    """Accuracy, AUC, the per-threshold gates and the calibrated threshold over the graded rows."""
    graded = [r for r in rows if r["tier"] == "local" and r["confidence"] is not None]
    correct = np.array([r["correct"] for r in graded], dtype=bool)
    score = np.array([r["confidence"] for r in graded], dtype=float)
    passed = np.array([not r["verifier_failure"] for r in graded], dtype=bool)
    kinds = Counter(r["kind"] for r in graded)
    thresholds = sorted({*THRESHOLDS, DEFAULT_THRESHOLD})
    failures: dict[str, Counter[str]] = {}
    for r in graded:
        if r["verifier_failure"]:
            group = re.sub(r"\s*\(.*\)$", "", r["verifier_failure"]).strip()
            failures.setdefault(group, Counter())["correct" if r["correct"] else "wrong"] += 1
    return {
        "graded": len(graded),
        "accuracy": round(float(correct.mean()), 4) if len(graded) else None,
        "accuracy_by_kind": {k: {"questions": n, "accuracy": round(
            sum(r["correct"] for r in graded if r["kind"] == k) / n, 4)} for k, n in kinds.most_common()},
        "auc": _round(roc_auc(score.tolist(), correct.tolist())),
        "auc_ci95": auc_interval(score.tolist(), correct.tolist()),
        "auc_logprob_only": _round(roc_auc(score[passed].tolist(), correct[passed].tolist())),
        "auc_logprob_only_ci95": auc_interval(score[passed].tolist(), correct[passed].tolist()),
        "mean_confidence": {
            "correct": _round(float(score[correct].mean()) if correct.any() else None),
            "wrong": _round(float(score[~correct].mean()) if (~correct).any() else None),
        },
        "verifier_failures": {k: dict(v) for k, v in sorted(failures.items(), key=lambda kv: -sum(kv[1].values()))},
        "score_ge_t": {str(t): gate(score >= t, correct) for t in thresholds},
        "cascade_gate": {str(t): gate(passed & (score >= t), correct) for t in thresholds},
        "verifier_only": gate(passed, correct),
        "calibrated": calibrate(score, passed, correct, target),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions")
    parser.add_argument("--max-tokens", type=int, default=192, help="answer length bound")
    parser.add_argument("--model", default=QUICKSTART_MODEL, help="catalog name or GGUF path of the local coder")
    parser.add_argument("--target-precision", type=float, default=0.8, help="precision the threshold must reach")
    parser.add_argument("--threads", type=int, default=None,
                        help="llama.cpp threads (default: local.threads); 1 keeps a busy machine from stalling it")
    parser.add_argument("--corpus", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--reanalyse", action="store_true",
                        help="ask nothing: recompute the report from the answers in bench/results/calibration.json")
    args = parser.parse_args()
    if args.reanalyse:
        previous = json.loads(RESULTS.read_text())
        previous.update(analyse(previous["per_question"], args.target_precision),
                        target_precision=args.target_precision)
        RESULTS.write_text(json.dumps(previous, indent=2, ensure_ascii=False) + "\n")
        print_table(previous)
        return
    workload = load_workload(args.limit)

    with tempfile.TemporaryDirectory(prefix="tiercode-calibration-bench-") as tmp:
        data_home = Path(tmp) / "data"
        coder, model_path = resolve_model(args.model, data_home)
        if args.model != QUICKSTART_MODEL:
            install_quickstart(data_home)  # the classifier
        for name in ("CONFIG", "DATA", "CACHE"):
            os.environ[f"XDG_{name}_HOME"] = str(Path(tmp) / name.lower())
        settings = load_settings(
            args.corpus, offline=True, tiers=["local"], max_escalations=0, max_output_tokens=args.max_tokens,
            semantic_cache="off", local={"coder": coder, "min_confidence": 0.0, "threads": args.threads},
        )
        session = Session(args.corpus, settings, QuietReporter())
        try:
            started = time.perf_counter()
            session.store()
            index_s = time.perf_counter() - started
            print(f"index built in {index_s:.1f} s", file=sys.stderr, flush=True)
            started = time.perf_counter()
            rows = ask_all(Pipeline(session), workload)
            ask_s = time.perf_counter() - started
        finally:
            session.close()
        info = {**machine(model_path, settings.local.threads or physical_cores()),
                "n_ctx": settings.local.context_tokens}

    local_rows = [r for r in rows if r["tier"] == "local"]
    tokens = sum(r["output_tokens"] for r in local_rows)
    seconds = [r["seconds"] for r in local_rows]
    result = {
        "machine": info,
        "corpus": str(args.corpus),
        "model": args.model,
        "questions": len(workload),
        "kinds": dict(Counter(r["kind"] for r in workload).most_common()),
        "answered_by_index": sum(r["tier"] == "index" for r in rows),
        "errors": [r["error"] for r in rows if r["tier"] == "none"][:5],
        "max_tokens": args.max_tokens,
        "target_precision": args.target_precision,
        "current_default": DEFAULT_THRESHOLD,
        "index_seconds": round(index_s, 2),
        "wall_seconds": round(ask_s, 1),
        "seconds_per_question": {"p50": percentile(seconds, 50), "p95": percentile(seconds, 95)},
        "output_tokens_per_second": round(tokens / sum(seconds), 1) if seconds else None,
        **analyse(rows, args.target_precision),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "per_question": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print_table(result)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def print_table(r: dict[str, Any]) -> None:
    """The headline numbers as a table."""
    lines = [
        f"{r['questions']} questions on {r['model']} ({r['machine']['model']}), max {r['max_tokens']} tokens, "
        f"{r['machine']['threads']} threads; {r['answered_by_index']} answered by the index, "
        f"{len(r['errors'])} errors, {r['graded']} graded in {r['wall_seconds']} s "
        f"({r['output_tokens_per_second']} tokens/s)",
        f"accuracy {_pct(r['accuracy'])}: " + ", ".join(
            f"{k} {v['accuracy']:.0%} of {v['questions']}" for k, v in r["accuracy_by_kind"].items()),
        f"ROC AUC of the confidence score {r['auc']} (95% CI {r['auc_ci95']}); of the logprob score alone, "
        f"verifiers passed: {r['auc_logprob_only']} (95% CI {r['auc_logprob_only_ci95']})",
        f"mean score correct {r['mean_confidence']['correct']}, "
        f"wrong {r['mean_confidence']['wrong']}",
        "verifier failures: " + (", ".join(
            f"{k} ({v.get('correct', 0)} right, {v.get('wrong', 0)} wrong)" for k, v in r["verifier_failures"].items())
            or "none"),
        "",
        f"{'':>6}{'score >= t':^40}{'cascade (verifiers pass, score >= t)':^40}",
        f"{'t':>6}" + f"{'accepted':>10}{'precision':>10}{'recall':>10}{'wrong esc':>10}" * 2,
    ]
    for t, plain in r["score_ge_t"].items():
        cascade = r["cascade_gate"][t]
        mark = "  <- current default" if float(t) == r["current_default"] else ""
        lines.append(f"{t:>6}" + "".join(
            f"{_pct(g['accepted']):>10}{_pct(g['precision']):>10}{_pct(g['recall']):>10}"
            f"{_pct(g['wrong_escalated']):>10}" for g in (plain, cascade)) + mark)
    v, c = r["verifier_only"], r["calibrated"]
    lines += [
        f"{'verifier-only gate':>46}{_pct(v['accepted']):>10}{_pct(v['precision']):>10}{_pct(v['recall']):>10}"
        f"{_pct(v['wrong_escalated']):>10}",
        "",
        f"calibrated local.min_confidence (target precision {r['target_precision']}): {c['threshold']} - {c['rule']}"
        + (f"; accepts {_pct(c['accepted'])} at precision {_pct(c['precision'])}" if c.get("precision") else ""),
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
