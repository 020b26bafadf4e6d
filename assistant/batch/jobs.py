"""What a batch is asked and what it answers: the questions of a JSONL file or the files to review, each a
`Job`, and the JSONL line each job gives back.

A questions file holds one JSON object a line: `{"question": "...", "files": ["pkg/a.py"], "id": "q1"}`, where
`files` (pinned: sent whole, as `ask --file`) and `id` (letters, digits, `_` and `-`, at most 64; default
`line-N`) are optional; a line may also be a bare JSON string, the question. Blank lines are skipped. A line
that is none of these is an error naming the line, and nothing is answered or submitted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.changes.git_commits import GitCommits, GitError, git_work_tree
from assistant.context.pinned import PinnedFiles
from assistant.errors import UsageError

_CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_KEYS = ("question", "files", "id")
REVIEW_QUESTION = ("Review {path}: list its bugs, risks and unclear code, each with its line, and say what to change "
                   "(a diff where a change is clear).")


@dataclass(frozen=True)
class Job:
    """One question of a batch, with the files pinned to it."""

    custom_id: str
    question: str
    files: tuple[str, ...] = ()
    """Repository paths sent whole with the question."""


def read_questions(lines: Iterable[str], source: str, repo: Path) -> list[Job]:
    """The jobs of a questions file (`source` names it in errors); UsageError naming the first bad line."""
    jobs: list[Job] = []
    seen: set[str] = set()
    pinned = PinnedFiles(repo)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            job = _job(json.loads(line), number, pinned)
        except (ValueError, UsageError) as exc:
            raise UsageError(f"{source} line {number}: {_reason(exc)}; fix it and submit again (nothing was "
                             "submitted)") from None
        if job.custom_id in seen:
            raise UsageError(f"{source} line {number}: the id '{job.custom_id}' is used twice; give each line its own"
                             " id (nothing was submitted)")
        seen.add(job.custom_id)
        jobs.append(job)
    if not jobs:
        raise UsageError(f"{source} holds no questions; write one JSON object a line, e.g. "
                         '{"question": "explain Session"}')
    return jobs


def _job(value: Any, number: int, pinned: PinnedFiles) -> Job:
    if isinstance(value, str):
        value = {"question": value}
    if not isinstance(value, dict):
        raise ValueError("not a JSON object with a \"question\" (or a JSON string)")
    unknown = sorted(set(value) - set(_KEYS))
    if unknown:
        raise ValueError(f"unknown key '{unknown[0]}' (keys: {', '.join(_KEYS)})")
    question, files, custom_id = value.get("question"), value.get("files", []), value.get("id", f"line-{number}")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("\"question\" must be a non-empty string")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ValueError("\"files\" must be a list of paths")
    if not isinstance(custom_id, str) or not _CUSTOM_ID.fullmatch(custom_id):
        raise ValueError("\"id\" must be 1 to 64 letters, digits, '_' or '-'")
    return Job(custom_id, question.strip(), tuple(dict.fromkeys(pinned.add(f) for f in files)))


def _reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON ({exc.msg} at column {exc.colno})"
    return str(exc)


def review_jobs(repo: Path, paths: Sequence[str], changed: bool, indexed: Sequence[str]) -> list[Job]:
    """One review a file: the files `paths` name (a folder: the indexed files under it) or, with `changed`, the
    indexed files git sees changed or untracked, empty ones left out; UsageError when there is none."""
    if changed == bool(paths):
        raise UsageError("give the files to review, or --changed for the files changed since the last commit")
    files = [path for path in (_changed(repo, indexed) if changed else _named(repo, paths, indexed))
             if (repo / path).stat().st_size > 0]  # an empty file has nothing to review
    if not files:
        raise UsageError("no changed source files to review (git sees none changed since HEAD)" if changed
                         else "no indexed files under the folders given; name source files to review")
    return [Job(f"review-{n}", REVIEW_QUESTION.format(path=path), (path,)) for n, path in enumerate(files, 1)]


def _changed(repo: Path, indexed: Sequence[str]) -> list[str]:
    if not git_work_tree(repo):
        raise UsageError(f"--changed needs a git work tree and {repo} is not in one; name the files to review")
    try:
        changed = GitCommits(repo).changed()
    except GitError as exc:
        raise UsageError(f"--changed: {exc}") from None
    known = set(indexed)
    return [path for path in changed if path in known]


def _named(repo: Path, paths: Sequence[str], indexed: Sequence[str]) -> list[str]:
    root = repo.resolve()
    pinned = PinnedFiles(repo)
    files: list[str] = []
    for path in paths:
        folder = next((c.resolve() for c in (Path.cwd() / path, root / path) if c.is_dir()), None)
        if folder is None:
            files.append(pinned.add(path))  # a file inside the repository, or a one-line error
            continue
        if not folder.is_relative_to(root):
            raise UsageError(f"{path} is outside the repository {root}; review files inside it")
        prefix = folder.relative_to(root).as_posix()
        files.extend(p for p in indexed if prefix == "." or p.startswith(prefix + "/"))
    return list(dict.fromkeys(files))


def answer_row(job: Job, status: str, *, answer: str | None = None, tier: str | None = None,
               model: str | None = None, cost_usd: float | None = None, batch: str | None = None,
               error: str | None = None) -> dict[str, object]:
    """One line of `batch submit`'s and `batch collect`'s JSONL: the job, what became of it and the answer."""
    return {"custom_id": job.custom_id, "question": job.question, "status": status, "answer": answer, "tier": tier,
            "model": model, "cost_usd": None if cost_usd is None else round(cost_usd, 6), "batch": batch,
            "error": error}
