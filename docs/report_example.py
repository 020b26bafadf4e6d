"""Write the Claude Code transcripts the README's `tiercode report` example reads: three sessions over three
days, each prompt followed by an agent's loop of tool calls (streamed messages written more than once, as Claude
Code writes them).

    python docs/report_example.py /tmp/claude-projects
    tiercode report --from claude-code:/tmp/claude-projects
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SESSIONS = [
    ("2026-11-30", "claude-sonnet-4-5-20250929", ["where is Pipeline defined?", "who calls build_index?",
                                                  "explain how the cascade escalates to the next tier"]),
    ("2026-12-01", "claude-opus-4-5-20251101", ["add a --since option to tiercode report and test it",
                                                "fix the failing test in tests/assistant/test_ledger.py"]),
    ("2026-12-02", "claude-sonnet-4-5-20250929", ["design a plugin system so third parties can add tiers",
                                                  "what does BudgetGuard.check return?", "grep for TODO"]),
]


def _usage(turn: int, prefix: int) -> dict[str, object]:
    written = 2_400 + 900 * turn if turn else prefix
    return {"input_tokens": 6 + turn, "output_tokens": 180 + 140 * turn, "cache_creation_input_tokens": written,
            "cache_read_input_tokens": 0 if turn == 0 else prefix + 1_500 * turn,
            "cache_creation": {"ephemeral_5m_input_tokens": written, "ephemeral_1h_input_tokens": 0}}


def session_lines(number: int, day: str, model: str, prompts: list[str]) -> list[dict[str, object]]:
    """One session: each prompt, then four assistant turns with tool results between them."""
    lines: list[dict[str, object]] = []
    base = {"sessionId": f"session-{number}", "cwd": "/home/dev/tiercode", "version": "2.0.14"}
    for p, prompt in enumerate(prompts):
        clock = f"{day}T{10 + p:02d}:00"
        lines.append({**base, "type": "user", "uuid": f"u{number}-{p}", "timestamp": f"{clock}:00.000Z",
                      "message": {"role": "user", "content": prompt}})
        for turn in range(4):
            ids = {"requestId": f"req_{number}{p}{turn}", "timestamp": f"{clock}:{10 + 10 * turn:02d}.000Z"}
            message = {"id": f"msg_{number}{p}{turn}", "role": "assistant", "model": model,
                       "content": [{"type": "text", "text": "…"}], "usage": _usage(turn, 18_000)}
            partial = {**message, "usage": {**message["usage"], "output_tokens": 1}}
            lines.append({**base, **ids, "type": "assistant", "message": partial})
            lines.append({**base, **ids, "type": "assistant", "message": message})
            lines.append({**base, "type": "user", "timestamp": ids["timestamp"],
                          "message": {"role": "user", "content": [{"type": "tool_result", "content": "…"}]}})
    return lines


def main(root: Path) -> None:
    for number, (day, model, prompts) in enumerate(SESSIONS, start=1):
        path = root / "-home-dev-tiercode" / f"session-{number}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(line) + "\n" for line in session_lines(number, day, model, prompts)))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
