"""hellotext.js identify() and forget() in Chromium: rules I5-I8, browser-sdk §8 and §9."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext

from tests.browser.conftest import UUID4, PageServer, cookies_named
from tests.conftest import Tenant

pytestmark = pytest.mark.browser

IDENTITY = ["hello_user_id", "hello_user_source", "hello_user_identification_hash"]


def identify(tab: Any, user: Any, options: Any = None) -> dict[str, Any]:
    """Run ``Hellotext.identify`` in the page; the Response as a plain dict."""
    result: dict[str, Any] = tab.run(
        """([u, o]) => Hellotext.identify(u, o === null ? undefined : o)
             .then((r) => ({succeeded: r.succeeded, failed: r.failed, data: r.data}))""",
        [user, options],
    )
    return result


def djb2(text: str) -> str:
    """The fallback fingerprint of §8.2, over UTF-16 code units."""
    h = 5381
    units = text.encode("utf-16-le")
    for i in range(0, len(units), 2):
        h = (h * 33 + int.from_bytes(units[i : i + 2], "little")) % 2**32
    return f"v1:{h:08x}"


# --- I5 identify from the browser -----------------------------------------------------------------


def test_i5_identify_sends_one_request_and_attaches_the_session(
    open_tab: Any, private: httpx.Client, tenant: Tenant
) -> None:
    """I5/§8.1: one POST /public/identifications with options, then the SDK's session and user_id;
    the server attaches the session to the identity's profile."""
    tab = open_tab()
    session = tab.init(tenant.public_id)
    answer = identify(tab, "user_123", {"source": "shopify", "email": "john@example.com"})
    assert answer["succeeded"] is True
    assert answer["data"]["status"] == "identified"
    assert answer["data"]["session_attached"] is True
    [body] = tab.posts("/public/identifications")
    assert list(body.items()) == [
        ("source", "shopify"),
        ("email", "john@example.com"),
        ("session", session),
        ("user_id", "user_123"),
    ]
    stored = private.get(f"/v1/sessions/{session}").json()
    assert stored["attached_via"] == "identify"
    profile = private.get(f"/v1/profiles/{stored['profile']}").json()
    assert {"source": "shopify", "user_id": "user_123"} in profile["identities"]


def test_i5_sdk_session_and_user_id_win_over_options(open_tab: Any, site: PageServer, tenant: Tenant) -> None:
    """§8.1 step 2: options cannot override session or user_id; a non-object options counts as {}."""
    tab = open_tab()
    session = tab.init(tenant.public_id, {"apiRoot": site.stand_in(200, {"status": "identified"})})
    identify(tab, "real", {"session": "forged", "user_id": "forged", "name": "Ann"})
    identify(tab, "other", "not an object")
    first, second = tab.posts("/public/identifications")
    assert first == {"session": session, "user_id": "real", "name": "Ann"}
    assert second == {"session": session, "user_id": "other"}


# --- I6 remembered identity -----------------------------------------------------------------------


def test_i6_second_identical_identify_sends_nothing(
    open_tab: Any, context: BrowserContext, tenant: Tenant
) -> None:
    """I6/§8.1 step 3: the same identification again resolves {already_identified: true} without a request;
    new options or a new session send it again."""
    tab = open_tab()
    tab.init(tenant.public_id)
    identify(tab, "user_1", {"source": "shop", "email": "a@example.com"})
    again = identify(tab, "user_1", {"source": "shop", "email": "a@example.com"})
    assert again == {"succeeded": True, "failed": False, "data": {"already_identified": True}}
    # Whitespace, blanks and nulls do not change the canonical form either (§8.2).
    same = identify(tab, "user_1", {"email": " a@example.com ", "source": "shop", "name": "  ", "x": None})
    assert same["data"] == {"already_identified": True}
    assert len(tab.posts("/public/identifications")) == 1
    identify(tab, "user_1", {"source": "shop", "email": "b@example.com"})
    assert len(tab.posts("/public/identifications")) == 2
    tab.run("() => Hellotext.forget({newSession: true})")
    identify(tab, "user_1", {"source": "shop", "email": "b@example.com"})
    assert len(tab.posts("/public/identifications")) == 3


def test_i6_identity_cookie_without_hash_is_sent_again_once(
    open_tab: Any, context: BrowserContext, tenant: Tenant
) -> None:
    """§8.1 step 3: an identity cookie without a hash (the official client's) is re-sent once."""
    context.add_cookies([{"name": "hello_user_id", "value": "old", "domain": ".example.test", "path": "/"}])
    tab = open_tab()
    tab.init(tenant.public_id)
    identify(tab, "old")
    identify(tab, "old")
    assert len(tab.posts("/public/identifications")) == 1
    assert tab.cookie("hello_user_identification_hash") is not None


