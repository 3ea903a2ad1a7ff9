"""The fact-check report: one self-contained HTML file per photo (wsloc localize --report)."""

from __future__ import annotations

import hashlib
import json
import re

import cv2
import numpy as np
import pytest

from wsloc_runtime.cli import main
from wsloc_runtime.pipeline import Localizer
from wsloc_runtime.report import render_report, report_panels


def save_rgb(path, rgb):
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def result(contract_models):
    from tests.conftest import make_splice

    return Localizer(models_dir=contract_models).localize(make_splice()[0])


def with_evidence(result):
    """The result with two evidence readings, as the evidence fusion gives them (one unregistered)."""
    from wsloc_runtime.evidence import EvidenceMap

    height, width = result.working_size
    ramp = np.tile(np.linspace(0, 1, width, dtype=np.float32), (height, 1))
    result.evidence = {"ela": EvidenceMap("ela", ramp, 0.8, "error levels differ inside the marked area", 0.4),
                       "made_up": EvidenceMap("made_up", 1 - ramp, 0.0, "this trace cannot speak here", 0.0)}
    return result


def test_report_is_one_offline_printable_file_with_every_panel(result):
    result = with_evidence(result)
    document = render_report(result, "photo.png", "ab" * 32, {"notes": ["No embedded thumbnail."]})
    assert document.startswith("<!DOCTYPE html>") and "@media print" in document
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", document)  # nothing fetched: reads offline
    titles = [panel.title for panel in report_panels(result)]
    for title in titles:
        assert f'data-panel="{title}"' in document
    images = re.findall(r'src="data:image/(png|jpeg);base64,', document)
    assert len(images) == len(titles) >= 12  # photo, heatmap, masks, 2 evidences, SEL, 3 detectors, ...
    from wsloc_runtime.evidence import create_evidence

    assert f"Evidence: {create_evidence('ela').title}" in titles and "Evidence: made_up" in titles
    assert "error levels differ inside the marked area" in document
    assert "ab" * 32 in document and "No embedded thumbnail." in document
    assert result.verdict in document and "What it shows" in document and "How to read it" in document
    for model in result.models.values():
        assert model in document


def test_report_without_evidence_still_renders(result):
    result.evidence = {}
    assert "Evidence:" not in render_report(result, "photo.png")


def test_localize_report_writes_the_report_beside_the_json(tmp_path, contract_models):
    from tests.conftest import make_splice

    photo = save_rgb(tmp_path / "forged.png", make_splice()[0])
    out = tmp_path / "out"
    assert main(["-q", "localize", str(photo), "--out", str(out), "--models", str(contract_models), "--report"]) == 0
    report = out / "forged_report.html"
    payload = json.loads((out / "forged.json").read_text())
    assert payload["outputs"]["report"] == str(report)
    document = report.read_text(encoding="utf-8")
    assert hashlib.sha256(photo.read_bytes()).hexdigest() in document
    assert "File evidence (information only)" in document
    assert not list(out.glob(".*.part"))
    assert main(["-q", "localize", str(photo), "--out", str(tmp_path / "plain"), "--models", str(contract_models)]) == 0
    assert not list((tmp_path / "plain").glob("*_report.html"))  # only when asked for
