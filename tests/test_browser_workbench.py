"""The workbench in a real browser (issue 34): a preview and an analysis on upload, the
before/after slider at full resolution, the threshold redrawing the mask without analysing again,
clone lines on the copy-move example, colour bars, and plain words on the first screen.

Headless Debian Chromium driven by Playwright, as tests/test_browser.py; the app runs on the
contract models, whose server log says when an analysis finishes (counted here).
"""

from __future__ import annotations

import shutil
import time

import pytest

from tests.test_browser import (ARTIFACTS, RESULT_TIMEOUT_MS, UI_TIMEOUT_MS, _shown_image_size,  # noqa: F401
                                browser, open_page)
from tests.test_app import EXAMPLES, serve_app

#: Words of the method that the first screen must not use (they belong in "How it works").
JARGON = ("WCBnet", "Grad-CAM", "Bayesian", "P(manipulated)")
#: One line per analysis in the app's log (app.analyse).
ANALYSIS_LINE = "analysis finished:"

#: How many pixels of an image are (near) a colour, read back from a canvas.
COUNT_COLOUR_JS = """([selector, index, colour, tolerance]) => {
    const image = document.querySelectorAll(selector)[index];
    const canvas = document.createElement('canvas');
    canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
    const context = canvas.getContext('2d');
    context.drawImage(image, 0, 0);
    const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let count = 0;
    for (let i = 0; i < data.length; i += 4)
        if (Math.abs(data[i] - colour[0]) <= tolerance && Math.abs(data[i + 1] - colour[1]) <= tolerance
            && Math.abs(data[i + 2] - colour[2]) <= tolerance) count++;
    return count;
}"""
#: The colour of one pixel of an image.
PIXEL_JS = """([selector, x, y]) => {
    const image = document.querySelector(selector);
    const canvas = document.createElement('canvas');
    canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
    const context = canvas.getContext('2d');
    context.drawImage(image, 0, 0);
    return [...context.getImageData(x, y, 1, 1).data.slice(0, 3)];
}"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(URL, server log) of ``python app.py`` on the contract models."""
    from tests.contract_models import build_contract_model_set

    work = tmp_path_factory.mktemp("workbench_app")
    server = serve_app(work, build_contract_model_set(work / "models"))
    url = next(server)
    try:
        yield url, work / "app.log"
    finally:
        server.close()


@pytest.fixture
def page(browser, served):  # noqa: F811
    yield from open_page(browser, served[0])


def analyses(log) -> int:
    return log.read_text(errors="replace").count(ANALYSIS_LINE)


def wait_for_analyses(log, count: int) -> None:
    deadline = time.monotonic() + RESULT_TIMEOUT_MS / 1000
    while analyses(log) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    assert analyses(log) >= count


