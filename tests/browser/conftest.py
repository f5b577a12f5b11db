"""Browser fixtures: Debian's Chromium driven by Playwright, and a small page server.

Chromium maps the test host names to 127.0.0.1 (``--host-resolver-rules``), so a page on
``http://shop.example.test:<port>/`` reaches the page server below, and cookies are written on the real root
domain ``.example.test``. The pages load ``hellotext.js`` from the live hellotext server (the ``server``
fixture), which is therefore a cross-origin API root, as on a real shop.

Page server paths (any suffix and query string may follow; the page title is "Test page"):

- ``/sdk/...``: a page loading ``<server>/hellotext.js``;
- ``/bare/...``: a page without the SDK;
- ``/twice/...``: loads the SDK twice, keeping the first object in ``window.firstCopy``;
- ``/module/...``: imports ``<server>/hellotext.mjs`` as an ES module into ``window.moduleCopy``;
- ``POST /api/<status>/<body>/...``: answers ``<status>`` with `<body>` (base64url JSON, or ``-`` for a
  text that is not JSON) and remembers the request: a stand-in API for answers the real server never
  gives (``201`` on track, a body that is not JSON).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request

from tests.chromium import CHROMIUM, HOSTS, LAUNCH_ARGS, LINKS, SHOP, TABLE_HOSTS, WWW  # noqa: F401

UUID4 = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"

# Wraps fetch to remember what the SDK asked for (keepalive and credentials are not visible on the wire);
# the call itself goes through unchanged.
FETCH_SPY = """
(() => {
  const real = window.fetch
  window.fetches = []
  window.fetch = function (url, init) {
    init = init || {}
    window.fetches.push({url: String(url), keepalive: init.keepalive, credentials: init.credentials,
                         hasKeepalive: 'keepalive' in init})
    return real.apply(this, arguments)
  }
})()
"""


@dataclass
class PageServer:
    """The page server's address and what its stand-in API received."""

    port: int
    api: str
    received: list[dict[str, Any]] = field(default_factory=list)
    port6: int | None = None  # the same pages on [::1], when the machine has IPv6 loopback

    def url(self, path: str = "/sdk/", host: str = SHOP) -> str:
        """A page URL on `host` (mapped to 127.0.0.1 by Chromium; ``[::1]`` is the IPv6 twin)."""
        if host == "[::1]":
            if self.port6 is None:
                pytest.skip("no IPv6 loopback on this machine")
            return f"http://{host}:{self.port6}{path}"
        return f"http://{host}:{self.port}{path}"

    def stand_in(self, status: int, body: Any = None, host: str = SHOP) -> str:
        """An API root whose every POST is answered `status` with `body` as JSON (``None``: not JSON)."""
        encoded = "-" if body is None else base64.urlsafe_b64encode(json.dumps(body).encode()).decode()
        return f"http://{host}:{self.port}/api/{status}/{encoded}"


def _page(api: str, kind: str) -> str:
    sdk = f'<script src="{api}/hellotext.js"></script>'
    body = {
        "sdk": sdk,
        "bare": "",
        "twice": f"{sdk}<script>window.firstCopy = window.Hellotext</script>"
        f'<script src="{api}/hellotext.js?2"></script>',
        "module": f'<script type="module">import H from "{api}/hellotext.mjs"; '
        "window.moduleCopy = H</script>",
    }[kind]
    head = '<meta charset="utf-8"><title>Test page</title>'
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"


def _handler(site: PageServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            kind = urlsplit(self.path).path.strip("/").split("/")[0]
            if kind not in ("sdk", "bare", "twice", "module"):
                self._send(404, "text/plain", b"not found")
                return
            self._send(200, "text/html; charset=utf-8", _page(site.api, kind).encode())

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            site.received.append(
                {
                    "path": parts.path,
                    "headers": dict(self.headers.items()),
                    "body": json.loads(raw or b"null"),
                }
            )
            segments = parts.path.strip("/").split("/")
            if segments[0] != "api":
                self._send(501, "text/html", b"<p>not an API</p>")
                return
            status, encoded = int(segments[1]), segments[2]
            if encoded == "-":
                self._send(status, "text/html", b"<p>not JSON</p>")
            else:
                self._send(status, "application/json", base64.urlsafe_b64decode(encoded))

    return Handler


class _ServerV6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


@pytest.fixture(scope="session")
def site(server: str) -> Iterator[PageServer]:
    """The page server, in threads on free ports of 127.0.0.1 (and of ::1 when there is one)."""
    holder = PageServer(port=0, api=server)
    servers: list[ThreadingHTTPServer] = [ThreadingHTTPServer(("127.0.0.1", 0), _handler(holder))]
    holder.port = servers[0].server_address[1]
    try:
        servers.append(_ServerV6(("::1", 0), _handler(holder)))
        holder.port6 = servers[1].server_address[1]
    except OSError:
        pass
    threads = []
    for httpd in servers:
        httpd.daemon_threads = True
        threads.append(threading.Thread(target=httpd.serve_forever, name="page-server", daemon=True))
        threads[-1].start()
    yield holder
    for httpd, thread in zip(servers, threads, strict=True):
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) for one test."""
    ctx = browser.new_context()
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


class Tab:
    """A page plus what it did: requests to the API, console messages."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.requests: list[Request] = []
        self.console: list[tuple[str, str]] = []
        page.on("request", lambda r: self.requests.append(r))
        page.on("console", lambda m: self.console.append((m.type, m.text)))

    def api_requests(self) -> list[Request]:
        """Requests the SDK made (anything but page, script and favicon loads)."""
        return [r for r in self.requests if r.method != "GET"]

    def posts(self, suffix: str) -> list[dict[str, Any]]:
        """The JSON bodies POSTed to a path ending in `suffix`, in order."""
        found = []
        for r in self.requests:
            if r.method == "POST" and urlsplit(r.url).path.endswith(suffix):
                found.append(json.loads(r.post_data or "null"))
        return found

    def run(self, script: str, arg: Any = None) -> Any:
        """Evaluate a JS function (``async (arg) => ...``) in the page."""
        return self.page.evaluate(script, arg)

    def init(self, business: str, config: dict[str, Any] | None = None) -> Any:
        """``await Hellotext.initialize(business, config)``; returns the session."""
        return self.run(
            "async ([b, c]) => { await Hellotext.initialize(b, c); return Hellotext.session || null }",
            [business, config or {}],
        )

    def cookie(self, name: str) -> str | None:
        """A cookie as the page reads it (decoded), or None."""
        value: str | None = self.run(
            """(name) => {
                 for (const e of document.cookie.split(';')) {
                   const i = e.indexOf('=')
                   if (e.slice(0, i).trim() === name) return decodeURIComponent(e.slice(i + 1))
                 }
                 return null }""",
            name,
        )
        return value


@pytest.fixture
def open_tab(context: BrowserContext, site: PageServer) -> Any:
    """Open a page of the page server: ``open_tab(path="/sdk/", host=SHOP, spy=False) -> Tab``."""

    def opener(path: str = "/sdk/", host: str = SHOP, spy: bool = False) -> Tab:
        page = context.new_page()
        tab = Tab(page)
        if spy:
            page.add_init_script(FETCH_SPY)
        page.goto(site.url(path, host))
        return tab

    return opener


def cookies_named(context: BrowserContext, name: str) -> list[dict[str, Any]]:
    """Every cookie of that name in the browser, whatever its domain."""
    return [dict(c) for c in context.cookies() if c["name"] == name]
