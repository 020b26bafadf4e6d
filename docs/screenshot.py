"""Render an SVG screenshot of Tiercode's main screen into docs/tiercode.svg.

Runs the real app headless on a copy of the sample repository, with temporary XDG folders, asks
questions the index answers (no model needed), and saves the screen:

    python docs/screenshot.py [--out docs/tiercode.svg] [--model PATH.gguf]

With `--model`, a local GGUF answers one free-form question too (slower; the answer varies).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = (110, 30)


async def render(out: Path, model: Path | None) -> None:
    """Drive the app and save the screenshot."""
    from assistant.config import load_settings
    from assistant.tui.app import TiercodeApp
    from assistant.tui.widgets import PromptInput, Turn

    with tempfile.TemporaryDirectory(prefix="tiercode-shot-") as temp:
        base = Path(temp)
        for name in ("CONFIG", "DATA", "CACHE"):
            os.environ[f"XDG_{name}_HOME"] = str(base / name.lower())
        if model is not None:
            target = base / "data" / "tiercode" / "models" / "smollm2" / model.name
            target.parent.mkdir(parents=True)
            target.symlink_to(model.resolve())
        repo = base / "shapes"
        shutil.copytree(ROOT / "tests" / "fixtures" / "sample_py", repo)
        settings = load_settings(repo, offline=True, max_output_tokens=64,
                                 budget={"daily": 2.0, "action": "pause"})
        app = TiercodeApp(repo, settings)
        app.sub_title = "~/src/shapes"  # not the temporary folder's random name
        questions = ["where is Circle defined?", "who calls total_area?"]
        if model is not None:
            questions.append("explain what make_report returns")
        async with app.run_test(size=SIZE) as pilot:
            while not app.index_ready.is_set():
                await pilot.pause(0.05)
            for question in questions:
                app.query_one(PromptInput).value = question
                await pilot.press("enter")
                deadline = time.monotonic() + 300
                while not (app.query(Turn) and list(app.query(Turn))[-1].has_class("done")):
                    if time.monotonic() > deadline:
                        raise SystemExit(f"no answer to {question!r}")
                    await pilot.pause(0.1)
            await pilot.press("/", "h", "e")  # the slash-command completion shows as ghost text
            await pilot.pause(0.3)
            out.write_text(app.export_screenshot(title="tiercode"), encoding="utf-8")
        app.shutdown_workers()
        app.session.close()


def main() -> None:
    """Parse arguments and render."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "tiercode.svg")
    parser.add_argument("--model", type=Path, help="a local GGUF to answer a free-form question")
    args = parser.parse_args()
    asyncio.run(render(args.out, args.model))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
