"""The browser tool chain works: Playwright drives the system Chromium, which loads and renders a page served on
loopback by the test (JavaScript included), and a screenshot lands in the git-ignored screenshots folder."""

from __future__ import annotations

import http.server
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from playwright.sync_api import BrowserContext

from tests.e2e.conftest import VIEWPORT

pytestmark = pytest.mark.browser

PAGE = rb"""<!doctype html>
<html><head><meta charset="utf-8"><title>airflow-flink-provider browser check</title></head>
<body style="background:#fff;font-family:sans-serif">
<h1 id="static">Served on loopback</h1>
<p id="scripted">no script ran</p>
<script>
  const chrome = navigator.userAgent.match(/Chrome\/[0-9.]+/);
  document.getElementById("scripted").textContent = "rendered by " + (chrome ? chrome[0] : "?");
</script>
</body></html>
"""


class _Handler(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]]

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        status, body = (200, PAGE) if self.path == "/" else (404, b"not found")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test asserts on the requests instead."""


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 (a free port) serving PAGE at /; yields its URL and the paths it was asked."""
    handler = type("Handler", (_Handler,), {"requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", handler.requests
    finally:
        httpd.shutdown()
        httpd.server_close()


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk.

    :param path: the PNG file
    """
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_system_chromium_renders_a_loopback_page_and_takes_a_screenshot(
    browser: BrowserContext, server: tuple[str, list[str]], screenshots: Path
) -> None:
    url, requests = server
    page = browser.new_page()
    response = page.goto(url, wait_until="load", timeout=30_000)

    assert response is not None and response.status == 200
    assert "/" in requests
    assert page.title() == "airflow-flink-provider browser check"
    assert page.text_content("#static") == "Served on loopback"
    scripted = page.text_content("#scripted") or ""
    assert scripted.startswith("rendered by ") and "Chrome/" in scripted  # JavaScript ran in Chromium itself
    assert "HeadlessChrome" in page.evaluate("navigator.userAgent")

    shot = screenshots / "loopback-page.png"
    page.screenshot(path=str(shot))
    assert _png_size(shot) == (VIEWPORT["width"], VIEWPORT["height"])
    assert shot.stat().st_size > 2000  # a rendered page, not a blank image
