"""Static files: the browser SDK (spec http-api §11, browser-sdk §1) and the demo page.

``/hellotext.js`` is the repository file, byte for byte. ``/hellotext.mjs`` is the same source made loadable
as an ES module: its last line passes ``import.meta.url`` instead of ``document.currentScript.src`` (a module
has no current script), and an ``export default`` of the global follows. One source of truth, no build step.
"""

from __future__ import annotations

import functools
import hashlib
import html
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hellotext.store.businesses import find_business_by_name

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
JS_TYPE = "application/javascript; charset=utf-8"
SCRIPT_CALL = "})(window, document, document.currentScript && document.currentScript.src)\n"
MODULE_CALL = "})(window, document, import.meta.url)\nexport default window.Hellotext\n"
DEMO_BUSINESS = "Demo"

# The demo page runs only files of this origin: no inline script or style, no framing, no form posts.
DEMO_POLICY = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True, slots=True)
class Asset:
    """A file as served: its bytes, media type and strong validator."""

    body: bytes
    content_type: str
    etag: str


def _asset(body: bytes, content_type: str) -> Asset:
    return Asset(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def module_source(script: str) -> str:
    """The ES-module variant of the SDK source.

    Raises:
        RuntimeError: the script's last line is not the expected invocation (the two would drift apart).
    """
    if not script.endswith(SCRIPT_CALL) or script.count(SCRIPT_CALL) != 1:
        raise RuntimeError("hellotext.js must end with the invocation line that hellotext.mjs replaces")
    return script[: -len(SCRIPT_CALL)] + MODULE_CALL


@functools.cache
def asset(name: str) -> Asset:
    """A served file, read once (the repository file is the file served)."""
    if name == "hellotext.mjs":
        script = (STATIC_DIR / "hellotext.js").read_text(encoding="utf-8")
        return _asset(module_source(script).encode(), JS_TYPE)
    types = {
        ".js": JS_TYPE,
        ".ts": "application/typescript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
    }
    return _asset((STATIC_DIR / name).read_bytes(), types[Path(name).suffix])


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names `etag` (weak comparison, as RFC 9110 asks for GET)."""
    if not header:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def _file_endpoint(name: str) -> Route:
    async def endpoint(request: Request) -> Response:
        item = asset(name)
        headers = {
            "cache-control": "public, max-age=3600",
            "etag": item.etag,
            # Any page may load the SDK, also as a module (module scripts are fetched in CORS mode).
            "access-control-allow-origin": "*",
            "x-content-type-options": "nosniff",
        }
        if etag_matches(request.headers.get("if-none-match"), item.etag):
            return Response(status_code=304, headers=headers)
        headers["content-type"] = item.content_type
        return Response(item.body, headers=headers)

    # Starlette answers HEAD on GET routes; uvicorn sends the headers without the body.
    return Route("/" + name, endpoint, methods=["GET"])


DEMO_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hellotext demo</title>
<link rel="stylesheet" href="/demo.css">
</head>
<body data-business="{business}">
<main>
<h1>hellotext demo</h1>
<p>Business <code id="business">{business}</code> &middot; session <code id="session">(none)</code>
&middot; identity <code id="identity">anonymous</code></p>
<p class="buttons">
<button type="button" id="track-page">Track a page view</button>
<button type="button" id="track-product">Track a product view</button>
<button type="button" id="forget">Forget</button>
</p>
<form id="identify">
<label>User id <input name="user_id" required></label>
<label>Source <input name="source"></label>
<label>Email <input name="email" type="email"></label>
<button type="submit">Identify</button>
</form>
<h2>Log</h2>
<ol id="log"></ol>
</main>
<script src="/hellotext.js"></script>
<script src="/demo.js"></script>
</body>
</html>
"""

MISSING_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hellotext demo</title></head>
<body><p>No demo business: run <code>hellotext serve --demo</code>, or open
<code>/demo?business=&lt;public id&gt;</code>.</p></body></html>
"""


async def demo(request: Request) -> Response:
    """The demo page for ``?business=<public id>``, else for the oldest business named "Demo"."""
    business = request.query_params.get("business", "").strip()
    if not business:
        db = request.app.state.hellotext.db
        found = await db.read(lambda conn: find_business_by_name(conn, DEMO_BUSINESS))
        business = found.public_id if found is not None else ""
    headers = {
        "cache-control": "no-store",
        "content-security-policy": DEMO_POLICY,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "x-frame-options": "DENY",
    }
    if not business:
        return Response(MISSING_PAGE, 404, headers=headers, media_type="text/html")
    page = DEMO_PAGE.format(business=html.escape(business, quote=True))
    return Response(page, headers=headers, media_type="text/html")


routes = [
    _file_endpoint("hellotext.js"),
    _file_endpoint("hellotext.mjs"),
    _file_endpoint("hellotext.d.ts"),
    _file_endpoint("demo.js"),
    _file_endpoint("demo.css"),
    Route("/demo", demo, methods=["GET"]),
]
