"""The demo page of ``hellotext serve --demo``, clicked through in Chromium (issue: demo uses the SDK)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import SHOP, UUID4
from tests.conftest import Tenant

pytestmark = pytest.mark.browser


def test_demo_click_through(
    context: BrowserContext, server: str, private: httpx.Client, tenant: Tenant
) -> None:
    """The page shows the session; its buttons track a page view and a product view, identify and forget,
    all through hellotext.js under the page's strict CSP; the server stores what was clicked."""
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.type + ": " + m.text))
    page.goto(f"http://{SHOP}:{urlsplit(server).port}/demo?business={tenant.public_id}")
    expect(page.locator("#session")).to_have_text(re.compile(UUID4))
    session = page.locator("#session").inner_text()
    log = page.locator("#log li")

    page.click("#track-page")
    expect(log.first).to_have_text(re.compile(r'^page\.viewed: ok \{"status":"received"\}$'))
    page.click("#track-product")
    expect(log.first).to_have_text(re.compile(r"^product\.viewed: ok "))

    page.fill("input[name=user_id]", "demo-user")
    page.fill("input[name=source]", "demo")
    page.fill("input[name=email]", "demo@example.com")
    page.click("#identify button[type=submit]")
    expect(log.first).to_have_text(re.compile(r'^identify: ok .*"session_attached":true'))
    expect(page.locator("#identity")).to_have_text("demo-user (demo)")

    page.click("#forget")
    expect(log.first).to_have_text(re.compile("^forget"))
    expect(page.locator("#identity")).to_have_text("anonymous")
    expect(page.locator("#session")).to_have_text(session)

    stored = private.get(f"/v1/sessions/{session}").json()
    assert stored["attached_via"] == "identify"
    profile = private.get(f"/v1/profiles/{stored['profile']}").json()
    assert {"source": "demo", "user_id": "demo-user"} in profile["identities"]
    assert profile["unverified"]["email"] == "demo@example.com"
    events = private.get(f"/v1/profiles/{profile['id']}/events").json()["data"]
    assert [e["action"] for e in events] == ["product.viewed", "page.viewed"]
    assert events[0]["object"]["data"] == {"name": "Blue shirt", "source": "demo", "reference": "sku-1"}
    # No CSP violation and no script error (a missing favicon is the only resource that may fail).
    problems = [m for m in console if m.startswith("error") and "Failed to load resource" not in m]
    assert not [m for m in console if "Content Security Policy" in m] + problems, console


def test_demo_failure_is_shown(context: BrowserContext, server: str) -> None:
    """A failed call (unknown business) is logged as failed with the server's errors."""
    page = context.new_page()
    page.goto(f"{server}/demo?business=no-such-business")
    page.click("#track-page")
    expect(page.locator("#log li.failed")).to_have_text(re.compile(r"^page\.viewed: failed .*unauthorized"))
