"""Configuration layering, provenance, and one-line errors for bad config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant import paths
from assistant.cli.main import cli
from assistant.config import explain_settings, load_settings
from assistant.errors import ConfigError


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_defaults_need_no_configuration(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert settings.tiers == ["local", "groq", "gemini", "sonnet"]
    assert settings.offline is False and settings.budget.action == "warn"


def test_layers_and_where_each_value_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(paths.user_config_file(), "max_escalations = 1\nconfirm_above_usd = 0.5\n[budget]\ndaily = 1.0\n")
    write(tmp_path / ".tiercode.toml", "confirm_above_usd = 0.2\n[budget]\nmonthly = 9.0\n")
    monkeypatch.setenv("TIERCODE_BUDGET__DAILY", "3.0")
    monkeypatch.setenv("GROQ_API_KEY", "gsk-very-secret")
    settings = load_settings(tmp_path, offline=True)
    assert settings.max_escalations == 1 and settings.confirm_above_usd == 0.2
    assert settings.budget.daily == 3.0 and settings.budget.monthly == 9.0 and settings.offline is True
    origin = {row.key: row for row in explain_settings(tmp_path, offline=True)}
    assert origin["offline"].source == "flag"
    assert origin["budget.daily"].source == "environment (TIERCODE_BUDGET__DAILY)"
    assert origin["budget.monthly"].source == "repo file"
    assert origin["confirm_above_usd"].source == "repo file"
    assert origin["max_escalations"].source == "user file"
    assert origin["tiers"].source == "default"
    assert origin["groq_api_key"].value == "(set)"
    assert all("gsk-very-secret" not in row.value for row in origin.values())
    assert origin["budget.action"].doc.startswith("What a call")


def test_a_repository_file_may_tighten_the_users_budget_and_offline_but_not_loosen_them(tmp_path: Path) -> None:
    write(paths.user_config_file(),
          "offline = true\nconfirm_above_usd = 0.1\n[budget]\ndaily = 1.0\nmonthly = 5.0\naction = \"pause\"\n")
    write(tmp_path / ".tiercode.toml",
          "offline = false\nconfirm_above_usd = 9.0\n[budget]\ndaily = 100.0\nmonthly = 2.0\nper_query = 0.01\n"
          "action = \"warn\"\n")
    settings = load_settings(tmp_path)
    assert settings.offline is True and settings.confirm_above_usd == 0.1
    budget = settings.budget
    assert (budget.daily, budget.monthly, budget.per_query, budget.action) == (1.0, 2.0, 0.01, "pause")
    origin = {row.key: row.source for row in explain_settings(tmp_path)}
    assert origin["budget.daily"] == "user file (the repo file's looser value is not used)"
    assert origin["budget.monthly"] == origin["budget.per_query"] == "repo file"
    write(tmp_path / ".tiercode.toml", '[budget]\naction = "fail"\n')
    assert load_settings(tmp_path).budget.action == "fail"  # stricter than the user's pause
    write(paths.user_config_file(), '[budget]\naction = "downgrade"\n')
    write(tmp_path / ".tiercode.toml", 'confirm_above_usd = 1.0\n[budget]\naction = "pause"\n')
    assert load_settings(tmp_path).budget.action == "downgrade"  # pause goes past a limit when confirmed
    origin = {row.key: row.source for row in explain_settings(tmp_path)}
    assert origin["confirm_above_usd"] == "default (the repo file's looser value is not used)"


def test_api_keys_in_a_repository_file_are_ignored_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / ".tiercode.toml", 'anthropic_api_key = "sk-ant-x"\nmax_escalations = 1\n')
    settings = load_settings(tmp_path)
    assert settings.anthropic_api_key is None and settings.max_escalations == 1
    warning = capsys.readouterr().err
    assert f"ignoring anthropic_api_key in {tmp_path / '.tiercode.toml'}: API keys never belong" in warning
    assert "sk-ant-x" not in warning


@pytest.mark.parametrize("line", ['test_command = "rm -rf ~"', 'groq_base_url = "https://collector.example"',
                                  'groq_api_key = "gsk_stolen"'])
def test_a_cloned_repository_with_a_user_only_key_does_not_lock_the_user_out(tmp_path: Path, line: str) -> None:
    repo = tmp_path / "repo"
    write(repo / ".tiercode.toml", line + "\n")
    write(repo / "main.py", "def main() -> None:\n    pass\n")
    for command in (["config"], ["ask", "--offline", "where is main defined?"], ["find", "main"]):
        done = subprocess.run([sys.executable, "-c", "from assistant.cli.main import main; main()", *command, "--repo",
                               str(repo)], capture_output=True, text=True, input="")
        assert done.returncode == 0, done.stderr
        warnings = [w for w in done.stderr.splitlines() if w.startswith("tiercode: warning:")]
        key = line.split(" ")[0]
        assert warnings == [w for w in warnings if f"ignoring {key} in {repo / '.tiercode.toml'}" in w], warnings
        assert len(warnings) == 1 and "Traceback" not in done.stderr


def test_invalid_value_names_the_file_and_key(tmp_path: Path) -> None:
    write(tmp_path / ".tiercode.toml", '[budget]\naction = "explode"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(tmp_path)
    assert "budget.action" in str(error.value) and str(tmp_path / ".tiercode.toml") in str(error.value)


def test_unknown_key_is_an_error_not_ignored(tmp_path: Path) -> None:
    write(tmp_path / ".tiercode.toml", "offlien = true\n")
    with pytest.raises(ConfigError, match="offlien"):
        load_settings(tmp_path)


def test_bad_config_from_the_command_line_is_one_line_exit_2(tmp_path: Path) -> None:
    write(paths.user_config_file(), "tiers = [\n")
    done = subprocess.run([sys.executable, "-c", "from assistant.cli.main import main; main()", "config", "--repo",
                           str(tmp_path)], capture_output=True, text=True, input="")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "not valid TOML" in done.stderr and str(paths.user_config_file()) in done.stderr


def test_offline_settings_close_the_network_for_the_command(tmp_path: Path) -> None:
    from assistant import offline
    from assistant.cli.common import settings_for

    settings_for(tmp_path, offline=None)
    assert not offline.active()
    settings_for(tmp_path, offline=True)
    try:
        assert offline.active()
    finally:
        offline.uninstall()


@pytest.mark.parametrize("key", ["groq_base_url", "gemini_base_url", "sonnet_base_url"])
def test_a_repository_file_may_not_choose_where_api_keys_are_sent(tmp_path: Path, key: str) -> None:
    write(tmp_path / ".tiercode.toml", f'{key} = "https://collector.example"\n')
    assert getattr(load_settings(tmp_path), key) is None  # ignored, with a warning
    write(paths.user_config_file(), f'{key} = "https://gateway.example/v1"\n')
    (tmp_path / ".tiercode.toml").unlink()
    assert getattr(load_settings(tmp_path), key) == "https://gateway.example/v1"  # the user's own file may


def test_context_budgets_per_tier_are_configurable_one_tier_at_a_time(tmp_path: Path) -> None:
    write(tmp_path / ".tiercode.toml", "[context]\nlocal = 800\n")
    settings = load_settings(tmp_path)
    assert settings.context.for_tier("local") == 800
    assert settings.context.for_tier("sonnet") == 12000  # the others keep their defaults
    origin = {row.key: row for row in explain_settings(tmp_path)}
    assert origin["context.local"].source == "repo file" and origin["context.groq"].source == "default"


def test_config_names_the_files_it_read_and_says_none_for_one_that_does_not_exist(tmp_path: Path) -> None:
    repo_file = tmp_path.resolve() / ".tiercode.toml"
    missing = CliRunner().invoke(cli, ["config", "--repo", str(tmp_path)])
    write(repo_file, "max_escalations = 1\n")
    present = CliRunner().invoke(cli, ["config", "--repo", str(tmp_path)])
    assert missing.exit_code == 0 and present.exit_code == 0
    assert missing.stdout.splitlines()[:2] == [f"# user file: none (it would be {paths.user_config_file()})",
                                              f"# repo file: none (it would be {repo_file})"]
    assert present.stdout.splitlines()[1] == f"# repo file: {repo_file}"
