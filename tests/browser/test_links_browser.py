"""Short links in Chromium (S7, S1, http-api §10): the click hands a session to the landing page.

The acceptance scenario of the short-link issue: a link made for profile P is served from
``links.example.test`` (``HELLOTEXT_LINK_BASE_URL``); opening it lands on
``shop.example.test/product?x=1#top`` with ``x=1``, the fragment and a new ``hello_session``; the page's
``hellotext.js`` adopts that session, and a ``track`` from the page shows up in P's timeline together
with the ``short_link.clicked`` event.

Local fixtures (the shared browser fixtures serve no ``/product`` page): a second hellotext server on the
run's database whose link base is ``http://links.example.test:<port>``, and a shop page server whose every
page loads ``hellotext.js`` from it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import BrowserContext

from hellotext.config import Settings
from hellotext.store.database import Database
from tests.browser.conftest import LINKS, SHOP, UUID4, Tab
from tests.conftest import Tenant
from tests.servers import ServerProcess, free_port

pytestmark = pytest.mark.browser


@dataclass
class Shop:
    """The shop's page server: its port and the paths (with query) it was asked for."""

    port: int
    seen: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://{SHOP}:{self.port}{path}"


@pytest.fixture(scope="module")
def link_server(
    settings: Settings, database: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A hellotext server on the run's database whose links are served from links.example.test."""
    port = free_port()
    linked = settings.with_(link_base_url=f"http://{LINKS}:{port}")
    log = tmp_path_factory.mktemp("link-server") / "server.log"
    proc = ServerProcess(linked, port=port, log_path=Path(log)).start()
    yield proc.url
    proc.stop()


@pytest.fixture(scope="module")
def shop(link_server: str) -> Iterator[Shop]:
    """Pages on shop.example.test (any path) that load hellotext.js from the link server."""
    holder = Shop(port=0)
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><title>Product</title></head><body>'
        f'<h1 id="top">Product</h1><script src="{link_server}/hellotext.js"></script></body></html>'
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            holder.seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    holder.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, name="shop-pages", daemon=True)
    thread.start()
    yield holder
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


@pytest.fixture
def linker(link_server: str, tenant: Tenant) -> Iterator[httpx.Client]:
    """The tenant's private API on the link server."""
    headers = {"Authorization": f"Bearer {tenant.token}"}
    with httpx.Client(base_url=link_server, headers=headers, timeout=30) as client:
        yield client


def timeline(private: httpx.Client, profile: str) -> list[dict[str, Any]]:
    response = private.get(f"/v1/profiles/{profile}/events", params={"limit": 100})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["data"]
    return events


def track_product(tab: Tab, name: str) -> None:
    answer = tab.run(
        """(name) => Hellotext
             .track('product.viewed', {object_parameters: {name, source: 'shop', reference: name}})
             .then((r) => r.succeeded)""",
        name,
    )
    assert answer is True


def landing(url: str) -> tuple[str, str, dict[str, list[str]], str]:
    parts = urlsplit(url)
    return parts.netloc, parts.path, parse_qs(parts.query, keep_blank_values=True), parts.fragment


