"""Proposed patches are verified: they must apply, and pass the configured test command in a scratch copy.

Real files, a real subprocess for the test command, and the cascade through the Groq and Gemini SDKs
against the loopback emulators.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.changes.patch_check import PatchCheck, check_patch
from assistant.config import load_settings
from assistant.pipeline import Pipeline
from assistant.session import Session
from tests.emulators import fixtures
from tests.emulators.server import Reply

OLD_LINE = '    return f"{len(circles)} circles, total area {total_area(circles):.2f}"'


def patch(new_line: str, old_line: str = OLD_LINE) -> str:
    """An aider-style answer: a SEARCH/REPLACE block for pkg/report.py inside a python fence."""
    return (f"Change the return line:\n\npkg/report.py\n```python\n<<<<<<< SEARCH\n{old_line}\n=======\n"
            f"{new_line}\n>>>>>>> REPLACE\n```\n")


GOOD_PATCH = patch('    return f"{len(circles)} circles, total area {total_area(circles):.3f}"')
BROKEN_PATCH = patch('    return f"{len(circles)} circles"')
STALE_PATCH = patch("    return 'whatever'", old_line="    return report_text(circles)")
# The repository's "tests": the report must still mention the total area.
TEST_COMMAND = f"{sys.executable} -c \"from pkg.report import make_report; assert 'area' in make_report([1.0])\""


def test_an_answer_without_edits_passes(sample_repo: Path) -> None:
    assert check_patch("make_report returns a string.", sample_repo, TEST_COMMAND).reason == ""


def test_an_edit_that_does_not_match_the_file_is_rejected(sample_repo: Path) -> None:
    checked = check_patch(STALE_PATCH, sample_repo)
    assert checked.reason.startswith("a proposed edit does not apply (the SEARCH text for 'pkg/report.py'")


def test_a_patch_that_breaks_the_tests_is_rejected_and_the_repository_is_untouched(sample_repo: Path) -> None:
    before = (sample_repo / "pkg" / "report.py").read_text()
    checked = check_patch(BROKEN_PATCH, sample_repo, TEST_COMMAND)
    assert checked.reason.startswith(f"the proposed patch fails `{TEST_COMMAND}` (exit 1: AssertionError")
    assert (sample_repo / "pkg" / "report.py").read_text() == before


def test_a_patch_that_passes_the_tests_is_accepted(sample_repo: Path) -> None:
    checked = check_patch(GOOD_PATCH, sample_repo, TEST_COMMAND)
    assert checked.reason == "" and "passes" in checked.note


def test_tests_that_fail_without_the_patch_do_not_blame_it(sample_repo: Path) -> None:
    failing = f"{sys.executable} -c \"raise SystemExit(4)\""
    checked = check_patch(GOOD_PATCH, sample_repo, failing)
    assert checked.reason == "" and "fails with or without the patch (exit 4" in checked.note


@pytest.mark.timeout(120)  # the hang guard: a process the cancel left alive is waited for until then
def test_cancelling_a_hanging_test_run_stops_its_whole_process_group(sample_repo: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    hang = patch("    import time; time.sleep(600)")
    # `; true` keeps the shell alive, so the python process is the shell's child, not the shell itself.
    command = (f"{sys.executable} -c \"import os, pkg.report; open({str(pid_file)!r}, 'w').write(str(os.getpid()));"
               f" pkg.report.make_report([1.0])\"; true")
    cancel = threading.Event()

    def cancel_once_running() -> None:
        while not pid_file.exists() or not pid_file.read_text():
            threading.Event().wait(0.05)
        cancel.set()

    watcher = threading.Thread(target=cancel_once_running, daemon=True)
    watcher.start()
    checked = check_patch(hang, sample_repo, command, cancel=cancel)
    assert checked == PatchCheck(note=f"`{command}` was cancelled; the patch is untested")
    _wait_until_gone(int(pid_file.read_text()))


def _wait_until_gone(pid: int) -> None:
    """Return once the process is gone: the kernel delivers the SIGKILL sent to its group a moment after
    the cancel returns (longer on a loaded machine). One the cancel missed is never gone, and the test's
    timeout fails it."""
    while not _gone(pid):
        threading.Event().wait(0.05)


def test_a_test_run_past_its_limit_counts_as_failing(sample_repo: Path) -> None:
    sleeps = f"{sys.executable} -c \"import time; time.sleep(600)\""  # with or without the patch
    checked = check_patch(GOOD_PATCH, sample_repo, sleeps, timeout_s=0.5)
    assert checked.reason == ""  # both runs stopped: not the patch's fault
    assert checked.note.startswith(f"`{sleeps}` fails with or without the patch (timed out")


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except (FileNotFoundError, IndexError):
        return True
    return state in "ZX"  # killed, waiting to be reaped by whoever adopted it


def test_a_patch_into_an_installed_dependency_is_rejected_and_nothing_real_changes(sample_repo: Path) -> None:
    dependency = sample_repo / "node_modules" / "dep" / "index.js"
    dependency.parent.mkdir(parents=True)
    dependency.write_text("module.exports = 1;\n")
    answer = ("node_modules/dep/index.js\n<<<<<<< SEARCH\nmodule.exports = 1;\n=======\nmodule.exports = 2;\n"
              ">>>>>>> REPLACE\n")
    checked = check_patch(answer, sample_repo, "true")
    assert checked.reason == "a proposed edit changes node_modules/dep/index.js, inside a dependency or build folder"
    assert dependency.read_text() == "module.exports = 1;\n"


def test_a_replacement_that_breaks_the_syntax_is_rejected_without_a_test_command(sample_repo: Path) -> None:
    checked = check_patch(patch("    return f\"{len(circles)\" (("), sample_repo)
    assert checked.reason == "the patched pkg/report.py does not parse"


def test_special_files_and_dependency_links_do_not_stop_the_tests(sample_repo: Path) -> None:
    os.mkfifo(sample_repo / "pipe")
    venv = sample_repo / ".venv" / "lib"
    venv.mkdir(parents=True)
    (venv / "marker.txt").write_text("installed")
    command = f"{sys.executable} -c \"import pathlib; assert pathlib.Path('.venv/lib/marker.txt').read_text()\""
    assert check_patch(GOOD_PATCH, sample_repo, command).note == f"the patch passes `{command}`"


def test_the_test_command_does_not_see_the_provider_keys(
    sample_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    command = f"{sys.executable} -c \"import os; assert 'ANTHROPIC_API_KEY' not in os.environ\""
    assert check_patch(GOOD_PATCH, sample_repo, command).note == f"the patch passes `{command}`"


def test_a_repository_config_may_not_choose_the_test_command(sample_repo: Path) -> None:
    (sample_repo / ".tiercode.toml").write_text('test_command = "rm -rf ~"\n')
    assert load_settings(sample_repo).test_command is None  # ignored, with a warning


@pytest.fixture
def cascade(sample_repo: Path, cloud_emulators: fixtures.CloudEmulators, loopback_only: None) -> Iterator[Any]:
    sessions: list[Session] = []

    def ask(question: str, **settings: Any) -> Any:
        session = Session(sample_repo, load_settings(sample_repo, tiers=["groq", "gemini"], max_output_tokens=256,
                                                     **settings))
        sessions.append(session)
        return Pipeline(session).ask(question), session

    yield ask
    for session in sessions:
        session.close()


def test_a_patch_that_fails_the_tests_escalates_with_that_reason(
    cascade: Any, cloud_emulators: fixtures.CloudEmulators
) -> None:
    cloud_emulators.groq.script(Reply(BROKEN_PATCH))
    cloud_emulators.gemini.script(Reply(GOOD_PATCH))

    answer, session = cascade("make make_report print three decimals", test_command=TEST_COMMAND)

    assert answer.tier == "gemini" and answer.answer == GOOD_PATCH
    failed = f"the proposed patch fails `{TEST_COMMAND}` (exit 1: AssertionError)"
    assert [e.reason for e in answer.escalations] == [failed]
    assert f"the patch passes `{TEST_COMMAND}`" in answer.notes
    assert [r.escalation_reason for r in session.ledger.records()] == [answer.escalations[0].reason, ""]


def test_an_edit_that_does_not_apply_escalates_without_a_test_command(
    cascade: Any, cloud_emulators: fixtures.CloudEmulators
) -> None:
    cloud_emulators.groq.script(Reply(STALE_PATCH))
    cloud_emulators.gemini.script(Reply(GOOD_PATCH))

    answer, _ = cascade("make make_report print three decimals")

    assert answer.tier == "gemini"
    assert answer.escalations[0].reason.startswith("a proposed edit does not apply")
