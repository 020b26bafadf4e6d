"""Pinned files: `ask --file PATH` and the TUI's `/add` / `/drop` send whole files with every question, within
each tier's budget (issue 24, item 4)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from assistant.context.pinned import PinnedFiles
from assistant.errors import UsageError
from tests.assistant.test_ask_cli import assert_one_line_error, tiercode
from tests.emulators import fixtures

cloud_emulators = fixtures.cloud_emulators
loopback_only = fixtures.loopback_only


@pytest.mark.usefixtures("cloud_emulators", "loopback_only")
def test_ask_file_sends_the_file_whole_to_every_tier_that_holds_it(sample_repo: Path) -> None:
    env = dict(os.environ, TIERCODE_TIERS='["local", "sonnet"]', TIERCODE_CONTEXT__LOCAL="60")
    done = tiercode("ask", "--dry-run", "--json", "--file", "pkg/report.py", "explain how areas are summed",
                    "--repo", str(sample_repo), env=env)
    assert done.returncode == 0, done.stderr
    tiers = {t["tier"]: t for t in json.loads(done.stdout)["tiers"]}
    sonnet_files = [s for s in tiers["sonnet"]["context"] if s["part"] == "file"]
    assert sonnet_files == [{"path": "pkg/report.py", "line": 1, "end_line": 13, "symbol": "", "part": "file",
                             "tokens": sonnet_files[0]["tokens"]}]
    assert sonnet_files[0]["tokens"] <= tiers["sonnet"]["context_tokens"]
    if tiers["local"]["available"]:  # a 60-token budget cannot hold the file: left out, never over budget
        assert all(s["part"] != "file" for s in tiers["local"]["context"])
        assert tiers["local"]["context_tokens"] <= 60


def test_a_bad_pin_is_one_line_and_exit_2(sample_repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.py"
    outside.write_text("x = 1\n")
    (sample_repo / "pkg" / "blob.dat").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    for path, fragment in ((str(outside), "is outside the repository"), ("pkg/nope.py", "is not a file"),
                           ("pkg/blob.dat", "pkg/blob.dat is a binary file")):
        done = tiercode("ask", "-n", "--offline", "--file", path, "explain it", "--repo", str(sample_repo))
        assert_one_line_error(done, 2, fragment)


def test_pins_resolve_from_the_current_folder_or_the_root(sample_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pinned = PinnedFiles(sample_repo)
    monkeypatch.chdir(sample_repo / "pkg")
    assert pinned.add("shapes.py") == "pkg/shapes.py"
    assert pinned.add("pkg/report.py") == "pkg/report.py"  # relative to the root, from a subfolder
    assert pinned.add("shapes.py") == "pkg/shapes.py" and pinned.paths == ["pkg/shapes.py", "pkg/report.py"]
    assert pinned.drop("shapes.py") == "pkg/shapes.py"
    with pytest.raises(UsageError, match="is not pinned"):
        pinned.drop("shapes.py")
    (sample_repo / "pkg" / "report.py").unlink()
    assert pinned.texts() == []  # a file gone since is left out, not an error
