"""The Gradio app (app.py), end to end: a real server on localhost called with gradio_client.

The server runs in a subprocess on a free port, with the tiny contract-honouring
WCBnet models of tests/contract_models.py (built into a temp dir, pointed at by
$WSLOC_MODELS), so these tests need neither the trained models nor a network.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"
#: A pixel limit low enough to test refusal cheaply, high enough for test_large_photo.
TEST_MAX_MEGAPIXELS = 20
TEST_MAX_UPLOAD_MB = 8
STARTUP_TIMEOUT_S = 180


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_serving(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"app.py did not serve {url} within {STARTUP_TIMEOUT_S}s:\n{log_path.read_text()[-4000:]}")


def serve_app(work: Path, models: Path | None):
    """Run ``python app.py`` on ``models`` (``None``: the bundled models, as a user gets them) and
    yield its URL; stopped when the generator closes."""
    port = _free_port()
    env = dict(os.environ)
    env.pop("WSLOC_HF_REPO", None)
    env.pop("WSLOC_MODELS", None)
    env.update(
        HF_HUB_OFFLINE="1",
        GRADIO_TEMP_DIR=str(work / "gradio"),
        TMPDIR=str(work),  # the app's downloads land here too, and go with the test's temp dir
        WSLOC_APP_MAX_MEGAPIXELS=str(TEST_MAX_MEGAPIXELS),
        WSLOC_APP_MAX_UPLOAD_MB=str(TEST_MAX_UPLOAD_MB),
        PYTHONUNBUFFERED="1",
    )
    if models is not None:
        env["WSLOC_MODELS"] = str(models)
    log_path = work / "app.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_serving(url, process, log_path)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """URL of a running ``python app.py`` that uses the contract models; stopped after the module."""
    from tests.contract_models import build_contract_model_set

    work = tmp_path_factory.mktemp("app")
    yield from serve_app(work, build_contract_model_set(work / "models"))


@pytest.fixture(scope="module")
def client(app_server):
    from gradio_client import Client

    return Client(app_server, verbose=False)


def _localize(client, path, segmenter="graph"):
    from gradio_client import handle_file

    return client.predict(image=handle_file(str(path)), segmenter=segmenter, api_name="/localize")


def _read(path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, f"{path} is not a readable image"
    return image


def test_api_lists_the_localize_endpoint(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert "/localize" in endpoints
    parameters = {p["parameter_name"]: p for p in endpoints["/localize"]["parameters"]}
    assert set(parameters) == {"image", "segmenter", "fusion"}
    assert parameters["segmenter"]["parameter_default"] == "graph"
    assert parameters["fusion"]["parameter_default"] == "evidence"  # the paper's method is one word away
    # Outputs named for what they are, not value_23, value_24, value_25.
    assert [r["label"] for r in endpoints["/localize"]["returns"]] == ["summary", "heatmap_png", "mask_png"]


def test_the_api_runs_the_papers_method_on_request(client):
    from gradio_client import handle_file

    summary, _, _ = client.predict(image=handle_file(str(EXAMPLES / "spliced_boat.jpg")), segmenter="graph",
                                   fusion="paper", api_name="/localize")
    assert summary["fusion"] == "paper" and summary["evidence"] == {}
    assert summary["probability"] == summary["model_probability"]
    fused, _, _ = _localize(client, EXAMPLES / "spliced_boat.jpg")
    assert fused["fusion"] == "evidence"
    assert set(fused["evidence"]) == {"activation", "jpeg", "jpeg_grid", "copy_move", "noise", "ela"}
    # the same sessions on the same photo; summary() rounds to 6 decimals, so two values a few float32
    # ulps apart may round one step (1e-6) apart
    rounding = 1e-6 + 8 * float(np.finfo(np.float32).eps)
    assert fused["model_probability"] == pytest.approx(summary["model_probability"], abs=rounding)


def test_traces_gallery_has_one_panel_per_evidence_in_words():
    import app

    localizers = app.Localizers()
    analysis = app.analyse(localizers, app.ReferenceMasks([]), str(EXAMPLES / "copymove_coins.png"), "graph")
    panels = app.traces_gallery(analysis, 0.5)
    assert len(panels) == len(analysis.result.evidence) + 1  # and the combination
    captions = [caption for _, caption in panels]
    assert captions[0].startswith("Detectors' attention: readable on this photo.")
    assert any(c.startswith("Copy-move:") for c in captions)
    assert all("_" not in caption and "≥" not in caption for caption in captions)  # words, not symbols
    assert app.drivers_markdown(analysis).startswith("The map rests mostly on")
    paper = app.analyse(localizers, app.ReferenceMasks([]), str(EXAMPLES / "copymove_coins.png"), "graph",
                        fusion="paper")
    assert app.traces_gallery(paper, 0.5) == [] and "paper's method" in app.drivers_markdown(paper)


def test_localize_example_returns_verdict_heatmap_mask_and_reference_scores(client):
    summary, heatmap_path, mask_path = _localize(client, EXAMPLES / "spliced_boat.jpg")
    for key in ("probability", "is_manipulated", "decision_threshold", "variant_probabilities", "segmenter",
                "region_count", "region_index", "mask_fraction", "original_size", "working_size",
                "timings", "providers", "models"):
        assert key in summary, key
    assert 0.0 <= summary["probability"] <= 1.0
    # The flag follows the verdict: no flag while it is uncertain (the bundled models' usual verdict).
    assert summary["is_manipulated"] == {"likely manipulated": True, "likely authentic": False}.get(summary["verdict"])
    assert set(summary["variant_probabilities"]) == {"wcbnet2", "wcbnet3", "wcbnet4"}
    assert summary["segmenter"] == "graph"
    assert summary["original_size"] == [512, 768]
    reference = summary["reference"]
    assert reference["mask"] == "spliced_boat_mask.png"
    assert 0.0 <= reference["pixel_f1"] <= 1.0 and 0.0 <= reference["pixel_auc"] <= 1.0

    heatmap = _read(heatmap_path)
    assert heatmap.shape == (512, 768, 3) and heatmap.dtype == np.uint8
    mask = _read(mask_path)
    assert mask.shape == (512, 768)
    assert set(np.unique(mask)) <= {0, 255}
    assert Path(heatmap_path).name == "spliced_boat_heatmap.png"


def test_reference_scores_follow_content_not_file_name(client, tmp_path):
    renamed = tmp_path / "holiday.jpg"
    shutil.copy(EXAMPLES / "copymove_coins.png", renamed)  # same bytes, another name and extension
    summary, _, _ = _localize(client, renamed)
    assert summary["reference"]["mask"] == "copymove_coins_mask.png"

    summary, _, _ = _localize(client, EXAMPLES / "authentic_coffee.jpg")
    assert "reference" not in summary  # authentic: nothing to score against


def test_bad_files_give_clear_errors_and_the_server_keeps_serving(client, tmp_path):
    from gradio_client.exceptions import AppError

    text = tmp_path / "notes.png"
    text.write_text("this is a shopping list, not a photo\n" * 20)
    with pytest.raises(AppError, match=r"notes\.png: not a readable image"):
        _localize(client, text)

    data = (EXAMPLES / "spliced_cat.jpg").read_bytes()
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(data[: len(data) // 3])
    with pytest.raises(AppError, match=r"cut\.jpg: .*truncated"):
        _localize(client, truncated)

    with pytest.raises(AppError) as error:
        _localize(client, text)
    assert "Traceback" not in str(error.value) and "/tmp" not in str(error.value)

    summary, _, _ = _localize(client, EXAMPLES / "spliced_cat.jpg")
    assert summary["original_size"] == [512, 768]


def test_photo_over_the_pixel_limit_is_refused(client, tmp_path):
    big = tmp_path / "huge.png"
    cv2.imwrite(str(big), np.full((5000, 5000, 3), 120, np.uint8))  # 25 MP, compresses to a few kB
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=f"the limit is {TEST_MAX_MEGAPIXELS} MP"):
        _localize(client, big)


def test_uploads_over_the_size_limit_are_refused_by_client_and_server(client, app_server, tmp_path):
    import httpx

    big = tmp_path / "big.jpg"
    big.write_bytes(np.random.default_rng(0).bytes((TEST_MAX_UPLOAD_MB + 1) * 1024 * 1024))
    with pytest.raises(ValueError, match="exceeds the maximum file size"):
        _localize(client, big)  # gradio_client reads the limit from the server's config
    with open(big, "rb") as stream:  # and the server enforces it for any other client
        response = httpx.post(f"{app_server}gradio_api/upload", files={"files": ("big.jpg", stream)}, timeout=60)
    assert response.status_code == 413


def test_large_photo_is_analysed_at_working_size_and_downloads_at_full_size(client, tmp_path):
    # 12 MP: above the runtime's strip threshold, so SEL is computed in strips.
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    photo = cv2.resize(cv2.GaussianBlur(small, (0, 0), 2), (4000, 3000), interpolation=cv2.INTER_CUBIC)
    path = tmp_path / "large.jpg"
    cv2.imwrite(str(path), photo, [cv2.IMWRITE_JPEG_QUALITY, 90])
    summary, heatmap_path, mask_path = _localize(client, path)
    assert summary["original_size"] == [3000, 4000]
    assert max(summary["working_size"]) <= 1024
    assert _read(heatmap_path).shape == (3000, 4000, 3)
    assert _read(mask_path).shape == (3000, 4000)


def test_unknown_segmenter_is_refused(client):
    from gradio_client.exceptions import AppError

    with pytest.raises((AppError, ValueError)):
        _localize(client, EXAMPLES / "spliced_boat.jpg", segmenter="no-such-segmenter")


# ----------------------------------------------------------------- in-process, no server


def test_examples_are_small_paired_and_forgeries_first():
    import app

    examples = app.find_examples()
    forged = [e for e in examples if e.mask is not None]
    assert 4 <= len(forged) <= 6 and 1 <= len(examples) - len(forged) <= 2
    assert {e.image.name.split("_")[0] for e in forged} == {"spliced", "copymove"}
    assert examples[: len(forged)] == forged
    total = sum(p.stat().st_size for p in EXAMPLES.iterdir() if p.is_file())
    assert total < 3 * 1024 * 1024
    for example in forged:
        image, mask = _read(example.image), _read(example.mask)
        assert image.shape[:2] == mask.shape[:2] and max(image.shape[:2]) <= 1024
        assert 0 < (mask > 127).mean() < 0.5


def test_missing_models_are_reported_on_the_page_not_raised(monkeypatch, tmp_path):
    import app
    import wsloc_runtime.models as models

    monkeypatch.setenv("WSLOC_MODELS", str(tmp_path))
    monkeypatch.delenv("WSLOC_HF_REPO", raising=False)
    monkeypatch.setattr(models, "BUNDLED_MODELS", tmp_path / "none")
    localizers = app.Localizers()
    assert localizers.models_error and "wcbnet" in localizers.models_error
    assert "graph" in localizers.available  # the segmenter itself needs no files
    demo = app.build_app(localizers, examples=[])
    assert demo.analytics_enabled is False
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
    with pytest.raises(app.WslocError, match="wcbnet"):
        app.analyse(localizers, app.ReferenceMasks([]), str(EXAMPLES / "spliced_boat.jpg"), "graph")


def test_unavailable_segmenter_reason_names_files_and_command_but_no_server_paths():
    import app

    message = (
        "segmenter 'sam' needs 2 missing model file(s). model 'sam_encoder.onnx' not found. Looked in: "
        "/srv/models/sam_encoder.onnx; no Hugging Face repository configured (set WSLOC_HF_REPO). | model "
        "'sam_decoder.onnx' not found. Looked in: /srv/models/sam_decoder.onnx. Make them with: "
        "python -m export.segmenters sam --out assets/models"
    )
    reason = app._short_reason(message)
    assert "sam_encoder.onnx" in reason and "sam_decoder.onnx" in reason
    assert "python -m export.segmenters sam" in reason and "/srv" not in reason


def test_start_up_says_one_short_line_about_segmenters_and_the_page_words_notes_and_timings(
        monkeypatch, tmp_path, caplog, contract_models, splice):
    """Segmenters nobody asked for get no warning (their full paths are for debug logs); an animated
    file's note reaches the verdict; the timings are a two-column table, one row per stage."""
    import app
    from PIL import Image

    monkeypatch.setenv("WSLOC_MODELS", str(contract_models))
    monkeypatch.delenv("WSLOC_HF_REPO", raising=False)
    with caplog.at_level(logging.DEBUG):
        localizers = app.Localizers()
    said = [r.getMessage() for r in caplog.records if r.name == "wsloc.app" and r.levelno >= logging.INFO]
    assert said == [f"segmenters: graph; without model files: {', '.join(sorted(localizers.unavailable))} "
                    "(see 'About the segmenters')"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "segmenter" in r.getMessage()]

    frames = [Image.fromarray(np.roll(splice[0], 25 * index, axis=0)) for index in range(2)]
    animated = tmp_path / "animated.gif"
    frames[0].save(animated, save_all=True, append_images=frames[1:])
    analysis = app.analyse(localizers, app.ReferenceMasks([]), str(animated), "graph")
    assert "**Note:** the file holds 2 frames (animated or multi-page); only the first was analysed." in (
        app.verdict_markdown(analysis))
    assert f"## Verdict: {analysis.result.verdict}" in app.verdict_markdown(analysis)
    table = [line for line in app.details_markdown(analysis).splitlines() if line.startswith("|")]
    assert table[:2] == ["| stage | ms |", "|---|---:|"]
    assert [row.split("|")[1].strip() for row in table[2:]] == list(analysis.result.timings)


