"""Lookups stay lookups: questions the index can answer are answered by it, as people type them, and with
piped stdin too unless the question is about the piped text."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import load_settings
from assistant.pipeline import Pipeline
from assistant.session import Session
from tests.assistant.test_ask_cli import tiercode

PHRASINGS = Path(__file__).parents[1] / "fixtures" / "lookup_phrasings.jsonl"
"""Lookups as typed, about the sample repository. The odd-numbered ones shaped the pre-flight patterns;
the even-numbered ones are held out (the split bench/route_bench.py uses for route_questions.jsonl)."""
ROWS = [json.loads(line) for line in PHRASINGS.read_text().splitlines() if line.strip()]
HELD_OUT = [r for r in ROWS if int(r["id"][1:]) % 2 == 0]
PIPED = "first line of some script's input\nsecond line\n"


@pytest.fixture
def pipeline(sample_repo: Path) -> Iterator[Pipeline]:
    session = Session(sample_repo, load_settings(sample_repo, offline=True))
    yield Pipeline(session)
    session.close()


@pytest.mark.parametrize("row", HELD_OUT, ids=[r["id"] for r in HELD_OUT])
def test_every_held_out_lookup_is_answered_by_the_index(pipeline: Pipeline, row: dict[str, str]) -> None:
    answer = pipeline.ask(row["question"])
    assert answer.tier == "index", row["question"]
    assert row["expect"] in answer.answer, answer.answer


def test_a_lookup_with_piped_stdin_is_answered_by_the_index(sample_repo: Path) -> None:
    done = tiercode("ask", "--offline", "--json", "where is Circle defined?", "--repo", str(sample_repo),
                    stdin=PIPED)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tier"] == "index"


def test_a_question_about_the_piped_text_is_not_answered_by_the_index(sample_repo: Path) -> None:
    plain = tiercode("ask", "--offline", "--dry-run", "--json", "who calls total_area in this?", "--repo",
                     str(sample_repo), stdin="")
    piped = tiercode("ask", "--offline", "--dry-run", "--json", "who calls total_area in this?", "--repo",
                     str(sample_repo), stdin="+    total_area(shapes)\n")
    assert json.loads(plain.stdout)["start_tier"] == "index"
    assert json.loads(piped.stdout)["start_tier"] != "index", piped.stdout


def test_no_stdin_leaves_stdin_to_the_script(sample_repo: Path) -> None:
    ask = shlex.join([sys.executable, "-c", "from assistant.cli.main import main; main()", "ask", "--offline",
                      "--no-stdin", "who calls total_area in this?", "--repo", str(sample_repo)])
    done = subprocess.run(["bash", "-c", f"printf 'one\\ntwo\\n' | {{ {ask}; echo rest:; cat; }}"],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert "tier index" in done.stderr
    assert done.stdout.endswith("rest:\none\ntwo\n")  # the loop's lines are still there for the next command


HEAVY = ("numpy", "faiss", "llama_cpp", "tree_sitter", "rich.progress", "assistant.cascade.steps",
         "assistant.cascade.state", "assistant.accounting.cache", "assistant.context.builder",
         "assistant.cli.doctor_cmd")
"""What a lookup the index answers from a warm index never needs (issue 22, item 9: import only what the answer
needs; bench/lookup_bench.py measures the wall time against ripgrep)."""


@pytest.mark.parametrize("command", [("ask", "--offline", "where is Circle defined?"), ("find", "Circle")])
def test_a_lookup_on_a_warm_index_imports_nothing_it_does_not_need(sample_repo: Path,
                                                                  command: tuple[str, ...]) -> None:
    assert tiercode("index", "--repo", str(sample_repo)).returncode == 0  # warm: the lookup finds it up to date
    report = ("import sys; from assistant.cli.main import main\n"
              "try:\n    main()\nfinally:\n"
              f"    print('loaded:', [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", report, *command, "--repo", str(sample_repo)],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert "pkg/shapes.py:14" in done.stdout
    assert "loaded: []" in done.stderr, done.stderr
