"""A small headless-Chromium checker driven over the Chrome DevTools Protocol (CDP).

One Chromium process is started per :class:`Browser` and reused for many pages. Each
:meth:`Browser.check` loads a local HTML file with the network switched off and reports what a
reader would hit: requests that left the machine (or tried to), console errors, the rendered
text and HTML, horizontal overflow at the given screen width, and optionally a PNG screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import time
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import websocket

LOCAL_SCHEMES = ("file:", "data:", "about:")
MAX_SHOT_HEIGHT = 12000
#: Overflow compares with the layout viewport (clientWidth), not window.innerWidth: with mobile
#: emulation Chromium zooms out to fit wide content, so innerWidth grows with the page (up to 4x
#: the screen) and ``scrollWidth > innerWidth`` would miss, say, a 1000 px table on a phone.
PAGE_JS = """JSON.stringify({text: document.body ? document.body.innerText : "",
  html: document.documentElement.outerHTML,
  overflow: document.documentElement.scrollWidth > document.documentElement.clientWidth,
  height: Math.max(document.documentElement.scrollHeight,
                   document.body ? document.body.scrollHeight : 0)})"""


class BrowserError(RuntimeError):
    """Chromium could not be started, did not answer in time, or reported a protocol error."""


def find_chromium() -> str | None:
    """The Chromium executable on PATH, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageCheck:
    """What :meth:`Browser.check` saw on one page at one screen width."""

    url: str
    width: int
    failed_requests: list[str]  # failed/blocked requests and every non-file:/data:/about: request
    console_errors: list[str]  # console.error/assert, uncaught exceptions, Log errors
    text: str  # document.body.innerText after load
    html: str  # document.documentElement.outerHTML after load
    horizontal_overflow: bool  # page wider than the screen (see PAGE_JS)
    screenshot: Path | None


