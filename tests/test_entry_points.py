"""Every ``python -m`` entry point of export/, training/ and studies/ answers ``--help`` (issue 27), and
cheaply: neither TensorFlow nor torch is imported for it (they load inside the functions that need them),
except by a module that is a torch program itself (``FRAMEWORK_MODULES``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

ENTRY_POINTS = [
    "export.convert", "export.fp16", "export.segmenters", "export.efficientnet_lite",
    "training.train", "training.synth", "training.casia_set", "training.weak_set", "training.pack_sources",
    "studies.evaluate_run", "studies.verdict_band", "studies.robustness", "studies.fusion_study",
    "studies.fusion_ceiling", "studies.stem_report", "studies.results_table", "export.fingerprint_export",
    "training.fingerprint", "studies.compare_evaluations", "studies.fingerprint_checkpoint",
    "studies.numeric_stability", "studies.resave_chains",
]
#: Entry points whose module is a framework's own code and imports it at the top (a torch trainer).
FRAMEWORK_MODULES = {"training.fingerprint": ["torch"]}

#: Runs the module as ``python -m NAME --help`` would, then reports which heavy frameworks it loaded.
RUNNER = """
import json, runpy, sys
name = sys.argv[1]
sys.argv = [name, "--help"]
try:
    runpy.run_module(name, run_name="__main__", alter_sys=True)
    code = 0
except SystemExit as stop:
    code = stop.code or 0
heavy = sorted(m for m in ("tensorflow", "torch", "keras", "jax") if m in sys.modules)
sys.stderr.write("\\nENTRY " + json.dumps({"code": code, "heavy": heavy}) + "\\n")
"""


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_help_runs_without_a_framework(module):
    done = subprocess.run([sys.executable, "-c", RUNNER, module], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stderr.rsplit("ENTRY ", 1)[1])
    assert result["code"] == 0, done.stderr
    assert done.stdout.startswith("usage:"), done.stdout
    assert result["heavy"] == FRAMEWORK_MODULES.get(module, []), f"{module} --help imported {result['heavy']}"
    assert "tensorflow" not in result["heavy"]  # never TensorFlow: slow, and it segfaults beside torch here


def test_every_main_is_listed():
    """A new ``main()`` in these folders gets a ``--help`` test here."""
    found = {".".join(path.relative_to(REPO).with_suffix("").parts)
             for folder in ("export", "training", "studies") for path in (REPO / folder).glob("*.py")
             if "\nif __name__ == \"__main__\":" in path.read_text(encoding="utf-8")}
    assert found <= set(ENTRY_POINTS), sorted(found - set(ENTRY_POINTS))