def test_acceptance_link_click_lands_with_session_and_counts_for_profile_S7(
    context: BrowserContext, shop: Shop, linker: httpx.Client, private: httpx.Client, tenant: Tenant
) -> None:
    """S7 + S1: the landing page gets x=1, #top and a fresh hello_session; hellotext.js adopts it; the
    page's track lands in P's timeline beside the short_link.clicked event."""
    profile = private.post("/v1/profiles", json={"first_name": "Pat"}).json()["id"]
    destination = shop.url("/product?x=1#top")
    created = linker.post(
        "/v1/links", json={"destination": destination, "profile": profile, "campaign": "spring"}
    )
    assert created.status_code == 201, created.text
    link = created.json()
    assert link["url"] == f"http://{LINKS}:{linker.base_url.port}/l/{link['code']}"

    page = context.new_page()
    tab = Tab(page)
    page.goto(link["url"])
    host, path, query, fragment = landing(page.url)
    assert (host, path, fragment) == (f"{SHOP}:{shop.port}", "/product", "top")
    assert query["x"] == ["1"]
    [session] = query["hello_session"]
    assert page.evaluate("() => location.hash") == "#top"
    # The fragment never reaches a server; the query did, exactly as built.
    assert f"/product?x=1&hello_session={session}" in shop.seen
    assert re.fullmatch(UUID4, session)

    assert tab.init(tenant.public_id) == session
    assert tab.cookie("hello_session") == session
    track_product(tab, "Blue shirt")

    events = timeline(private, profile)
    assert [e["action"] for e in events] == ["product.viewed", "short_link.clicked"]
    assert {e["session"] for e in events} == {session}
    assert {e["profile"] for e in events} == {profile}
    click = events[1]
    assert (click["via"], click["url"], click["metadata"]) == (
        "link",
        destination,
        {"link": link["id"], "campaign": "spring"},
    )
    assert events[0]["page"]["path"] == "/product"
    sessions = private.get(f"/v1/profiles/{profile}/sessions").json()["data"]
    assert [(s["id"], s["attached_via"]) for s in sessions] == [(session, "link")]
    assert linker.get(f"/v1/links/{link['id']}").json()["clicks"] == 1


def test_link_session_wins_over_an_older_cookie_S1_S7(
    context: BrowserContext, shop: Shop, linker: httpx.Client, private: httpx.Client, tenant: Tenant
) -> None:
    """A visitor who browsed the shop anonymously before clicks a link: the URL's hello_session wins over
    the cookie (S1), the cookie is replaced, and only what follows the click is the profile's."""
    tab = Tab(context.new_page())
    tab.page.goto(shop.url("/home"))
    earlier = tab.init(tenant.public_id)
    track_product(tab, "before the link")

    profile = private.post("/v1/profiles", json={"first_name": "Quinn"}).json()["id"]
    link = linker.post(
        "/v1/links",
        json={
            "destination": shop.url("/product?x=1&hello_session=stale#top"),
            "profile": profile,
            "utm": {"source": "hellotext", "medium": "sms"},
        },
    ).json()
    tab.page.goto(link["url"])
    _, path, query, fragment = landing(tab.page.url)
    assert (path, fragment, query["x"]) == ("/product", "top", ["1"])
    [session] = query["hello_session"]
    assert session not in (earlier, "stale")
    assert (query["utm_source"], query["utm_medium"]) == (["hellotext"], ["sms"])

    assert tab.init(tenant.public_id) == session
    assert tab.cookie("hello_session") == session
    track_product(tab, "after the link")

    names = [e["object"]["data"]["name"] if e["object"] else e["action"] for e in timeline(private, profile)]
    assert names == ["after the link", "short_link.clicked"]
    assert private.get(f"/v1/sessions/{earlier}").json()["profile"] is None
    stored = private.get(f"/v1/sessions/{session}").json()
    assert stored["utm_params"]["source"] == "hellotext" and stored["utm_params"]["medium"] == "sms"


def test_two_clicks_in_the_browser_give_two_sessions_of_the_profile_S7(
    context: BrowserContext,
    browser_context_two: BrowserContext,
    shop: Shop,
    linker: httpx.Client,
    private: httpx.Client,
) -> None:
    """The same link opened in two browsers: two new sessions, both attached to P."""
    profile = private.post("/v1/profiles", json={"first_name": "Robin"}).json()["id"]
    link = linker.post(
        "/v1/links", json={"destination": shop.url("/product?x=1#top"), "profile": profile}
    ).json()
    minted = []
    for ctx in (context, browser_context_two):
        page = ctx.new_page()
        page.goto(link["url"])
        [session] = landing(page.url)[2]["hello_session"]
        minted.append(session)
    assert minted[0] != minted[1]
    sessions = private.get(f"/v1/profiles/{profile}/sessions").json()["data"]
    assert sorted(s["id"] for s in sessions) == sorted(minted)
    assert linker.get(f"/v1/links/{link['id']}").json()["clicks"] == 2


@pytest.fixture
def browser_context_two(context: BrowserContext) -> Iterator[BrowserContext]:
    """A second, independent browser profile (another person's phone)."""
    assert context.browser is not None
    other = context.browser.new_context()
    other.set_default_timeout(15_000)
    yield other
    other.close()
