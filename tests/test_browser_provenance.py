"""Strings from a file stay text in a real browser, and the provenance panel shows.

A photo whose EXIF, IPTC, XMP and Content Credentials hold HTML tags, Markdown images and links
pointing at a local server that records every request is opened in the app (every panel open)
and its report in Chromium: the server must see no request, and the page no element from the file.
"""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from tests.test_browser import ARTIFACTS, RESULT_TIMEOUT_MS, UI_TIMEOUT_MS, browser, open_page  # noqa: F401
from tests.test_app import app_server  # noqa: F401  (the fixture: a running app.py on the contract models)

pytest.importorskip("c2pa")

from PIL import Image  # noqa: E402

from tests.provenance_fixtures import (action, iptc_datasets, make_chain, sign, small_jpeg, with_iptc,  # noqa: E402
                                       xmp_document)


@pytest.fixture(scope="module")
def recorder():
    """A local HTTP server that records every request it gets: the trap every file string points at."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/gif")
            self.end_headers()
            self.wfile.write(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", requests
    finally:
        server.shutdown()


def hostile(base: str, where: str) -> str:
    return (f'<img src="{base}/{where}.gif"> ![i]({base}/{where}-md.png) [link]({base}/{where}-link) '
            f'<a href="{base}/{where}-a">a</a> {base}/{where}-bare')


@pytest.fixture(scope="module")
def hostile_photo(tmp_path_factory, recorder):
    from xml.sax.saxutils import escape

    base, _ = recorder
    exif = Image.Exif()
    exif[0x010F] = hostile(base, "exif-make")  # Exif.Image.Make
    exif[0x0110] = hostile(base, "exif-model")  # Exif.Image.Model
    exif[0x0131] = hostile(base, "exif-software")  # Exif.Image.Software
    xmp = xmp_document(f"<xmp:CreatorTool>{escape(hostile(base, 'xmp-creatortool'))}</xmp:CreatorTool>"
                       f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(hostile(base, "xmp-title"))}'
                       "</rdf:li></rdf:Alt></dc:title>")
    iptc = iptc_datasets({(2, 120): hostile(base, "iptc-caption"), (2, 80): [hostile(base, "iptc-byline")]})
    data = with_iptc(small_jpeg("spliced_boat.jpg", size=512, xmp=xmp, exif=exif), iptc)
    signed = sign(data, make_chain(signer_name='<img src="/c2pa-signer.gif">'),
                  [action("c2pa.created", "trainedAlgorithmicMedia", hostile(base, "c2pa-agent"))],
                  generator=hostile(base, "c2pa-generator"))
    path = tmp_path_factory.mktemp("hostile") / "<b>photo<b>.jpg"
    path.write_bytes(signed)
    return path


FILE_ELEMENTS_JS = """(base) => [...document.querySelectorAll('img, a, iframe, source, link, script')]
    .map(e => e.getAttribute('src') || e.getAttribute('href') || '').filter(u => u.startsWith(base))"""


def test_app_shows_file_strings_as_text_and_fetches_nothing(browser, app_server, hostile_photo, recorder):  # noqa: F811
    base, requests = recorder
    page_iter = open_page(browser, app_server)
    page = next(page_iter)
    try:
        page.locator("#upload input[type=file]").set_input_files(str(hostile_photo))
        page.locator("#upload").get_by_text("photo").first.wait_for(timeout=UI_TIMEOUT_MS)
        page.locator("#analyse").click()
        page.locator("#verdict").get_by_text("Verdict:").wait_for(timeout=RESULT_TIMEOUT_MS)
        for label in ("Details: timings", "File evidence:", "Provenance: Content Credentials", "All metadata:"):
            page.get_by_text(label).first.click()
        provenance = page.locator("#provenance")
        provenance.get_by_text("Content Credentials say it was made with generative AI").wait_for(timeout=UI_TIMEOUT_MS)
        page.locator("#metadata").get_by_text("Exif.Image.Make").wait_for(timeout=UI_TIMEOUT_MS)
        time.sleep(1.0)  # give any image or prefetch the page would load the time to go out
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "app_provenance.png"), full_page=True)
        assert page.evaluate(FILE_ELEMENTS_JS, base) == []
        verdict = page.locator("#verdict").inner_text()
        assert "Provenance: Its Content Credentials say it was made with generative AI" in verdict
        assert f'<img src="{base}/c2pa-generator.gif">' in verdict  # shown as the characters it is
        assert f'<img src="{base}/exif-make.gif">' in page.locator("#file-evidence").inner_text()
        metadata = page.locator("#metadata").inner_text()
        assert f"![i]({base}/iptc-caption-md.png)" in metadata and "xmp-creatortool" in metadata
    finally:
        next(page_iter, None)
    assert requests == []


def test_report_shows_file_strings_as_text_and_fetches_nothing(browser, hostile_photo, recorder, tmp_path,  # noqa: F811
                                                              contract_models):
    from wsloc_runtime.cli import main

    base, requests = recorder
    out = tmp_path / "out"
    assert main(["-q", "localize", str(hostile_photo), "--out", str(out), "--models", str(contract_models),
                 "--report"]) == 0
    report = next(out.glob("*_report.html"))
    context = browser.new_context(viewport={"width": 1200, "height": 900})  # online: a fetch would reach the trap
    try:
        page = context.new_page()
        page.goto(report.as_uri(), wait_until="load")
        page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        time.sleep(1.0)
        assert page.evaluate(FILE_ELEMENTS_JS, base) == []
        text = page.locator("#provenance-details").inner_text()
        assert "Content Credentials say it was made with generative AI" in text
        assert f'<img src="{base}/exif-make.gif">' in text and "iptc-caption" in text
        page.screenshot(path=str(ARTIFACTS / "report_provenance.png"), full_page=True)
    finally:
        context.close()
    assert requests == []