class _Cdp:
    """One CDP websocket: numbered requests, events buffered while waiting for responses."""

    def __init__(self, ws_url: str, timeout: float = 10.0) -> None:
        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self.next_id = 0
        self.events: deque[dict[str, Any]] = deque()

    def _recv(self, deadline: float, what: str) -> dict[str, Any] | None:
        """The next message, or None once ``deadline`` passes; events go to the buffer."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        self.ws.settimeout(remaining)
        try:
            msg = json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            return None
        except (websocket.WebSocketException, OSError) as exc:
            raise BrowserError(f"CDP connection lost waiting for {what}: {exc!r}") from exc
        if "method" in msg:
            self.events.append(msg)
        return msg

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        """Send ``method`` and return its result; events arriving meanwhile are buffered."""
        self.next_id += 1
        msg_id = self.next_id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while (msg := self._recv(deadline, method)) is not None:
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise BrowserError(f"{method} failed: {msg['error']}")
                return msg.get("result", {})
        raise BrowserError(f"no answer to {method} within {timeout:g} s")

    def wait_event(self, method: str, timeout: float) -> dict[str, Any]:
        """Wait for event ``method`` (it may already be buffered); it stays in the buffer."""
        for event in self.events:
            if event["method"] == method:
                return event
        deadline = time.monotonic() + timeout
        while (msg := self._recv(deadline, method)) is not None:
            if msg.get("method") == method:
                return msg
        raise BrowserError(f"no {method} event within {timeout:g} s")

    def pump(self, seconds: float) -> None:
        """Buffer whatever events arrive in the next ``seconds``."""
        deadline = time.monotonic() + seconds
        while self._recv(deadline, "events") is not None:
            pass


def _http(url: str, method: str = "GET") -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as resp:
        return json.loads(resp.read())


class Browser:
    """A headless Chromium for checking local HTML pages; use as a context manager."""

    def __init__(self, profile_dir: Path, startup_timeout: float = 20.0) -> None:
        exe = find_chromium()
        if exe is None:
            raise BrowserError("Chromium is not installed (`make sysdeps` installs it)")
        self.profile = Path(profile_dir)
        self.profile.mkdir(parents=True, exist_ok=True)
        port_file = self.profile / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)
        self._log = open(self.profile / "chromium.log", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-extensions", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        self.cdp: _Cdp | None = None
        try:
            port = self._wait_port(port_file, startup_timeout)
            targets = [t for t in _http(f"http://127.0.0.1:{port}/json") if t.get("type") == "page"]
            target = targets[0] if targets else _http(f"http://127.0.0.1:{port}/json/new", "PUT")
            self.cdp = _Cdp(target["webSocketDebuggerUrl"])
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.cdp.call(f"{domain}.enable")
            self.cdp.call("Network.emulateNetworkConditions", offline=True, latency=0,
                          downloadThroughput=-1, uploadThroughput=-1)
        except BaseException:
            self.close()
            raise

    def _wait_port(self, port_file: Path, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.profile / "chromium.log").read_text(errors="replace")[-2000:]
                raise BrowserError(f"Chromium exited with code {self.proc.returncode}:\n{log}")
            lines = port_file.read_text().splitlines() if port_file.exists() else []
            if lines and lines[0].strip().isdigit():
                return int(lines[0])
            time.sleep(0.05)
        raise BrowserError(f"Chromium wrote no {port_file} within {timeout:.0f} s")

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Ask Chromium to quit over CDP, then terminate (and if need be kill) the process."""
        if self.cdp is not None:
            with contextlib.suppress(Exception):  # it may go away before it answers
                self.cdp.call("Browser.close", timeout=3)
            with contextlib.suppress(Exception):
                self.cdp.ws.close()
            self.cdp = None
        for stop, grace in ((None, 3), (self.proc.terminate, 5), (self.proc.kill, 5)):
            if self.proc.poll() is not None:
                break
            if stop is not None:
                stop()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        self._log.close()

    def check(self, page: Path, *, width: int, height: int = 900, mobile: bool = False,
              screenshot: Path | None = None, full_page: bool = True) -> PageCheck:
        """Load ``page`` at ``width`` x ``height`` CSS px and report what the reader would get."""
        cdp = self.cdp
        if cdp is None:
            raise BrowserError("the browser is closed")
        url = Path(page).resolve().as_uri()
        cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                 deviceScaleFactor=1, mobile=mobile)
        cdp.events.clear()
        nav = cdp.call("Page.navigate", url=url)
        if nav.get("errorText"):
            raise BrowserError(f"cannot open {url}: {nav['errorText']}")
        cdp.wait_event("Page.loadEventFired", timeout=60)
        cdp.pump(0.3)
        res = cdp.call("Runtime.evaluate", expression=PAGE_JS, returnByValue=True)
        if "exceptionDetails" in res:
            raise BrowserError(f"evaluating the page failed: {res['exceptionDetails']}")
        info = json.loads(res["result"]["value"])
        if screenshot is not None:
            shot: dict[str, Any] = {"format": "png"}
            if full_page:
                shot.update(captureBeyondViewport=True, clip={
                    "x": 0, "y": 0, "width": width, "scale": 1,
                    "height": max(1, min(int(info["height"]), MAX_SHOT_HEIGHT))})
            data = cdp.call("Page.captureScreenshot", timeout=60, **shot)["data"]
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(data))
        failed, errors = _collect(list(cdp.events))
        cdp.events.clear()
        return PageCheck(url, width, failed, errors, info["text"], info["html"],
                         bool(info["overflow"]), screenshot)


def _collect(events: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Failed/external request URLs and console error messages from buffered CDP events."""
    urls: dict[str, str] = {}
    failed: list[str] = []
    errors: list[str] = []

    def add(url: str) -> None:
        if url not in failed:
            failed.append(url)

    for event in events:
        method, p = event["method"], event.get("params", {})
        if method == "Network.requestWillBeSent":
            urls[p["requestId"]] = p["request"]["url"]
            if not p["request"]["url"].startswith(LOCAL_SCHEMES):
                add(p["request"]["url"])
        elif method == "Network.loadingFailed":
            add(urls.get(p["requestId"], f"<request {p['requestId']}: {p.get('errorText')}>"))
        elif method == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            args = p.get("args", [])
            errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
        elif method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            errors.append(d.get("exception", {}).get("description") or d.get("text", ""))
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            entry = p["entry"]
            text = f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}"
            errors.append(text.strip())
    return failed, errors
