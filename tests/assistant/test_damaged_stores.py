"""Every SQLite file Tiercode owns (the ledger, the response cache, the index), damaged on disk: overwritten
with garbage, truncated, or emptied to zero bytes. Each command that opens it through the real console script
ends in one line and exit 2 (an input error, as README lists), or (a cache or the index) sets the file aside
or rebuilds it with a one-line notice and answers; never a traceback, and the ledger is never deleted."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant import paths
from tests.assistant.test_ask_cli import assert_one_line_error, tiercode
from tests.emulators import fixtures

pytestmark = pytest.mark.usefixtures("loopback_only")

LOOKUP = "where is Circle defined?"
FREE_FORM = "explain what make_report returns"


def garbage(path: Path) -> None:
    """Overwrite the whole file with bytes that are not SQLite, keeping its length."""
    size = path.stat().st_size
    path.write_bytes((b"not a database, just garbage " * (size // 29 + 1))[:size])


def truncated(path: Path) -> None:
    """Cut the file after its first page: the header survives, the tables' pages are gone."""
    data = path.read_bytes()
    assert len(data) > 4096, "the store should be several pages long before it is cut"
    path.write_bytes(data[:4096 + 100])


def zero_bytes(path: Path) -> None:
    """Empty the file."""
    path.write_bytes(b"")


DAMAGE: dict[str, Callable[[Path], None]] = {"garbage": garbage, "truncated": truncated, "zero-byte": zero_bytes}


def ledger_commands(repo: Path) -> list[tuple[str, ...]]:
    return [("stats",), ("ledger", "export", "--format", "csv"), ("budget", "show"),
            ("ask", "--offline", LOOKUP, "--repo", str(repo))]


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_a_damaged_ledger_is_one_line_of_advice_to_move_it_aside_and_is_kept(sample_repo: Path, how: str) -> None:
    assert tiercode("ask", "--offline", LOOKUP, "--repo", str(sample_repo)).returncode == 0
    ledger = paths.data_dir() / "ledger.sqlite"
    DAMAGE[how](ledger)
    damaged = ledger.read_bytes()
    for command in ledger_commands(sample_repo):
        done = tiercode(*command)
        assert_one_line_error(done, 2, f"the ledger at {ledger} is damaged")
        assert "move it aside to keep its records" in done.stderr
        assert ledger.read_bytes() == damaged, command  # never deleted: it is the user's spend record


def test_a_zero_byte_ledger_is_an_empty_one(sample_repo: Path) -> None:
    assert tiercode("stats").returncode == 0
    ledger = paths.data_dir() / "ledger.sqlite"
    zero_bytes(ledger)
    for command in ledger_commands(sample_repo):
        done = tiercode(*command)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (command, done.stderr)
    assert tiercode("ledger", "export").stdout.count("\n") == 1  # the lookup asked above


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_a_damaged_response_cache_is_set_aside_with_a_notice_and_the_question_answered(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators, how: str
) -> None:
    env = dict(os.environ, TIERCODE_TIERS='["groq"]')
    assert tiercode("ask", FREE_FORM, "--repo", str(sample_repo), env=env).returncode == 0
    cache = paths.data_dir() / "cache.sqlite"
    DAMAGE[how](cache)
    damaged = cache.read_bytes()

    done = tiercode("ask", FREE_FORM, "--repo", str(sample_repo), env=env)

    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stdout.strip()
    if how == "zero-byte":  # an empty file is an empty cache: nothing to set aside
        assert not cache.with_name("cache.sqlite.damaged").exists()
        return
    notices = [line for line in done.stderr.splitlines() if "response cache" in line]
    assert len(notices) == 1, done.stderr
    assert notices[0].startswith(f"tiercode: the response cache at {cache} could not be used (")
    assert notices[0].endswith("; set it aside as cache.sqlite.damaged and started anew")
    assert cache.with_name("cache.sqlite.damaged").read_bytes() == damaged
    again = tiercode("ask", FREE_FORM, "--repo", str(sample_repo), env=env)
    assert again.returncode == 0 and "response cache" not in again.stderr  # the new cache works
    assert "cached" in again.stderr.splitlines()[-1]


@pytest.mark.parametrize("how", sorted(DAMAGE))
@pytest.mark.parametrize("command", [("search", "circle area"), ("ask", "--offline", LOOKUP), ("find", "Circle")])
def test_a_damaged_index_is_rebuilt_and_the_command_answers(sample_repo: Path, how: str,
                                                            command: tuple[str, ...]) -> None:
    assert tiercode("index", "--no-embed", "--repo", str(sample_repo)).returncode == 0
    index = paths.index_dir(sample_repo) / "index.sqlite"
    DAMAGE[how](index)

    done = tiercode(*command, "--repo", str(sample_repo))

    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "pkg/shapes.py" in done.stdout
    if how != "zero-byte":
        assert f"the index at {index} could not be used" in done.stderr
