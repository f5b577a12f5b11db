"""One headless Chromium (Debian's, driven by Playwright) for every test that needs a browser.

Playwright's sync driver runs an event loop of its own on the main thread: two drivers alive at once
collide, and while one lives `asyncio.run` fails elsewhere. So the driver and the browser are module
fixtures, defined once for tests/browser and tests/sdk (re-exported by tests/conftest.py): they end with
the module that used them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

CHROMIUM = os.environ.get("HELLOTEXT_CHROMIUM", "/usr/bin/chromium")
SHOP = "shop.example.test"
WWW = "www.example.test"
LINKS = "links.example.test"
# Host names of the root-domain table (browser-sdk §5.4), also mapped to 127.0.0.1.
TABLE_HOSTS = [
    "example.com",
    "shop.example.com",
    "www.store.com.br",
    "x.co.uk",
    "mystore.myshopify.com",
    "secure.mystore.myshopify.com",
    "www.abc.de",
]
HOSTS = [SHOP, WWW, LINKS, *TABLE_HOSTS]
LAUNCH_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Test host names resolve to 127.0.0.1, so cookies on a real root domain are exercised.
    "--host-resolver-rules=" + ", ".join(f"MAP {host} 127.0.0.1" for host in HOSTS),
]


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """The Playwright driver."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless (no downloaded browser builds)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (scripts/test does)")
    instance = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
    yield instance
    instance.close()
