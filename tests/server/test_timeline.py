"""The profile timeline over HTTP: §6.5, §9.3.6 (I1 anonymous by default, I4 retroactive history)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from hellotext.store.database import Database
from hellotext.store.schema import identities
from tests.conftest import Tenant, assert_error


def track(public: httpx.Client, session: str | None, at: float, **extra: Any) -> None:
    body: dict[str, Any] = {
        "action": "page.viewed",
        "url": "https://shop.example.com/p",
        "tracked_at": at,
        **extra,
    }
    if session is not None:
        body["session"] = session
    response = public.post("/v1/track/events", json=body)
    assert response.status_code == 200, response.text


def timeline(private: httpx.Client, profile: str, **params: Any) -> dict[str, Any]:
    response = private.get(f"/v1/profiles/{profile}/events", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def marks(body: dict[str, Any]) -> list[tuple[str, bool]]:
    """(url, anonymous) of each event, in the order listed."""
    return [(e["url"], e["anonymous"]) for e in body["data"]]


def test_documented_flow_end_to_end_i1_i4(public: httpx.Client, private: httpx.Client) -> None:
    """Anonymous events on S → backend creates P → attaches S → P's timeline has all of them."""
    session = str(uuid.uuid4())
    base = time.time() - 1000
    for i in range(3):
        track(public, session, base + i, url=f"https://shop.example.com/before/{i}")
    profile = private.post("/v1/profiles", json={"email": f"{uuid.uuid4().hex[:8]}@example.com"}).json()["id"]
    assert timeline(private, profile)["data"] == []  # not attached yet: nothing is P's
    assert private.patch(f"/v1/sessions/{session}", json={"profile": profile}).status_code == 200
    for i in range(2):
        track(public, session, base + 10 + i, url=f"https://shop.example.com/after/{i}")
    attributed = {
        "action": "page.viewed",
        "url": "https://shop.example.com/server",
        "profile": profile,
        "tracked_at": base + 20,
    }
    assert private.post("/v1/attribution/events", json=attributed).status_code == 200
    body = timeline(private, profile)
    assert body["type"] == "list" and body["has_more"] is False
    assert marks(body) == [
        ("https://shop.example.com/server", False),
        ("https://shop.example.com/after/1", False),
        ("https://shop.example.com/after/0", False),
        ("https://shop.example.com/before/2", True),
        ("https://shop.example.com/before/1", True),
        ("https://shop.example.com/before/0", True),
    ]
    for event in body["data"]:
        assert event["type"] == "event" and event["profile"] == profile
        assert isinstance(event["tracked_at"], int) and isinstance(event["received_at"], int)
    assert [e["session"] for e in body["data"]] == [None] + [session] * 5


def test_retroactive_through_every_attached_session_i4(public: httpx.Client, private: httpx.Client) -> None:
    profile = private.post("/v1/profiles").json()["id"]
    s1, s2, stranger = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    base = time.time() - 500
    track(public, s1, base + 1, url="https://a.example.com/1")
    track(public, s2, base + 2, url="https://a.example.com/2")
    track(public, stranger, base + 3, url="https://a.example.com/3")
    private.patch(f"/v1/sessions/{s1}", json={"profile": profile})
    assert marks(timeline(private, profile)) == [("https://a.example.com/1", True)]
    private.patch(f"/v1/sessions/{s2}", json={"profile": profile})
    assert marks(timeline(private, profile)) == [
        ("https://a.example.com/2", True),
        ("https://a.example.com/1", True),
    ]


def test_event_attributed_to_another_profile_stays_there_6_5(
    public: httpx.Client, private: httpx.Client, database: Database, tenant: Tenant
) -> None:
    """An event attributed to B (by identity) riding on A's session is in B's timeline only."""
    a = private.post("/v1/profiles").json()["id"]
    session = str(uuid.uuid4())
    private.patch(f"/v1/sessions/{session}", json={"profile": a})
    user = f"user-{uuid.uuid4().hex[:8]}"
    base = time.time() - 100
    track(public, session, base, url="https://b.example.com/by-identity", user_parameters={"id": user})
    track(public, session, base + 1, url="https://b.example.com/by-session")
    assert marks(timeline(private, a)) == [("https://b.example.com/by-session", False)]
    # The identity's profile: identifying again with the same id finds it (and cannot move the session).
    again = public.post("/v1/public/identifications", json={"user_id": user, "session": session}).json()
    assert again["session_conflict"] is True
    b = owner_of_identity(database, tenant, user)
    assert b != a
    assert marks(timeline(private, b)) == [("https://b.example.com/by-identity", False)]