def test_i6_cookies_and_track_carries_user_parameters(
    open_tab: Any, context: BrowserContext, tenant: Tenant
) -> None:
    """I6/§8.3: identify writes the identity cookies on the root domain; later track calls carry them."""
    tab = open_tab()
    tab.init(tenant.public_id)
    identify(tab, 42, {"source": "shopify"})
    assert tab.cookie("hello_user_id") == "42"
    assert tab.cookie("hello_user_source") == "shopify"
    assert re.fullmatch(r"v1:[0-9a-f]{8}", tab.cookie("hello_user_identification_hash") or "")
    for name in IDENTITY:
        assert [c["domain"] for c in cookies_named(context, name)] == [".example.test"]
    tab.run("() => Hellotext.track('page.viewed')")
    [body] = tab.posts("/track/events")
    assert body["user_parameters"] == {"id": "42", "source": "shopify"}


def test_i6_identify_without_source_deletes_the_old_source(open_tab: Any, tenant: Tenant) -> None:
    """§8.3: an old source never pairs with a new id."""
    tab = open_tab()
    tab.init(tenant.public_id)
    identify(tab, "first", {"source": "shopify"})
    identify(tab, "second", {"source": "  "})
    assert (tab.cookie("hello_user_id"), tab.cookie("hello_user_source")) == ("second", None)
    tab.run("() => Hellotext.track('page.viewed')")
    assert tab.posts("/track/events")[0]["user_parameters"] == {"id": "second"}


def test_i6_failed_identify_changes_no_cookie(open_tab: Any, tenant: Tenant) -> None:
    """§8.1 step 6: a 422 resolves failed with the error list and leaves the identity cookies alone."""
    tab = open_tab()
    tab.init(tenant.public_id)
    identify(tab, "kept", {"source": "shop"})
    before = [tab.cookie(n) for n in IDENTITY]
    answer = identify(tab, "undefined", {"source": "other"})
    assert answer["failed"] is True
    assert ("invalid", "user_id") in {(e["type"], e["parameter"]) for e in answer["data"]["errors"]}
    assert [tab.cookie(n) for n in IDENTITY] == before


SPEC_EXAMPLE = (
    "user_123",
    {"source": "shopify", "email": " John@Example.com ", "name": "", "tags": ["b", "a"]},
)
SPEC_CANONICAL = (
    '{"email":"John@Example.com","session":"abc","source":"shopify","tags":["b","a"],"user_id":"user_123"}'
)


def test_i6_fingerprint_sha256_in_secure_context(open_tab: Any, site: PageServer, tenant: Tenant) -> None:
    """§8.2: on http://127.0.0.1 (crypto.subtle present) the hash is v1: + SHA-256 of the canonical JSON."""
    tab = open_tab(host="127.0.0.1")
    tab.init(tenant.public_id, {"session": "abc", "apiRoot": site.stand_in(200, {}, host="127.0.0.1")})
    assert identify(tab, *SPEC_EXAMPLE)["succeeded"] is True
    expected = "v1:" + hashlib.sha256(SPEC_CANONICAL.encode()).hexdigest()
    assert tab.cookie("hello_user_identification_hash") == expected


def test_i6_fingerprint_fallback_without_subtle(open_tab: Any, site: PageServer, tenant: Tenant) -> None:
    """§8.2: on http://shop.example.test (no crypto.subtle): v1: + 8 hex digits of the djb2 loop."""
    tab = open_tab()
    assert tab.run("() => typeof crypto.subtle") == "undefined"
    tab.init(tenant.public_id, {"session": "abc", "apiRoot": site.stand_in(200, {})})
    identify(tab, *SPEC_EXAMPLE)
    assert tab.cookie("hello_user_identification_hash") == djb2(SPEC_CANONICAL)


def test_i6_fingerprint_canonical_values(open_tab: Any, site: PageServer, tenant: Tenant) -> None:
    """§8.2: dates as ISO strings, nested keys sorted, absent values and empty objects removed, empty
    arrays and array order kept, non-finite numbers and functions absent."""
    tab = open_tab(host="127.0.0.1")
    tab.init(tenant.public_id, {"session": "s", "apiRoot": site.stand_in(200, {}, host="127.0.0.1")})
    tab.run(
        """() => Hellotext.identify('u', {
             when: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)), bad: new Date('nope'),
             nested: {z: 1, a: [' x ', null, {}, {k: ''}], e: {}}, list: [], n: NaN, f: () => 1,
             ok: true, zero: 0})"""
    )
    canonical = {
        "list": [],
        "nested": {"a": ["x"], "z": 1},
        "ok": True,
        "session": "s",
        "user_id": "u",
        "when": "2026-01-02T03:04:05.000Z",
        "zero": 0,
    }
    text = json.dumps(canonical, separators=(",", ":"))
    assert tab.cookie("hello_user_identification_hash") == "v1:" + hashlib.sha256(text.encode()).hexdigest()