def test_captions_and_the_segmenter_menu_are_plain_words(monkeypatch, contract_models, splice, tmp_path):
    """Captions once read "5 · Chosen region #55, S = 6.05" and "7 · Final mask (A* ≥ 0.5)"; the menu
    "deeplab, pspnet, sam: model files missing"."""
    import app

    monkeypatch.setenv("WSLOC_MODELS", str(contract_models))
    monkeypatch.delenv("WSLOC_HF_REPO", raising=False)
    localizers = app.Localizers()
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), cv2.cvtColor(splice[0], cv2.COLOR_RGB2BGR))
    analysis = app.analyse(localizers, app.ReferenceMasks([]), str(photo), "graph")
    captions = [caption for _, caption in app.evidence_gallery(analysis, 90, 0.5)]
    for caption in captions:
        assert not any(symbol in caption for symbol in ("A*", "S =", "#", "Grad-CAM", "≥")), caption
    assert captions[-1] == "7 · Final mask: white where editing is more likely than not"
    assert "chosen region #" in app.details_markdown(analysis)  # the numbers stay, for specialists
    assert app.segmenter_menu_note(["graph"], {"sam": "", "deeplab": "", "pspnet": ""}) == (
        "Only graph is installed on this server. deeplab, pspnet and sam need model files that this server "
        "does not have (see 'About the segmenters'). The choice changes how the photo is cut into regions.")
    assert app.segmenter_menu_note(["graph", "sam"], {}) is None
    markdown = app.verdict_markdown(analysis)
    assert "Score " in markdown and "on a scale from 0 (no sign of editing)" in markdown
    # File evidence: information beside the maps, in the JSON and the page.
    assert analysis.summary["file_evidence"]["format"] == "PNG"
    assert "No camera make or model" in app.file_evidence_markdown(analysis)
    report = analysis.report_html.read_text(encoding="utf-8")  # the "Download report" file
    assert "Final heatmap" not in report and 'data-panel="Heatmap over the photo"' in report

    # A confident verdict: the specialists' line once read "(uncertain between 0.27 and 0.83)" under it.
    import copy
    from dataclasses import replace

    from wsloc_runtime.pipeline import VERDICT_FLAGS

    confident = copy.copy(analysis.result)
    confident.verdict_band, confident.probability = (0.27, 0.83), 0.888
    confident.is_manipulated = VERDICT_FLAGS[confident.verdict]
    markdown = app.verdict_markdown(replace(analysis, result=confident, stated_precision={}))
    assert "## Verdict: likely manipulated" in markdown and "uncertain" not in markdown
    assert "P(manipulated)" not in markdown  # plain words first: the score's name is in "How it works"
    assert ("For specialists: P(manipulated) = 0.888, at or above 0.83; verdict: likely manipulated"
            in app.specialists_markdown(replace(analysis, result=confident)))
    # No precision is claimed while the verdict rule measured none; its own words once it has.
    assert "right" not in markdown and "%" not in markdown.split("mask marks")[0]
    from wsloc_runtime.fusion import DEFAULT_SETTINGS

    assert analysis.stated_precision == DEFAULT_SETTINGS.stated_precision["evidence"]  # the shipped table
    stated = {"likely manipulated": (86, 96, "casia1-dev")}
    with_table = app.verdict_markdown(replace(analysis, result=confident, stated_precision=stated))
    assert 'When these models said "likely manipulated", they were right 86 of 96 times (90 %)' in with_table
    # Judged authentic: the page's mask and the method's last step say no edit; the JSON says 0.
    authentic = copy.copy(analysis.result)
    authentic.is_manipulated = False
    assert not authentic.reported_mask.any() and authentic.summary()["mask_fraction"] == 0.0
    steps = [caption for _, caption in app.evidence_gallery(replace(analysis, result=authentic), 90, 0.5)]
    assert "judged likely authentic" in steps[-1] and "white where editing" not in steps[-1]
