"""hellotext.js against the live server, end to end: pages in Chromium, checks through the private API.

Rules: I2/I4 (attach, retroactive history), I5/I6 (identify, later events attributed), I8 (no shared
sessions across customers), S7 (short links hand their session to the landing page).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.browser.conftest import LINKS, PageServer
from tests.conftest import Tenant

pytestmark = pytest.mark.browser


def timeline(private: httpx.Client, profile: str) -> list[dict[str, Any]]:
    """Every event of a profile's timeline (newest first)."""
    response = private.get(f"/v1/profiles/{profile}/events", params={"limit": 100})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["data"]
    return events


def owner(private: httpx.Client, session: str) -> str | None:
    """The profile a session is attached to."""
    response = private.get(f"/v1/sessions/{session}")
    assert response.status_code == 200, response.text
    profile: str | None = response.json()["profile"]
    return profile


def product(tab: Any, name: str) -> None:
    """Track a product view from the page and require success."""
    answer = tab.run(
        """(name) => Hellotext
             .track('product.viewed', {object_parameters: {name, source: 'shop', reference: name}})
             .then((r) => r.succeeded)""",
        name,
    )
    assert answer is True


def identify(tab: Any, user: str) -> dict[str, Any]:
    answer: dict[str, Any] = tab.run(
        "(u) => Hellotext.identify(u, {source: 'shop'}).then((r) => ({ok: r.succeeded, data: r.data}))", user
    )
    assert answer["ok"] is True, answer
    return answer


def test_i2_i4_anonymous_events_join_the_profile_after_backend_attach(
    open_tab: Any, private: httpx.Client, tenant: Tenant
) -> None:
    """I2/I4: events tracked anonymously on a page appear in the profile's timeline once the backend
    attaches the session with the secret token; later anonymous events join it too."""
    tab = open_tab("/sdk/shop")
    session = tab.init(tenant.public_id)
    assert tab.run("() => Hellotext.track('page.viewed').then((r) => r.succeeded)") is True
    product(tab, "Blue shirt")
    profile = private.post("/v1/profiles", json={"first_name": "Ann"}).json()["id"]
    assert timeline(private, profile) == []
    attached = private.patch(f"/v1/sessions/{session}", json={"profile": profile})
    assert attached.status_code == 200, attached.text
    assert attached.json()["attached_via"] == "api"
    product(tab, "Red shirt")
    events = timeline(private, profile)
    assert [e["action"] for e in events] == ["product.viewed", "product.viewed", "page.viewed"]
    assert {e["session"] for e in events} == {session}
    assert {e["profile"] for e in events} == {profile}
    assert [e["object"]["data"]["name"] for e in events[:2]] == ["Red shirt", "Blue shirt"]
    assert events[-1]["page"]["path"] == "/sdk/shop"


def test_i5_i6_identify_then_later_events_are_the_profiles(
    open_tab: Any, private: httpx.Client, tenant: Tenant
) -> None:
    """I5/I6: identify from the page creates the profile and attaches the session; the events tracked
    before (retroactively) and after are in its timeline, the later ones carrying the identity."""
    tab = open_tab()
    session = tab.init(tenant.public_id)
    product(tab, "before")
    identify(tab, "user_9")
    profile = owner(private, session)
    assert profile is not None
    product(tab, "after")
    events = timeline(private, profile)
    assert [e["object"]["data"]["name"] for e in events] == ["after", "before"]
    assert events[0]["raw"]["user_parameters"] == {"id": "user_9", "source": "shop"}
    assert events[1]["raw"]["user_parameters"] == {}
    # A second page of the same site (another host) is the same customer, with no new request to identify.
    other = open_tab(host="www.example.test")
    assert other.init(tenant.public_id) == session
    assert other.run("() => Hellotext.identify('user_9', {source: 'shop'}).then((r) => r.data)") == {
        "already_identified": True
    }
    product(other, "elsewhere")
    assert timeline(private, profile)[0]["object"]["data"]["name"] == "elsewhere"


def test_i8_two_customers_on_one_browser_never_share_a_session(
    open_tab: Any, private: httpx.Client, tenant: Tenant
) -> None:
    """I8: identify A, forget, identify B on the same browser → B ends on a new session; A's session
    still belongs to A only; no event of B lands in A's timeline."""
    tab = open_tab()
    session_a = tab.init(tenant.public_id)
    identify(tab, "customer_a")
    product(tab, "a's shirt")
    profile_a = owner(private, session_a)
    assert profile_a is not None

    tab.run("() => Hellotext.forget()")
    assert tab.run("() => Hellotext.session") == session_a  # forget keeps the session (I7)
    answer = identify(tab, "customer_b")
    session_b = tab.run("() => Hellotext.session")
    assert session_b != session_a
    assert answer["data"]["session"] == session_b
    assert (answer["data"]["session_attached"], answer["data"]["session_conflict"]) == (True, False)
    sent = tab.posts("/public/identifications")
    assert [(b["user_id"], b["session"]) for b in sent] == [
        ("customer_a", session_a),
        ("customer_b", session_a),  # answered session_conflict: true
        ("customer_b", session_b),
    ]
    product(tab, "b's shirt")

    profile_b = owner(private, session_b)
    assert profile_b is not None and profile_b != profile_a
    assert owner(private, session_a) == profile_a
    sessions_a = private.get(f"/v1/profiles/{profile_a}/sessions").json()["data"]
    assert [s["id"] for s in sessions_a] == [session_a]
    assert [e["object"]["data"]["name"] for e in timeline(private, profile_a)] == ["a's shirt"]
    assert [e["object"]["data"]["name"] for e in timeline(private, profile_b)] == ["b's shirt"]
    assert tab.cookie("hello_session") == session_b


def test_s7_short_link_session_is_adopted_by_the_landing_page(
    open_tab: Any, private: httpx.Client, site: PageServer, server: str, tenant: Tenant
) -> None:
    """S7: a short link click mints a session attached to the link's profile and hands it to the landing
    page in hello_session; the SDK adopts it (S1), so the visit counts for that customer."""
    profile = private.post("/v1/profiles", json={"first_name": "Linked"}).json()["id"]
    link = private.post(
        "/v1/links", json={"destination": site.url("/sdk/landing?ref=sms"), "profile": profile}
    ).json()
    port = urlsplit(server).port
    tab = open_tab("/bare/")
    tab.page.goto(f"http://{LINKS}:{port}/l/{link['code']}")
    landed = urlsplit(tab.page.url)
    assert landed.path == "/sdk/landing"
    [session] = parse_qs(landed.query)["hello_session"]
    assert tab.init(tenant.public_id) == session
    product(tab, "from the link")
    names = [e["action"] for e in timeline(private, profile)]
    assert names[:2] == ["product.viewed", "short_link.clicked"]
