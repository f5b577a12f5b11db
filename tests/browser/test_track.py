"""hellotext.js track() and its Response in Chromium: browser-sdk §7, §10, §11."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import BrowserContext

from tests.browser.conftest import SHOP, PageServer
from tests.conftest import Tenant

pytestmark = pytest.mark.browser

RESPONSE = "(r) => ({succeeded: r.succeeded, failed: r.failed, data: r.data})"


def track(tab: Any, action: Any, params: Any = None) -> dict[str, Any]:
    """Run ``Hellotext.track`` in the page; the Response as a plain dict."""
    result: dict[str, Any] = tab.run(
        f"([a, p]) => Hellotext.track(a, p === null ? undefined : p).then({RESPONSE})", [action, params]
    )
    return result


def identify_cookies(context: BrowserContext, user: str, source: str) -> None:
    context.add_cookies(
        [
            {"name": "hello_user_id", "value": user, "domain": ".example.test", "path": "/"},
            {"name": "hello_user_source", "value": source, "domain": ".example.test", "path": "/"},
        ]
    )


def test_track_body_order_headers_and_answer(
    open_tab: Any, context: BrowserContext, site: PageServer, tenant: Tenant
) -> None:
    """§7.3-§7.5/§11: body keys in order; the SDK's headers win over the caller's; 200 → succeeded."""
    identify_cookies(context, "user_123", "shopify")
    tab = open_tab("/sdk/p/1?utm_source=newsletter&utm_medium=email")
    session = tab.init(tenant.public_id)
    answer = track(
        tab,
        "product.viewed",
        {
            "object_parameters": {"name": "Blue shirt", "reference": "sku-1", "source": "shopify"},
            "amount": 5,
            "headers": {"X-Extra": "1", "authorization": "Bearer someone-else", "content-type": "text/plain"},
        },
    )
    assert answer == {"succeeded": True, "failed": False, "data": {"status": "received"}}
    [request] = tab.api_requests()
    body = request.post_data_json
    assert list(body) == [
        "session",
        "user_parameters",
        "action",
        "object_parameters",
        "amount",
        "page",
        "utm_params",
    ]
    assert body["session"] == session
    assert body["user_parameters"] == {"id": "user_123", "source": "shopify"}
    assert body["page"] == {
        "url": site.url("/sdk/p/1?utm_source=newsletter&utm_medium=email"),
        "title": "Test page",
        "path": "/sdk/p/1",
    }
    assert set(body["utm_params"]) == {"source", "medium", "observed_at"}
    headers = request.all_headers()
    assert headers["authorization"] == f"Bearer {tenant.public_id}"
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    assert headers["x-extra"] == "1"
    assert headers["origin"] == f"http://{SHOP}:{site.port}"
    assert "cookie" not in headers


def test_track_params_override_session_action_and_url(open_tab: Any, tenant: Tenant) -> None:
    """§7.3: params keys come after the SDK's (a caller may override session and action); url stays
    at the top level and also sets page.url and page.path."""
    tab = open_tab("/sdk/here")
    tab.init(tenant.public_id)
    track(tab, "page.viewed", {"session": "override", "action": "page.viewed", "url": "/there/page?q=1"})
    track(tab, "page.viewed", {"url": "http://["})
    first, second = tab.posts("/track/events")
    assert first["session"] == "override"
    assert first["url"] == "/there/page?q=1"
    assert first["page"]["url"] == "/there/page?q=1"
    assert first["page"]["path"] == "/there/page"
    # A url that does not parse keeps the page's own path.
    assert second["page"] == {"url": "http://[", "title": "Test page", "path": "/sdk/here"}


def test_track_user_parameters_explicit_or_anonymous(
    open_tab: Any, context: BrowserContext, tenant: Tenant
) -> None:
    """§7.3: the caller's user_parameters win over the cookies; anonymous → {}; a utm cookie that is not
    an object → {}."""
    tab = open_tab()
    tab.init(tenant.public_id)
    context.add_cookies([{"name": "hello_utm", "value": "[1,2]", "domain": ".example.test", "path": "/"}])
    track(tab, "page.viewed")
    identify_cookies(context, "cookie-user", "shop")
    track(tab, "page.viewed", {"user_parameters": {"id": "given"}})
    context.add_cookies([{"name": "hello_utm", "value": "not json", "domain": ".example.test", "path": "/"}])
    context.clear_cookies(name="hello_user_source")
    track(tab, "page.viewed")
    anonymous, explicit, partial = tab.posts("/track/events")
    assert anonymous["user_parameters"] == {}
    assert anonymous["utm_params"] == {}
    assert explicit["user_parameters"] == {"id": "given"}
    assert partial["user_parameters"] == {"id": "cookie-user"}
    assert partial["utm_params"] == {}


def test_track_non_object_params_count_as_empty(open_tab: Any, tenant: Tenant) -> None:
    """§7: a non-object params is {}."""
    tab = open_tab()
    tab.init(tenant.public_id)
    track(tab, "page.viewed", "not an object")
    [body] = tab.posts("/track/events")
    assert list(body) == ["session", "user_parameters", "action", "page", "utm_params"]


def test_track_keepalive_only_under_60000_bytes_and_no_credentials(
    open_tab: Any, site: PageServer, tenant: Tenant
) -> None:
    """§7.4: credentials 'omit' always; keepalive only when the body's UTF-8 length is under 60,000
    bytes (measured in bytes: 20,500 '€' are 61,500 bytes but 20,500 UTF-16 units)."""
    tab = open_tab(spy=True)
    tab.init(tenant.public_id, {"apiRoot": site.stand_in(200, {"status": "received"})})
    track(tab, "page.viewed", {"metadata": {"note": "small"}})
    track(tab, "page.viewed", {"metadata": {"note": "€" * 20_500}})
    small, large = tab.run("() => window.fetches")
    assert (small["keepalive"], small["credentials"]) == (True, "omit")
    assert (large["hasKeepalive"], large["credentials"]) == (False, "omit")
    # Same origin as the page, yet no cookie went along.
    assert [("cookie" in {k.lower() for k in r["headers"]}) for r in site.received[-2:]] == [False, False]


def test_track_preview_mode_sends_nothing(open_tab: Any, tenant: Tenant) -> None:
    """§7.2: with hello_preview in the URL, track resolves {received: true} and sends no request."""
    tab = open_tab("/sdk/?hello_preview")
    tab.init(tenant.public_id)
    assert track(tab, "page.viewed") == {"succeeded": True, "failed": False, "data": {"received": True}}
    tab.page.wait_for_timeout(200)
    assert tab.api_requests() == []


def test_track_and_identify_before_initialize_reject(open_tab: Any) -> None:
    """§7.1/§8.1/§10.2: before initialize both reject with NotInitializedError, and send nothing."""
    tab = open_tab()
    result = tab.run(
        """async () => { const out = []
             for (const call of [() => Hellotext.track('page.viewed'), () => Hellotext.identify('u1')]) {
               try { await call(); out.push('resolved') }
               catch (e) {
                 out.push([e.name, e instanceof Hellotext.NotInitializedError, e instanceof Error]) } }
             return out }"""
    )
    assert result == [["NotInitializedError", True, True]] * 2
    assert tab.api_requests() == []


def test_track_422_is_failed_with_the_error_list(open_tab: Any, tenant: Tenant) -> None:
    """§10.1: a 422 answer resolves failed === true with the envelope's error list in data."""
    tab = open_tab()
    tab.init(tenant.public_id)
    answer = track(tab, "")
    assert answer["failed"] is True and answer["succeeded"] is False
    assert {(e["type"], e["parameter"]) for e in answer["data"]["errors"]} >= {
        ("parameter_invalid_empty", "action")
    }
    missing = track(tab, "product.viewed")
    assert missing["failed"] is True
    assert ("object_invalid", "object") in {(e["type"], e["parameter"]) for e in missing["data"]["errors"]}


