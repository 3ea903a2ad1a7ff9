"""README.md's sample output is a real run: the block between ``<!-- sample-output:start -->`` and
``<!-- sample-output:end -->`` must be, line for line, what ``python -m wsloc_runtime localize
assets/examples --out out/`` prints on stdout today. When the wording, the models or the fusion
change, this test fails until the block is pasted again from a fresh run (command in the failure).

The command runs in a temporary folder holding one symlink, ``assets`` -> the repository's
``assets/``, so that the printed paths (``assets/examples/...``, ``out/...``) are the README's
literally, and the outputs land in the temporary folder, never in the checkout."""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
COMMAND = ["localize", "assets/examples", "--out", "out/"]
PASTE = "python -m wsloc_runtime localize assets/examples --out out/ 2>/dev/null"
#: Settings a developer's shell may hold that would make the run differ from a newcomer's.
CLEARED = ("WSLOC_MODELS", "WSLOC_HF_REPO", "WSLOC_HF_REVISION", "WSLOC_PROVIDERS")


def readme_sample() -> list[str]:
    """The lines of the fenced block between the sample-output markers."""
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- sample-output:start -->\s*\n```[^\n]*\n(.*?)\n```\s*\n<!-- sample-output:end -->",
                      text, re.DOTALL)
    assert found, "README.md has no fenced block between <!-- sample-output:start --> and <!-- sample-output:end -->"
    return found.group(1).split("\n")


def test_readme_has_a_sample_block():
    lines = readme_sample()
    assert lines and all(line.strip() for line in lines), "the README's sample block is empty or has blank lines"
    assert re.match(r"\d+ of \d+ images analysed", lines[-1]), f"the block should end with the summary line: {lines[-1]!r}"


def test_readme_sample_output_is_what_localize_prints(tmp_path):
    expected = readme_sample()
    (tmp_path / "assets").symlink_to(REPO_ROOT / "assets", target_is_directory=True)
    env = {key: value for key, value in os.environ.items() if key not in CLEARED}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    run = subprocess.run([sys.executable, "-m", "wsloc_runtime", *COMMAND], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=900)
    if run.returncode != 0 and not run.stdout:
        pytest.fail(f"the README's command exited {run.returncode}:\n{run.stderr[-3000:]}")
    printed = run.stdout.rstrip("\n").split("\n")
    diff = "\n".join(difflib.unified_diff(expected, printed, "README.md", "localize today", lineterm=""))
    assert printed == expected, (
        f"README.md's sample output has drifted from what the command prints; run, in the repository root,\n"
        f"    {PASTE}\nand paste its stdout between the sample-output markers.\n{diff}")
    assert run.returncode == 0, run.stderr[-3000:]
    assert any((tmp_path / "out").glob("*.json")), "the outputs should be in the temporary folder"