def test_upload_previews_analyses_compares_and_the_threshold_redraws_without_analysing(page, served, tmp_path):
    _, log = served
    upload = tmp_path / "harbour.jpg"
    shutil.copy(EXAMPLES / "spliced_boat.jpg", upload)  # 768 x 512
    before = analyses(log)
    start = time.monotonic()
    page.locator("#upload input[type=file]").set_input_files(str(upload))
    assert _shown_image_size(page, "#preview") == (768, 512)  # the photo, shown at once
    page.locator("#verdict").get_by_text("Verdict:").wait_for(timeout=RESULT_TIMEOUT_MS)  # no click
    page.wait_for_function("() => document.querySelectorAll('#compare img').length == 2 && "
                           "[...document.querySelectorAll('#compare img')].every(i => i.complete && i.naturalWidth)",
                           timeout=UI_TIMEOUT_MS)
    print(f"upload to verdict and comparison: {time.monotonic() - start:.2f} s")
    wait_for_analyses(log, before + 1)
    assert analyses(log) == before + 1  # one analysis per upload
    sizes = page.eval_on_selector_all("#compare img", "images => images.map(i => [i.naturalWidth, i.naturalHeight])")
    assert sizes == [[768, 512], [768, 512]]  # before and after, at the photo's full resolution
    assert page.locator("#compare .slider-wrap").count() == 1  # Gradio's ImageSlider, with its handle

    # A colour bar beside the heatmap: strongest (pale yellow) at its top, none (black) at its bottom.
    width, height = _shown_image_size(page, "#heatmap")
    assert width > 768
    x = 768 + 10  # inside the bar, right of the picture
    top = page.evaluate(PIXEL_JS, ["#heatmap img", x, 20])
    bottom = page.evaluate(PIXEL_JS, ["#heatmap img", x, height - 20])
    assert sum(top) > 3 * 180 and sum(bottom) < 3 * 40, (top, bottom)
    _screenshot = ARTIFACTS / "workbench_result.png"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(_screenshot), full_page=True)

    # The threshold redraws the mask from the stored map: a new picture, no new analysis.
    verdict = page.locator("#verdict").inner_text()
    old_mask = page.locator("#mask img").first.get_attribute("src")
    old_after = page.locator("#compare img").nth(1).get_attribute("src")
    number = page.locator("#threshold input[type=number]")
    number.fill("0.1")
    number.press("Enter")
    page.wait_for_function("(old) => { const i = document.querySelector('#mask img'); return i && i.src !== old; }",
                           arg=old_mask, timeout=UI_TIMEOUT_MS)
    page.wait_for_function("(old) => document.querySelectorAll('#compare img')[1].src !== old",
                           arg=old_after, timeout=UI_TIMEOUT_MS)
    time.sleep(1.0)  # an analysis, had one started, would have logged by now on these tiny models
    assert analyses(log) == before + 1
    assert page.locator("#verdict").inner_text() == verdict


def test_the_copy_move_example_shows_lines_from_each_copy_to_its_original(page):
    import app

    names = [e.image.stem for e in app.find_examples()]
    page.locator("#examples img").nth(names.index("copymove_hats")).click()
    page.locator("#verdict").get_by_text("Verdict:").wait_for(timeout=RESULT_TIMEOUT_MS)
    _shown_image_size(page, "#mask")
    page.wait_for_function("() => [...document.querySelectorAll('#compare img')].length == 2 && "
                           "[...document.querySelectorAll('#compare img')].every(i => i.complete && i.naturalWidth)",
                           timeout=UI_TIMEOUT_MS)
    green = [0, 255, 0]
    lines_on_mask = page.evaluate(COUNT_COLOUR_JS, ["#mask img", 0, green, 60])
    photo_green = page.evaluate(COUNT_COLOUR_JS, ["#compare img", 0, green, 60])  # the "before" side
    after_green = page.evaluate(COUNT_COLOUR_JS, ["#compare img", 1, green, 60])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "workbench_copymove.png"), full_page=True)
    assert lines_on_mask > 300 and photo_green < lines_on_mask / 10, (lines_on_mask, photo_green)
    assert after_green > 10 * max(photo_green, 30), (after_green, photo_green)


def test_the_first_screen_says_it_in_plain_words_and_how_it_works_names_the_method(page, tmp_path):
    upload = tmp_path / "street.jpg"
    shutil.copy(EXAMPLES / "spliced_cat.jpg", upload)
    page.locator("#upload input[type=file]").set_input_files(str(upload))
    page.locator("#verdict").get_by_text("Verdict:").wait_for(timeout=RESULT_TIMEOUT_MS)
    page.locator("#traces figcaption").first.wait_for(timeout=UI_TIMEOUT_MS)
    shown = page.evaluate("() => document.body.innerText")
    assert [word for word in JARGON if word in shown] == []
    page.locator("#how-it-works").get_by_text("How it works").first.click()
    page.locator("#method-words").get_by_text("Grad-CAM", exact=False).first.wait_for(timeout=UI_TIMEOUT_MS)
    opened = page.evaluate("() => document.body.innerText")
    assert all(word in opened for word in JARGON), [word for word in JARGON if word not in opened]