def test_track_unknown_business_is_failed(open_tab: Any) -> None:
    """§10.1: a 401 (unknown public id) is a failed Response; the page can read the envelope (CORS echo)."""
    tab = open_tab()
    tab.init("no-such-business")
    answer = track(tab, "page.viewed")
    assert answer["failed"] is True
    assert answer["data"]["errors"][0]["type"] == "unauthorized"


@pytest.mark.parametrize(
    ("status", "body", "succeeded"),
    [(201, {"status": "received"}, False), (200, None, True), (500, None, False)],
)
def test_track_status_rules(
    open_tab: Any, site: PageServer, tenant: Tenant, status: int, body: Any, succeeded: bool
) -> None:
    """§7.5/§10.1: succeeded iff exactly 200 (201 is failed); a body that is not JSON gives data null."""
    tab = open_tab()
    tab.init(tenant.public_id, {"apiRoot": site.stand_in(status, body)})
    assert track(tab, "page.viewed") == {"succeeded": succeeded, "failed": not succeeded, "data": body}


def test_track_network_failure_resolves_failed(open_tab: Any, tenant: Tenant) -> None:
    """§10.1: fetch rejecting (nothing listens on the port) resolves failed with data null; no retry."""
    from tests.servers import free_port

    tab = open_tab()
    tab.init(tenant.public_id, {"apiRoot": f"http://127.0.0.1:{free_port()}/v1"})
    assert track(tab, "page.viewed") == {"succeeded": False, "failed": True, "data": None}
    assert len(tab.api_requests()) == 1


def test_response_is_read_only(open_tab: Any, tenant: Tenant) -> None:
    """§10.1: succeeded, failed and data cannot be reassigned."""
    tab = open_tab("/sdk/?hello_preview=1")
    tab.init(tenant.public_id)
    result = tab.run(
        """async () => { 'use strict'; const r = await Hellotext.track('x'); let threw = false
             try { r.succeeded = false } catch (e) { threw = e instanceof TypeError }
             try { r.data = 1 } catch (e) {}
             return [threw, r.succeeded, r.failed, r.data] }"""
    )
    assert result == [True, True, False, {"received": True}]