def test_order_by_tracked_at_then_received_and_pagination_9_3_6(
    public: httpx.Client, private: httpx.Client
) -> None:
    profile = private.post("/v1/profiles").json()["id"]
    session = str(uuid.uuid4())
    private.patch(f"/v1/sessions/{session}", json={"profile": profile})
    base = time.time() - 3000
    # Sent out of order; two share a tracked_at (newest received first among them).
    plan = [(5, "e5"), (1, "e1"), (3, "e3a"), (3, "e3b"), (4, "e4"), (2, "e2")]
    for offset, name in plan:
        track(public, session, base + offset, url=f"https://c.example.com/{name}")
    api = {"action": "page.viewed", "url": "https://c.example.com/e0", "profile": profile, "tracked_at": base}
    private.post("/v1/attribution/events", json=api)
    everything = timeline(private, profile)
    urls = [e["url"].rsplit("/", 1)[1] for e in everything["data"]]
    assert urls == ["e5", "e4", "e3b", "e3a", "e2", "e1", "e0"]
    ids = [e["id"] for e in everything["data"]]
    page1 = timeline(private, profile, limit=3)
    assert [e["id"] for e in page1["data"]] == ids[:3] and page1["has_more"] is True
    page2 = timeline(private, profile, limit=3, starting_after=ids[2])
    assert [e["id"] for e in page2["data"]] == ids[3:6] and page2["has_more"] is True
    page3 = timeline(private, profile, limit=3, starting_after=ids[5])
    assert [e["id"] for e in page3["data"]] == ids[6:] and page3["has_more"] is False
    back = timeline(private, profile, limit=2, ending_before=ids[4])
    assert [e["id"] for e in back["data"]] == ids[2:4] and back["has_more"] is True
    top = timeline(private, profile, limit=5, ending_before=ids[2])
    assert [e["id"] for e in top["data"]] == ids[:2] and top["has_more"] is False


def test_action_filter_9_3_6(public: httpx.Client, private: httpx.Client) -> None:
    profile = private.post("/v1/profiles").json()["id"]
    session = str(uuid.uuid4())
    private.patch(f"/v1/sessions/{session}", json={"profile": profile})
    now = time.time() - 10
    track(public, session, now, url="https://d.example.com/page")
    product = {"name": "Blue shirt", "source": "shop", "reference": "sku-1"}
    response = public.post(
        "/v1/track/events",
        json={
            "action": "product.viewed",
            "session": session,
            "object_parameters": product,
            "tracked_at": now + 1,
        },
    )
    assert response.status_code == 200, response.text
    only = timeline(private, profile, action="product.viewed")["data"]
    assert [e["action"] for e in only] == ["product.viewed"]
    assert only[0]["object"]["object_type"] == "product"
    assert [e["action"] for e in timeline(private, profile, action="page.viewed")["data"]] == ["page.viewed"]
    assert timeline(private, profile, action="cart.added")["data"] == []


def test_errors_9_3_6(public: httpx.Client, private: httpx.Client) -> None:
    profile = private.post("/v1/profiles").json()["id"]
    assert_error(private.get("/v1/profiles/nope/events"), 404, "not_found", "id")
    assert_error(
        private.get(f"/v1/profiles/{profile}/events", params={"limit": 101}), 422, "invalid", "limit"
    )
    assert_error(
        private.get(f"/v1/profiles/{profile}/events", params={"starting_after": "nope"}),
        404,
        "not_found",
        "starting_after",
    )
    assert_error(public.get(f"/v1/profiles/{profile}/events"), 401, "unauthorized")


def owner_of_identity(database: Database, tenant: Tenant, user_id: str) -> str:
    query = select(identities.c.profile_id).where(
        identities.c.business_id == tenant.pk, identities.c.source == "", identities.c.user_id == user_id
    )
    found: str = database.read_sync(lambda c: c.execute(query).scalar_one())
    return found


def test_pages_over_many_sessions_match_the_full_order_9_3_6(
    public: httpx.Client, private: httpx.Client
) -> None:
    """Walking the timeline page by page, both ways, gives the one order: tracked_at desc, then newest."""
    profile = private.post("/v1/profiles").json()["id"]
    sessions = [str(uuid.uuid4()) for _ in range(4)]
    base = time.time() - 10_000
    offsets = [7, 3, 11, 3, 5, 13, 2, 9, 7, 1, 12, 6]
    for i, offset in enumerate(offsets):
        if i % 3 == 2:
            body = {"action": "page.viewed", "url": f"https://e.example.com/{i}", "profile": profile}
            assert (
                private.post("/v1/attribution/events", json={**body, "tracked_at": base + offset}).status_code
                == 200
            )
        else:
            track(public, sessions[i % 4], base + offset, url=f"https://e.example.com/{i}")
    for s in sessions:
        private.patch(f"/v1/sessions/{s}", json={"profile": profile})
    # Expected: by offset descending; equal offsets, the later sent first.
    expected = [
        f"https://e.example.com/{i}" for i in sorted(range(len(offsets)), key=lambda i: (-offsets[i], -i))
    ]
    seen: list[dict[str, Any]] = []
    cursor: dict[str, Any] = {}
    while True:
        page = timeline(private, profile, limit=5, **cursor)
        seen.extend(page["data"])
        if not page["has_more"]:
            break
        cursor = {"starting_after": page["data"][-1]["id"]}
    assert [e["url"] for e in seen] == expected
    backwards: list[dict[str, Any]] = []
    cursor = {"ending_before": seen[-1]["id"]}
    while True:
        page = timeline(private, profile, limit=4, **cursor)
        backwards = page["data"] + backwards
        if not page["has_more"]:
            break
        cursor = {"ending_before": page["data"][0]["id"]}
    assert [e["url"] for e in backwards] == expected[:-1]
    filtered = timeline(private, profile, limit=100, action="page.viewed")["data"]
    assert [e["url"] for e in filtered] == expected