# --- I7 forget ------------------------------------------------------------------------------------


def test_i7_forget_removes_identity_cookies_and_keeps_the_session(
    open_tab: Any, context: BrowserContext, site: PageServer, tenant: Tenant
) -> None:
    """I7/§9: forget deletes the three identity cookies (root-domain and host-only copies), keeps
    hello_session, and makes no request."""
    tab = open_tab()
    session = tab.init(tenant.public_id)
    identify(tab, "user_1", {"source": "shop"})
    context.add_cookies([{"name": "hello_user_id", "value": "host-only", "url": site.url("/")}])
    requests_before = len(tab.api_requests())
    assert tab.run("() => Hellotext.forget()") is None
    for name in IDENTITY:
        assert cookies_named(context, name) == []
    assert tab.run("() => Hellotext.session") == session
    assert [c["value"] for c in cookies_named(context, "hello_session")] == [session]
    tab.page.wait_for_timeout(200)
    assert len(tab.api_requests()) == requests_before
    tab.run("() => Hellotext.track('page.viewed')")
    assert tab.posts("/track/events")[-1]["user_parameters"] == {}


def test_i7_forget_new_session_rotates(open_tab: Any, tenant: Tenant) -> None:
    """§9: forget({newSession: true}) also mints a new session, writes it and emits session-set."""
    tab = open_tab()
    session = tab.init(tenant.public_id)
    seen, now = tab.run(
        """() => { const seen = []; Hellotext.on('session-set', (s) => seen.push(s))
             Hellotext.forget({newSession: true}); return [seen, Hellotext.session] }"""
    )
    assert now != session and re.match(UUID4, now)
    assert seen == [now]
    assert tab.cookie("hello_session") == now


def test_i7_forget_before_initialize(open_tab: Any, context: BrowserContext) -> None:
    """§9: callable before initialize (cookies deleted); newSession waits for initialize."""
    context.add_cookies([{"name": "hello_user_id", "value": "u", "domain": ".example.test", "path": "/"}])
    tab = open_tab()
    assert tab.run("() => { Hellotext.forget({newSession: true}); return Hellotext.session === undefined }")
    assert context.cookies() == []


# --- I8 no shared sessions across customers (SDK side; end to end in test_end_to_end.py) -----------


def test_i8_conflict_rotates_once_and_the_second_answer_decides(
    open_tab: Any, site: PageServer, tenant: Tenant
) -> None:
    """I8/§8.4: an answer with session_conflict mints a fresh session and identifies again exactly once,
    even when the second answer also reports a conflict; that answer is the result."""
    tab = open_tab()
    conflict = {"status": "identified", "session_conflict": True}
    first_session = tab.init(tenant.public_id, {"apiRoot": site.stand_in(200, conflict)})
    tab.run("() => { window.seen = []; Hellotext.on('session-set', (s) => seen.push(s)) }")
    answer = identify(tab, "user_b", {"source": "shop"})
    assert answer == {"succeeded": True, "failed": False, "data": conflict}
    first, second = tab.posts("/public/identifications")
    assert first["session"] == first_session
    assert second["session"] != first_session and re.match(UUID4, second["session"])
    assert tab.run("() => [Hellotext.session, seen]") == [second["session"], [second["session"]]]
    assert tab.cookie("hello_user_id") == "user_b"
    # The remembered fingerprint is the one of the payload sent on the new session.
    assert identify(tab, "user_b", {"source": "shop"})["data"] == {"already_identified": True}


def test_i8_no_rotation_without_conflict_or_on_failure(
    open_tab: Any, site: PageServer, tenant: Tenant
) -> None:
    """§8.4: only a 2xx answer with session_conflict === true rotates."""
    tab = open_tab()
    session = tab.init(tenant.public_id, {"apiRoot": site.stand_in(409, {"session_conflict": True})})
    assert identify(tab, "u")["failed"] is True
    assert len(tab.posts("/public/identifications")) == 1
    assert tab.run("() => Hellotext.session") == session
    assert tab.cookie("hello_user_id") is None
