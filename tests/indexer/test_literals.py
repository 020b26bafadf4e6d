"""Quoted text as evidence: an error message a report shows is searched as a literal in the indexed code."""

from __future__ import annotations

from pathlib import Path

from indexer.clues import read_question
from indexer.literals import find_literals, phrases
from indexer.localize import localize
from indexer.store import IndexStore

FILES = {
    "pkg/config.py": '''"""Settings files."""


def load(path):
    data = dict(path)
    if "version" not in data:
        raise KeyError("settings file lacks a schema marker")
    return data


def schema_marker(settings_file):
    """The schema marker of a settings file: which schema the settings file follows."""
    return settings_file.get("marker")
''',
    "pkg/settings.py": '''"""The settings of a settings file: the schema, the marker and the file."""


def settings_file_schema(marker):
    """The schema a settings file marker names."""
    return {"marker": marker}


def marker_is_missing(settings_file):
    """Whether the schema marker is missing from a settings file (old ones have none)."""
    return "marker" not in settings_file


def load_settings_file(settings_file):
    """Load my settings from a settings file with its schema marker."""
    return dict(settings_file)
''',
    "tests/test_config.py": '''import pytest

from pkg.config import load


def test_load_without_a_marker():
    with pytest.raises(KeyError, match="settings file lacks a schema marker"):
        load({})
''',
}
REPORT = ("Loading my settings fails\n\nWith an old settings file the schema marker is missing and I get\n"
          "KeyError: 'settings file lacks a schema marker'\n")


def test_error_messages_are_read_innermost_first_then_quoted_strings_of_three_words() -> None:
    text = ('I call parse("a b") and render(\'one two three\'):\n'
            "Traceback (most recent call last):\n  ...\n"
            "E   pkg.errors.MarkupError: closing tag '[/italic]' does not match\n"
            "During handling of the above exception, another exception occurred:\nValueError: bad markup\n")

    assert read_question(text).literals == ("bad markup", "closing tag '[/italic]' does not match", "one two three")


def test_a_phrase_of_stop_words_only_is_never_searched() -> None:
    assert phrases("is not a") == []
    assert phrases("Invalid vmin or vmax") == [("invalid", "vmin", "or"), ("vmin", "or", "vmax")]


def test_the_message_finds_the_file_and_the_function_that_raises_it(indexed: IndexStore, repo: Path) -> None:
    found = find_literals(indexed, read_question(REPORT).literals, repo)

    assert found.files[0] == "pkg/config.py"
    assert [s.qualified_name for s in found.definitions][:1] == ["load"]


def test_the_function_that_raises_the_message_ranks_first_over_one_whose_words_match(
    indexed: IndexStore, repo: Path
) -> None:
    found = localize(indexed, REPORT, root=repo)

    assert found.files[0].path == "pkg/config.py"
    assert "literals" in found.files[0].reasons
    assert (found.definitions[0][0].path, found.definitions[0][0].qualified_name) == ("pkg/config.py", "load")
