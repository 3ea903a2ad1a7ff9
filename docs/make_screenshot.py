"""Retake ``docs/screenshot.png``: the app with the bundled models on the copy-move example of the hats.

``python docs/make_screenshot.py`` (needs ``pip install '.[app]' playwright`` and Chromium at
``/usr/bin/chromium``). Starts ``app.py`` on a free local port, clicks the example, waits for the
reference-mask scores (the last thing the page writes), saves a full-page shot 1400 px wide.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = "copymove hats"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    from playwright.sync_api import sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    app = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
                           cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(1)
        else:
            raise SystemExit("the app did not start within two minutes")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                                 args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_text(EXAMPLE, exact=True).first.click()
            page.get_by_text("Against this example's reference mask").wait_for(timeout=180_000)
            # The galleries load their pictures lazily: scroll through the page, then wait until every
            # picture has arrived, or the shot shows empty frames below the fold.
            for y in range(0, page.evaluate("document.body.scrollHeight"), 600):
                page.mouse.wheel(0, 600)
                time.sleep(0.2)
            page.wait_for_function(
                "() => [...document.querySelectorAll('img')].every(i => i.complete && i.naturalWidth > 0)",
                timeout=60_000)
            page.evaluate("window.scrollTo(0, 0)")
            time.sleep(1)
            page.screenshot(path=str(ROOT / "docs" / "screenshot.png"), full_page=True)
            browser.close()
    finally:
        app.terminate()
        app.wait(timeout=30)
    print("written docs/screenshot.png")


if __name__ == "__main__":
    main()
