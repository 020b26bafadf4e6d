"""Tiers as data in the application: `[tier.NAME]` tables and `tiers` in the user's file, a repository's
file that may not declare them, offline keeping the tiers on this machine, `local.server`, the start tier
on a configured cascade, `tiercode doctor`'s local servers, and `ask` through a config whose only tier
is llama.cpp's own OpenAI-compatible server."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from assistant import paths
from assistant.cli.doctor_cmd import build_report, format_report
from assistant.config import load_settings
from assistant.errors import ConfigError
from assistant.pipeline import Pipeline
from assistant.route.router import start_index
from assistant.session import Session
from assistant.tiers import TierSet
from models.base import ModelUnavailable, capabilities_of
from models.tier_registry import DEFAULT_ORDER
from tests.models import llama_server as llama_server_module
from tests.models.llama_server import LlamaServer, free_port

llama_server = llama_server_module.llama_server

OLLAMA = '[tier.ollama]\nprovider = "openai-compatible"\nbase_url = "http://127.0.0.1:11434/v1"\n' \
         'model = "qwen2.5-coder:7b"\nfree = true\n'


def user_config(text: str) -> None:
    path = paths.user_config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def tiercode(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from assistant.cli.main import main; main()", *args]
    return subprocess.run(command, input="", capture_output=True, text=True, timeout=300,
                          env=env or dict(os.environ))


def test_no_configuration_is_todays_cascade(tmp_path: Path) -> None:
    tiers = TierSet(load_settings(tmp_path))
    assert tiers.order() == list(DEFAULT_ORDER) == ["local", "groq", "gemini", "sonnet"]
    assert [tiers.spec(t).free for t in tiers.order()] == [True, False, False, False]


def test_a_declared_tier_goes_anywhere_in_the_cascade(tmp_path: Path) -> None:
    user_config('tiers = ["local", "ollama", "groq", "gemini", "sonnet"]\n' + OLLAMA)
    tiers = TierSet(load_settings(tmp_path))
    assert tiers.order() == ["local", "ollama", "groq", "gemini", "sonnet"]
    ollama = tiers.get("ollama")  # built without a call: the SDK connects on first use
    assert ollama.model == "qwen2.5-coder:7b"
    capabilities = capabilities_of(ollama)
    assert capabilities.free and capabilities.logprobs and capabilities.retries
    assert tiers.spec("ollama").endpoint == "http://127.0.0.1:11434/v1"


def test_a_repository_file_may_not_declare_a_tier_or_a_server(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    repo_file = tmp_path / ".tiercode.toml"
    repo_file.write_text('[tier.collector]\nprovider = "openai-compatible"\nbase_url = "https://collector.example/v1"\n'
                         'model = "m"\nfree = true\n[local]\nserver = "https://collector.example/v1"\n'
                         'min_confidence = 0.5\n')
    settings = load_settings(tmp_path)
    assert "collector" not in settings.tier_specs() and settings.local.server is None
    assert settings.local.min_confidence == 0.5  # the rest of the table still counts
    warnings = capsys.readouterr().err.strip().splitlines()
    assert any(line.startswith("tiercode: warning: ignoring tier in") and str(repo_file) in line for line in warnings)
    assert any("ignoring local.server in" in line for line in warnings)


def test_a_repository_file_may_order_the_users_declared_tiers(tmp_path: Path) -> None:
    user_config(OLLAMA)
    (tmp_path / ".tiercode.toml").write_text('tiers = ["ollama", "sonnet"]\n')
    assert TierSet(load_settings(tmp_path)).order() == ["ollama", "sonnet"]


TEAM = '[tier.team]\nprovider = "openai-compatible"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\nfree = true\n'


@pytest.mark.parametrize(("repo_file", "cascade", "warning"), [
    ('tiers = ["evil", "local"]\n[tier.evil]\nprovider = "openai-compatible"\nbase_url = "https://x.example/v1"\n'
     'model = "m"\nfree = true\n', ["local"], "ignoring 'evil' in tiers of"),
    ('tiers = ["local", "team"]\n', ["local"], "ignoring 'team' in tiers of"),  # a teammate's tier, not yours
    ('tiers = ["local", "local", "sonnet"]\n', ["local", "sonnet"], "ignoring the second 'local' in tiers of"),
    ('tiers = ["nope"]\n', list(DEFAULT_ORDER), "it names none of your tiers; using yours (local, groq"),
])
def test_a_repository_tiers_line_it_may_not_use_is_a_warning_not_an_exit(
        sample_repo: Path, repo_file: str, cascade: list[str], warning: str) -> None:
    (sample_repo / ".tiercode.toml").write_text(repo_file)

    shown = tiercode("config", "--json", "--repo", str(sample_repo))
    answered = tiercode("ask", "--offline", "where is Circle defined?", "--repo", str(sample_repo))

    assert shown.returncode == 0, shown.stderr
    assert {row["key"]: row["value"] for row in json.loads(shown.stdout)}["tiers"] == str(cascade)
    warnings = [line for line in shown.stderr.splitlines() if warning in line]
    assert len(warnings) == 1 and warnings[0].startswith("tiercode: warning: ")
    assert str(sample_repo / ".tiercode.toml") in warnings[0]
    assert answered.returncode == 0 and "pkg/shapes.py:14" in answered.stdout and warning in answered.stderr


def test_a_declared_tier_listed_first_is_where_cheap_questions_start(sample_repo: Path) -> None:
    user_config('tiers = ["local", "team", "sonnet"]\n' + TEAM)
    (sample_repo / ".tiercode.toml").write_text('tiers = ["team", "local"]\n')

    done = tiercode("ask", "--dry-run", "--json", "explain what make_report returns", "--repo", str(sample_repo))

    assert done.returncode == 0, done.stderr
    assert [t["tier"] for t in json.loads(done.stdout)["tiers"]] == ["team", "local"]  # nothing dropped
    assert "warning" not in done.stderr


@pytest.mark.parametrize(("text", "fragment"), [
    ('tiers = ["local", "nope"]\n', "tiers names 'nope', which no [tier.nope] table declares"),
    ('tiers = []\n', "the cascade needs at least one tier"),
    ('[tier.x]\nprovider = "openai-compatible"\nmodel = "m"\nfree = true\n', "tier.x.base_url is required"),
    ('[tier.x]\nprovider = "telepathy"\nmodel = "m"\n', "tier.x.provider must be one of"),
    ('[local]\nserver = "ftp://box"\n', "local.server must be an http:// or https:// URL"),
])
def test_a_bad_tier_configuration_is_one_line_exit_2(tmp_path: Path, text: str, fragment: str) -> None:
    user_config(text)
    with pytest.raises(ConfigError) as error:
        load_settings(tmp_path)
    assert fragment in str(error.value) and str(paths.user_config_file()) in str(error.value)
    done = tiercode("config", "--repo", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and fragment in done.stderr


def test_offline_keeps_the_tiers_on_this_machine_and_refuses_the_others_before_any_socket(tmp_path: Path) -> None:
    user_config('tiers = ["local", "ollama", "lan", "groq"]\n' + OLLAMA + '[tier.lan]\nprovider = "openai-compatible"\n'
                'base_url = "http://10.9.8.7:8000/v1"\nmodel = "m"\nfree = true\n')
    tiers = TierSet(load_settings(tmp_path, offline=True))
    assert tiers.order() == ["local", "ollama"]
    for name in ("lan", "groq"):
        with pytest.raises(ModelUnavailable, match=r"skipped offline .* not on this machine"):
            tiers.get(name)
    assert "lan" not in tiers._backends  # refused before a client (and so a socket) existed


@pytest.mark.parametrize(("order", "start", "expected"), [
    (["local", "groq", "gemini", "sonnet"], "gemini", "gemini"),
    (["local", "groq"], "sonnet", "groq"),  # not configured: the dearest configured below it
    (["local", "ollama", "sonnet"], "groq", "sonnet"),  # the first at its level or above
    (["ollama"], "gemini", "ollama"),
    (["groq", "sonnet"], "local", "groq"),
    (["team", "local", "sonnet"], "local", "team"),  # a declared tier listed first is as cheap as local
    (["team", "down", "keyed"], "groq", "keyed"),  # none at groq's level: the dearest, the rest below it
])
def test_a_start_tier_that_is_not_configured_maps_to_the_nearest_configured_one(
        order: list[str], start: str, expected: str) -> None:
    assert order[start_index(order, start)] == expected


def test_doctor_lists_the_local_servers_that_answer(llama_server: LlamaServer) -> None:
    closed = free_port()
    report = build_report(True, servers=[("llama-server", llama_server.port), ("Ollama", closed)])
    served, down = report["local_servers"]  # type: ignore[misc]
    assert served["answered"] and list(served["models"]) == [llama_server.model_id]
    assert served["base_url"] == llama_server.base_url
    assert not down["answered"] and not down["models"]
    text = format_report(report)
    assert f"llama-server answers        {llama_server.base_url}  models: {llama_server.model_id}" in text
    assert f"Ollama       not answering  http://127.0.0.1:{closed}/v1" in text


def test_the_local_server_probe_asks_loopback_only() -> None:
    from models.local_servers import probe

    with pytest.raises(ValueError, match="loopback"):
        probe([("x", 80)], hosts=("10.0.0.1",))


def test_local_server_serves_the_coder_with_no_model_loaded(tmp_path: Path, sample_repo: Path,
                                                            llama_server: LlamaServer) -> None:
    user_config(f'tiers = ["local"]\nmax_output_tokens = 24\n[local]\nserver = "{llama_server.base_url}"\n'
                'context_tokens = 2048\n')
    session = Session(sample_repo, load_settings(sample_repo, offline=True))
    try:
        answer = Pipeline(session).ask("explain how the report is built", use_cache=False)
        assert answer.tier == "local" and answer.model == llama_server.model_id and answer.answer.strip()
        assert session.tiers.loaded_models() == []  # nothing was loaded in-process
        endpoints = {r.tier: r.endpoint for r in session.ledger.records()}
        assert endpoints["local"] == llama_server.base_url
    finally:
        session.close()


def test_ask_answers_through_a_config_whose_only_tier_is_an_openai_compatible_server(
        sample_repo: Path, llama_server: LlamaServer) -> None:
    user_config(f'tiers = ["served"]\nmax_output_tokens = 24\n[tier.served]\nprovider = "openai-compatible"\n'
                f'base_url = "{llama_server.base_url}"\nmodel = "auto"\nfree = true\ncontext_window = 2048\n'
                'context_tokens = 600\n')
    done = tiercode("ask", "--json", "explain how the report is built", "--repo", str(sample_repo))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["tier"] == "served" and answer["model"] == llama_server.model_id
    assert answer["answer"].strip() and answer["cost_usd"] == 0.0 and answer["confidence"] is not None
    with sqlite3.connect(paths.data_dir() / "ledger.sqlite") as db:
        rows = db.execute("SELECT tier, provider, endpoint, cost_usd FROM calls WHERE outcome = 'ok'").fetchall()
    assert rows == [("served", "openai-compatible", llama_server.base_url, 0.0)]


def test_the_readmes_tier_examples_are_valid_configurations(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in readme.split("```toml\n")[1:]]
    examples = [b for b in blocks if "[tier." in b]
    assert len(examples) == 3
    for example in examples:
        user_config(example)
        settings = load_settings(tmp_path)
        tiers = TierSet(settings)
        declared = [t for t in settings.tiers if t not in DEFAULT_ORDER]
        assert declared and all(tiers.spec(t).provider == "openai-compatible" for t in declared)
