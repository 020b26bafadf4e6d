"""Project instructions (AGENTS.md, CLAUDE.md, ...): in the cached system prefix of every model tier, within a
cap, named by `tiercode config`; text for the models, never settings (issue 24, item 2)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assistant.config import load_settings
from assistant.context.conversation import History
from assistant.context.instructions import load_instructions
from assistant.pipeline import Pipeline
from assistant.session import Session
from models.base import approx_tokens
from tests.assistant.test_ask_cli import tiercode
from tests.assistant.test_cascade import GOOD, _big_repo
from tests.emulators.fixtures import CloudEmulators
from tests.emulators.server import Reply

RULES = "# Conventions\nUse tabs for indentation.\nEvery public function has a docstring.\n"


def test_agents_md_reaches_sonnet_in_the_cached_prefix(tmp_path: Path, cloud_emulators: CloudEmulators) -> None:
    repo = _big_repo(tmp_path / "big")
    (repo / "AGENTS.md").write_text(RULES)
    cloud_emulators.anthropic.script(Reply(GOOD), Reply(GOOD))
    session = Session(repo, load_settings(repo, tiers=["sonnet"], max_output_tokens=128))
    try:
        pipeline = Pipeline(session)
        pipeline.ask("explain how handler_3_2 passes the payload on")
        pipeline.ask("explain what retry_policy is for in handler_7_1")
    finally:
        session.close()

    first, second = cloud_emulators.anthropic.bodies()
    system = first["system"][0]
    assert "Project instructions from AGENTS.md" in system["text"] and "Use tabs for indentation." in system["text"]
    assert system["cache_control"]["type"] == "ephemeral"  # still the stable, cached block
    assert second["system"] == first["system"]


def test_the_first_file_found_wins_and_a_long_one_is_cut_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "CLAUDE.md").write_text(RULES)
    (tmp_path / ".tiercode").mkdir()
    (tmp_path / ".tiercode" / "instructions.md").write_text("other\n")
    names = ["AGENTS.md", "CLAUDE.md", ".tiercode/instructions.md"]
    found = load_instructions(tmp_path, names, 2000, approx_tokens)
    assert found is not None and found.path == "CLAUDE.md" and not found.cut
    (tmp_path / "AGENTS.md").write_text("".join(f"rule {i}: keep functions short\n" for i in range(400)))
    cut = load_instructions(tmp_path, names, 100, approx_tokens)
    assert cut is not None and cut.path == "AGENTS.md" and cut.cut
    assert cut.tokens <= 100 and cut.text.startswith("rule 0:")
    assert load_instructions(tmp_path, names, 0, approx_tokens) is None


def test_a_link_out_of_the_repository_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.md"
    secret.write_text("password=hunter2\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "AGENTS.md").symlink_to(secret)
    assert load_instructions(repo, ["AGENTS.md"], 2000, approx_tokens) is None
    shown = tiercode("config", "--repo", str(repo)).stdout  # and config says why it is not read
    assert "; not read, linking out of the repository: AGENTS.md" in shown and "hunter2" not in shown


@pytest.mark.usefixtures("installed_model")
def test_the_local_model_gets_them_too_within_its_window(tmp_path: Path) -> None:
    repo = _big_repo(tmp_path / "big")
    (repo / "AGENTS.md").write_text(RULES + "".join(f"rule {i}: name things well\n" for i in range(800)))
    session = Session(repo, load_settings(repo, tiers=["local"], max_output_tokens=16))
    try:
        pipeline = Pipeline(session)
        backend = session.tiers.get("local")
        found = pipeline.instructions_for(backend)
        window = backend.capabilities.context_window
        assert found is not None and found.cut and window is not None and found.tokens <= window // 8
        request = pipeline.request_for("local", "explain handler_1_1", pipeline.context_for(
            "explain handler_1_1", "", "local", backend, History()), backend, History())
        assert "Use tabs for indentation." in request.messages[0].content
    finally:
        session.close()


def test_config_names_the_file_and_its_size(tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").write_text(RULES)
    done = tiercode("config", "--repo", str(tmp_path), env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert f"# instructions: AGENTS.md ({len(RULES.encode()):,} bytes" in done.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "# instructions: none (looked for AGENTS.md" in tiercode("config", "--repo", str(empty)).stdout
