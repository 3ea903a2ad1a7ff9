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
    assert "Error levels differ inside the marked area." in document
    assert "ab" * 32 in document and "No embedded thumbnail." in document
    assert result.verdict in document and "What it shows" in document and "How to read it" in document
    for model in result.models.values():
        assert model in document


#: Reference colours for the words the legends use.
NAMED_COLOURS = {"pale yellow": (252, 255, 164), "yellow": (255, 255, 0), "orange": (249, 140, 10),
                 "red": (190, 40, 40), "dark red": (128, 0, 0), "purple": (87, 16, 110), "black": (0, 0, 0),
                 "cyan": (0, 255, 255), "dark blue": (0, 0, 128), "blue": (0, 0, 255), "green": (0, 200, 0)}


def _palette(colormap):
    from wsloc_runtime.viz import heatmap

    return heatmap(np.linspace(0, 1, 256, dtype=np.float32)[None, :], colormap)[0].astype(int)


def _nearest_name(rgb) -> str:
    return min(NAMED_COLOURS, key=lambda name: sum((a - b) ** 2 for a, b in zip(NAMED_COLOURS[name], rgb)))


def test_each_legend_names_the_colours_of_its_colour_map():
    """The report once said "red and yellow strong, blue weak" of maps drawn with inferno (no blue)."""
    from wsloc_runtime.viz import COLORMAP_LEGENDS, HEATMAP_COLORMAP, legend

    assert HEATMAP_COLORMAP in COLORMAP_LEGENDS
    for colormap, (strong, middle, weak) in COLORMAP_LEGENDS.items():
        palette = _palette(colormap)
        assert _nearest_name(palette[-1]) == strong and _nearest_name(palette[0]) == weak.split(" to ")[-1]
        for name in [strong, *middle.split(" and "), *weak.split(" to ")]:  # each named colour is on the map
            distance = np.sqrt(((palette - np.array(NAMED_COLOURS[name])) ** 2).sum(axis=1)).min()
            assert distance < 60, (colormap, name, distance)
        assert legend(colormap).startswith(f"{strong} strongest")
    assert "blue" not in legend(cv2.COLORMAP_INFERNO)
    assert np.sqrt(((_palette(cv2.COLORMAP_INFERNO) - np.array(NAMED_COLOURS["blue"])) ** 2).sum(axis=1)).min() > 100


def test_every_map_panel_is_drawn_with_the_colour_map_its_legend_names(result):
    from wsloc_runtime.report import panel_legend
    from wsloc_runtime.viz import legend

    result = with_evidence(result)
    panels = report_panels(result)
    maps = [panel for panel in panels if panel.colormap is not None]
    assert {"Heatmap over the photo", "Where the detectors agree"} <= {panel.title for panel in maps}
    assert sum(panel.kind == "evidence" for panel in maps) == len(result.evidence)
    for panel in maps:
        assert panel_legend(panel) == f"Colours: {legend(panel.colormap)}."
        if not panel.photo_like:  # a map alone: every pixel is a colour of the map that drew it
            palette = {tuple(colour) for colour in _palette(panel.colormap)}
            assert {tuple(pixel) for pixel in panel.image.reshape(-1, 3)} <= palette, panel.title
    document = render_report(result, "photo.png")
    assert document.count(f"Colours: {legend(maps[0].colormap)}.") == len(maps)
    assert "blue" not in document


def _text(document: str, blocks: bool = False) -> str:
    """The report's words as a reader sees them; ``blocks`` puts a "|" where a paragraph, item or
    cell ends, so that no sentence seems to run on into the next block."""
    import html as html_module

    body = re.sub(r"<style>.*?</style>|<title>.*?</title>", " ", document, flags=re.S)
    if blocks:
        body = re.sub(r"</(p|li|td|th|h[1-6]|figcaption)>", " | ", body)
    return html_module.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))


def test_report_sentences_start_with_a_capital_and_rows_read_as_words(result):
    """Reasons and notes come lower-case; a row once read "Combination of evidence: evidence"."""
    import copy

    result = with_evidence(copy.copy(result))
    result.notes = ["the file holds 2 frames (animated or multi-page); only the first was analysed"]
    result.fusion = "evidence"
    document = render_report(result, "photo.png", "ab" * 32, {"notes": ["no embedded thumbnail"]})
    text = _text(document, blocks=True)
    lower_after_stop = [m.group(0) for m in re.finditer(r"(?<!e\.g)(?<!i\.e)\. [a-z]\w*", text)]
    assert lower_after_stop == [], lower_after_stop
    assert "No embedded thumbnail." in text and "The file holds 2 frames" in text
    assert "What the map rests on | All the traces, each weighted by how readable it is on this photo." in text
    assert "Combination of evidence" not in text


def test_the_score_row_never_says_uncertain_beside_a_confident_verdict(result):
    import copy

    from wsloc_runtime.pipeline import VERDICT_FLAGS

    confident = copy.copy(result)
    confident.verdict_band = (0.27, 0.83)
    confident.probability = 0.888
    confident.is_manipulated = VERDICT_FLAGS[confident.verdict]
    assert confident.verdict == "likely manipulated"
    text = _text(render_report(confident, "photo.png"))
    assert "Score P(manipulated) = 0.888, at or above 0.83; verdict: likely manipulated" in text
    assert "uncertain between" not in text


