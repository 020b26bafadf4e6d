"""Claude Code's local session transcripts (`~/.claude/projects/<project>/<session>.jsonl`, subagents' files
below them) as report records and user prompts.

Each line is one JSON object. An assistant line carries `message.usage` (input, output, cache creation split
into 5-minute and 1-hour writes, cache reads) and `message.model`; Claude Code writes a streamed message
several times under the same `message.id` and `requestId`, the output count growing, so each pair counts once,
with its largest output (the finished message) and the day it was first written. A user line whose content is
text is a prompt; tool results, meta lines and subagents' instructions are not."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import UsageError
from assistant.report.usage import Imported, Prompt, Tokens, local_day, priced_record

SOURCE = "claude-code"
SYNTHETIC_MODEL = "<synthetic>"
"""The model Claude Code names on messages it wrote itself (an API error, an interruption): no call."""
_NOT_PROMPTS = ("<command-", "<local-command-", "<system-reminder>", "[Request interrupted")
"""How the user lines that Claude Code writes itself start (slash commands' echo, notices)."""


def default_folder() -> Path:
    """Where Claude Code keeps its transcripts: `$CLAUDE_CONFIG_DIR/projects`, else `~/.claude/projects`."""
    config = os.environ.get("CLAUDE_CONFIG_DIR", "").strip()
    return (Path(config).expanduser() if config else Path.home() / ".claude") / "projects"


class MalformedLine(ValueError):
    """A line that is not what a transcript line should be."""


@dataclass
class _Call:
    """One assistant message's usage while the files are read (its largest output snapshot)."""

    ts: float
    model: str
    tokens: Tokens
    session: str
    project: str
    prompt_id: str


def read_claude_code(folder: Path, since: float | None = None) -> Imported:
    """Every transcript under `folder` (its `*.jsonl` files at any depth), since a Unix time."""
    if not folder.is_dir():
        raise UsageError(f"no Claude Code transcripts folder at {folder}; pass --from claude-code:DIR with the "
                         "folder that holds them (default ~/.claude/projects)")
    imported = Imported(f"{SOURCE}:{folder}")
    calls: dict[tuple[str, str] | int, _Call] = {}
    for path in sorted(folder.rglob("*.jsonl")):
        imported.files += 1
        try:
            _read_file(path, folder, imported, calls, since)
        except OSError as exc:
            imported.skip(str(path.relative_to(folder)), f"unreadable ({exc.strerror or exc})")
    for call in calls.values():
        if since is not None and call.ts < since:
            continue
        imported.records.append(priced_record(SOURCE, call.ts, local_day(call.ts), call.model, call.tokens,
                                              session=call.session, project=call.project,
                                              prompt_id=call.prompt_id))
    imported.records.sort(key=lambda r: r.ts)
    return imported


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8", errors="replace") as lines:
        yield from enumerate(lines, start=1)


def _read_file(path: Path, root: Path, imported: Imported, calls: dict[tuple[str, str] | int, _Call],
               since: float | None) -> None:
    """Read one transcript: its prompts, and its calls into `calls` (one per message id and request id)."""
    prompt_id = ""
    for number, text in _lines(path):
        if not text.strip():
            continue
        imported.lines += 1
        where = f"{path.relative_to(root)}:{number}"
        try:
            line = _object(text)
            kind = line.get("type")
            if kind == "user":
                prompt = _prompt(line, where)
                if prompt is not None:
                    prompt_id = prompt.id
                    if since is None or prompt.ts >= since:
                        imported.prompts.append(prompt)
            elif kind == "assistant":
                _add_call(line, calls, imported, prompt_id, len(calls))
        except MalformedLine as exc:
            imported.skip(where, str(exc))


def _object(text: str) -> dict[str, Any]:
    try:
        line = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedLine(f"not JSON ({exc.msg})") from None
    if not isinstance(line, dict):
        raise MalformedLine("not a JSON object")
    return line


def _timestamp(line: dict[str, Any]) -> float:
    value = line.get("timestamp")
    try:
        when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise MalformedLine(f"timestamp {value!r} is not an ISO 8601 time") from None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


def _prompt(line: dict[str, Any], where: str) -> Prompt | None:
    """The user's prompt a user line holds; None for tool results, meta lines and subagents' instructions."""
    message = line.get("message")
    if not isinstance(message, dict):
        raise MalformedLine("a user line without a message object")
    if line.get("isMeta") or line.get("isSidechain"):
        return None
    content = message.get("content")
    if isinstance(content, list):
        content = "\n".join(block.get("text", "") for block in content
                            if isinstance(block, dict) and block.get("type") == "text")
    if not isinstance(content, str) or not content.strip() or content.lstrip().startswith(_NOT_PROMPTS):
        return None
    return Prompt(str(line.get("uuid") or where), _timestamp(line), content.strip(), str(line.get("sessionId", "")))


def _count(usage: dict[str, Any], key: str) -> int:
    value = usage.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedLine(f"usage.{key} is {value!r}, not a token count")
    return value


def _tokens(usage: dict[str, Any]) -> Tokens:
    """The usage's tokens; cache writes split by lifetime where the line says (older lines do not: 5-minute)."""
    written = _count(usage, "cache_creation_input_tokens")
    split = usage.get("cache_creation")
    hour = _count(split, "ephemeral_1h_input_tokens") if isinstance(split, dict) else 0
    return Tokens(_count(usage, "input_tokens"), _count(usage, "output_tokens"),
                  _count(usage, "cache_read_input_tokens"), max(written - hour, 0), hour)


def _add_call(line: dict[str, Any], calls: dict[tuple[str, str] | int, _Call], imported: Imported, prompt_id: str,
              serial: int) -> None:
    """Count an assistant line's usage once per (message id, request id): a repeat keeps the larger output."""
    message = line.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("usage"), dict):
        raise MalformedLine("an assistant line without message.usage")
    model = str(message.get("model") or "")
    if model == SYNTHETIC_MODEL:
        return
    if not model:
        raise MalformedLine("an assistant line without message.model")
    tokens, ts = _tokens(message["usage"]), _timestamp(line)
    ids = (message.get("id"), line.get("requestId"))
    key: tuple[str, str] | int = (str(ids[0]), str(ids[1])) if all(ids) else -serial - 1
    seen = calls.get(key)
    if seen is not None:
        imported.duplicates += 1
        if tokens.output >= seen.tokens.output:
            calls[key] = _Call(seen.ts, model, tokens, seen.session, seen.project, seen.prompt_id)
        return
    calls[key] = _Call(ts, model, tokens, str(line.get("sessionId", "")), str(line.get("cwd", "")), prompt_id)
