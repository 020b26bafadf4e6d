"""Shell completion as the README tells users to set it up (click's `_TIERCODE_COMPLETE`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"
TIERCODE = [sys.executable, "-c", "from assistant.cli.main import main; main()"]


def run(**env: str) -> str:
    return subprocess.run(TIERCODE, capture_output=True, text=True, timeout=60, env=dict(os.environ, **env)).stdout


def test_the_readme_sets_up_bash_zsh_and_fish_and_each_script_is_real() -> None:
    shells = re.findall(r"_TIERCODE_COMPLETE=(\w+)_source tiercode", README.read_text(encoding="utf-8"))
    assert sorted(shells) == ["bash", "fish", "zsh"]
    for shell in shells:
        assert "_tiercode_completion" in run(_TIERCODE_COMPLETE=f"{shell}_source")


def test_bash_completes_a_command_name() -> None:
    out = run(_TIERCODE_COMPLETE="bash_complete", COMP_WORDS="tiercode ind", COMP_CWORD="1")
    assert out.splitlines() == ["plain,index"]
