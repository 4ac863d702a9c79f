"""Self-test of the headless-Chromium checker in tests/browser.py on tiny hand-written pages."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers.browser import Browser, find_chromium

pytestmark = pytest.mark.pipeline

HEAD = '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
WIDE_TABLE = ('<table style="width:2000px;border-collapse:collapse"><tr>'
              + "".join(f"<td>column {i}</td>" for i in range(20)) + "</tr></table>")


def page(tmp_path: Path, name: str, body: str, head: str = "") -> Path:
    path = tmp_path / "pages" / f"{name}.html"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"<!doctype html><html><head>{HEAD}{head}<title>{name}</title></head>"
                    f"<body>{body}</body></html>", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """One browser for the module, or None when Chromium is missing (each test then fails)."""
    if find_chromium() is None:
        yield None
        return
    with Browser(tmp_path_factory.mktemp("chromium-profile")) as b:
        yield b


def need(chromium: Browser | None) -> Browser:
    """The browser; a missing Chromium is a test failure (not a skip, not a fixture error)."""
    assert chromium is not None, ("Chromium is not installed (neither `chromium` nor "
                                  "`chromium-browser` is on PATH); `make sysdeps` installs it")
    return chromium


def test_clean_page(chromium, tmp_path):
    browser = need(chromium)
    body = "<h1>Отчёт по школам</h1>" + "<p>Ordinary paragraph of the report.</p>" * 40
    shot = tmp_path / "shots" / "clean.png"
    result = browser.check(page(tmp_path, "clean", body), width=1280, screenshot=shot)
    assert result.failed_requests == []
    assert result.console_errors == []
    assert "Отчёт по школам" in result.text
    assert "<h1>" in result.html
    assert result.horizontal_overflow is False
    assert result.screenshot == shot
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 1024


def test_external_requests_are_reported(chromium, tmp_path):
    browser = need(chromium)
    img, css = "https://example.com/x.png", "http://cdn.example/x.css"
    path = page(tmp_path, "external", f'<p>text</p><img src="{img}">',
                head=f'<link rel=stylesheet href="{css}">')
    result = browser.check(path, width=1280)
    assert img in result.failed_requests
    assert css in result.failed_requests
    assert "text" in result.text


def test_network_is_really_off(chromium, tmp_path):
    """Even an IP literal (which host-resolver rules do not cover) must not be reached."""
    browser = need(chromium)
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/pixel.png"
        result = browser.check(page(tmp_path, "local", f'<img src="{url}">'), width=1280)
    finally:
        server.shutdown()
        server.server_close()
    assert url in result.failed_requests
    assert hits == []


def test_console_errors_are_reported(chromium, tmp_path):
    browser = need(chromium)
    script = '<script>console.error("boom"); undefinedFn();</script>'
    path = page(tmp_path, "errors", f"<p>x</p>{script}")
    result = browser.check(path, width=1280)
    assert len(result.console_errors) == 2, result.console_errors
    assert any("boom" in e for e in result.console_errors)
    assert any("undefinedFn" in e for e in result.console_errors)
    assert result.failed_requests == []


@pytest.mark.parametrize("table_width", [2000, 1000])
def test_wide_table_overflows_a_phone_unless_boxed(chromium, tmp_path, table_width):
    browser = need(chromium)
    table = WIDE_TABLE.replace("2000px", f"{table_width}px")
    bare = browser.check(page(tmp_path, "bare", table), width=375, mobile=True)
    assert bare.horizontal_overflow is True
    boxed = browser.check(page(tmp_path, "boxed", f'<div style="overflow-x:auto">{table}</div>'),
                          width=375, mobile=True)
    assert boxed.horizontal_overflow is False
    assert "column 19" in boxed.text