def test_a_photo_judged_authentic_gets_no_mask_that_says_edited(result, tmp_path):
    """authentic_lighthouse, judged likely authentic, once got a mask PNG 47% white and mask_fraction 0.468."""
    import copy

    from wsloc_runtime.outputs import write_result_files
    from wsloc_runtime.report import report_panels as panels_of

    authentic = copy.copy(result)
    authentic.posterior_mask = np.zeros(result.working_size, bool)
    authentic.posterior_mask[: result.working_size[0] // 2] = True  # the method's mask: half the photo
    authentic.is_manipulated = False
    # half the rows: exactly (h // 2) / h (a count over a count, one float64 division)
    half = (result.working_size[0] // 2) / result.working_size[0]
    assert not authentic.mask.any() and not authentic.reported_mask.any()  # the mask to show, and its old name
    assert authentic.posterior_mask.mean() == pytest.approx(half, rel=np.finfo(float).eps)
    assert authentic.summary()["mask_fraction"] == 0.0
    photo = save_rgb(tmp_path / "photo.png", authentic.image)
    payload = write_result_files(authentic, tmp_path / "out", "photo", str(photo), report=True)
    assert payload["mask_fraction"] == 0.0
    assert not cv2.imread(payload["outputs"]["mask"], cv2.IMREAD_GRAYSCALE).any()
    by_title = {panel.title: panel for panel in panels_of(authentic)}
    assert not by_title["Mask"].image.any() and by_title["Mask"].shows.startswith("Empty")
    text = _text((tmp_path / "out" / "photo_report.html").read_text(encoding="utf-8"))
    assert "Marked area none: the photo was judged likely authentic" in text
    for flag in (True, None):  # a verdict that claims an edit, or none: the method's mask as it is
        other = copy.copy(authentic)
        other.is_manipulated = flag
        assert np.array_equal(other.mask, authentic.posterior_mask)
        # summary() rounds mask_fraction to 6 decimals: within 0.5e-6 (plus float64 rounding) of the mean
        rounding = 0.5e-6 + 4 * np.finfo(float).eps
        assert other.summary()["mask_fraction"] == pytest.approx(float(authentic.posterior_mask.mean()), abs=rounding)


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


#: The report of a 12 MP photo must stay attachable (issue 34: it was 6 MB).
MAX_REPORT_BYTES_12MP = 1_500_000


def test_a_12_mp_photos_report_is_small_prints_and_links_its_full_size_files(tmp_path, contract_models):
    from bench.common import synth_photo_jpeg
    from wsloc_runtime.outputs import localize_to_files

    photo = synth_photo_jpeg(tmp_path / "big.jpg", 4000, 3000)
    row = localize_to_files(Localizer(models_dir=contract_models), str(photo), tmp_path / "out", "big", report=True)
    assert row["error"] is None
    report = tmp_path / "out" / "big_report.html"
    assert report.stat().st_size <= MAX_REPORT_BYTES_12MP, report.stat().st_size
    document = report.read_text(encoding="utf-8")
    assert "@media print" in document and "print-color-adjust: exact" in document
    pictures = re.findall(r'src="data:image/(png|jpeg);base64,([^"]+)"', document)
    assert pictures and sum(kind == "png" for kind, _ in pictures) == 1  # the mask alone stays PNG
    import base64

    for kind, data in pictures:  # at screen size, not the photo's
        decoded = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_UNCHANGED)
        assert max(decoded.shape[:2]) <= 720, decoded.shape
    links = re.findall(r'<a href="([^"]+)">Full-size picture', document)
    assert links == ["big_heatmap.png", "big_mask.png"]
    assert all((tmp_path / "out" / link).is_file() for link in links)
    assert 'href="big_legend.png"' in document and (tmp_path / "out" / "big_legend.png").is_file()
    assert document.count('class="colour-bar"') == document.count('class="legend"') > 0  # one per map


def test_the_report_states_a_precision_only_from_the_verdict_rules_table(result):
    import copy

    from wsloc_runtime.pipeline import VERDICT_FLAGS

    confident = copy.copy(result)
    confident.verdict_band, confident.probability = (0.27, 0.83), 0.888
    confident.is_manipulated = VERDICT_FLAGS[confident.verdict]
    silent = _text(render_report(confident, "photo.png"))  # the table is empty: no percentage at all
    assert "90%" not in silent and "at least" not in silent and not re.search(r"\d+ ?%.*of the time", silent)
    assert "right" not in silent.split("How to read this report")[1].split("Uncertain")[0]
    stated = {"likely manipulated": (86, 96, "casia1-dev"), "likely authentic": (40, 50, None)}
    text = _text(render_report(confident, "photo.png", stated_precision=stated))
    assert text.count('When these models said "likely manipulated", they were right 86 of 96 times (90 %)') == 2
    assert 'When these models said "likely authentic", they were right 40 of 50 times (80 %)' in text
