"""Output length, form and thinking effort by the question's kind and difficulty (issue 23, items 2 and 3)."""

from __future__ import annotations

from typing import Any

import pytest

from assistant.config import load_settings
from assistant.errors import ConfigError
from assistant.pipeline import Pipeline
from assistant.route.answer_shape import THINKING_ALLOWANCE, AnswerSettings, answer_shape
from models import pricing
from tests.emulators.fixtures import CloudEmulators
from tests.emulators.server import Reply

GOOD = "`make_report` returns a one-line summary of the circles and their total area (pkg/report.py:6)."


def test_shapes_follow_kind_and_difficulty_within_the_cap() -> None:
    defaults = AnswerSettings()
    lookup = answer_shape("lookup", "simple", defaults, 4096)
    design = answer_shape("design", "complex", defaults, 4096)
    assert lookup.max_tokens < answer_shape("explain", "medium", defaults, 4096).max_tokens < design.max_tokens
    assert (lookup.effort, design.effort) == ("low", "high")
    assert lookup.thinking_tokens == 0
    assert design.thinking_tokens == min(THINKING_ALLOWANCE["high"], 4096 - design.max_tokens) > 0
    assert design.max_tokens + design.thinking_tokens <= 4096
    tight = answer_shape("design", "complex", defaults, 256)  # a low cap bounds the answer and its thinking
    assert tight.max_tokens == 256 and tight.thinking_tokens == 0
    assert "unified diff" in answer_shape("edit", "medium", defaults, 4096).brevity
    configured = AnswerSettings(max_tokens={"explain": 300}, effort={"explain": "high"}, brevity=False)
    shaped = answer_shape("explain", "medium", configured, 4096)
    assert (shaped.max_tokens, shaped.effort, shaped.brevity) == (300, "high", "")


def test_an_effort_that_does_not_exist_is_a_configuration_error(tmp_path: Any) -> None:
    (tmp_path / ".tiercode.toml").write_text('[answers]\neffort = {explain = "extreme"}\n')
    with pytest.raises(ConfigError, match="answers"):
        load_settings(tmp_path)


def test_sonnet_is_sent_the_kinds_length_form_and_effort(open_session: Any, cloud_emulators: CloudEmulators) -> None:
    cloud_emulators.anthropic.script(Reply(GOOD), Reply(GOOD))
    pipeline = Pipeline(open_session(tiers=["sonnet"], max_output_tokens=4096))
    pipeline.ask("explain what make_report returns", tier="sonnet")
    pipeline.ask("design a plugin architecture for the shapes package so third parties can add new shapes across"
                 " the whole system", tier="sonnet")

    explain, design = cloud_emulators.anthropic.bodies()
    assert explain["output_config"] == {"effort": "low"}
    assert design["output_config"] == {"effort": "high"}
    assert explain["max_tokens"] < design["max_tokens"] <= 4096
    assert explain["messages"][-1]["content"][0]["text"].endswith("no preamble, no summary at the end.")
    assert explain["system"] == design["system"]  # the form line never touches the cached prefix


def test_the_estimate_counts_the_thinking_room(open_session: Any, cloud_emulators: CloudEmulators) -> None:
    pipeline = Pipeline(open_session(tiers=["sonnet"], max_output_tokens=4096))
    question = "design a plugin architecture for the shapes package so third parties can add new shapes"
    plan = pipeline.plan(question)
    (sonnet,) = plan.tiers
    shape = pipeline.shape_for(plan.route)
    assert shape.thinking_tokens > 0
    rates = pricing.price(sonnet.model).rates
    assert sonnet.estimated_cost_usd >= (shape.max_tokens + shape.thinking_tokens) * rates.output / 1e6
