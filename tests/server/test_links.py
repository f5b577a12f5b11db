"""Short links through real HTTP and the database (spec S7, http-api §9.5 and §10)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select

from hellotext.store import codec
from hellotext.store.database import Database
from hellotext.store.events import event_objects
from hellotext.store.profiles import insert_profile
from hellotext.store.schema import events, links, profiles, sessions
from tests.conftest import Tenant, assert_error, make_settings
from tests.servers import ServerProcess

BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
UTM = {"source": "hellotext", "medium": "sms", "campaign": "spring"}
CODE_RE = re.compile(r"[0-9A-Za-z]{8}")


def new_profile(db: Database, tenant: Tenant) -> str:
    return db.write_sync(lambda c: insert_profile(c, tenant.pk, time.time()))


def count(db: Database, table: Any, tenant: Tenant) -> int:
    value: int = db.read_sync(
        lambda c: c.execute(
            select(func.count()).select_from(table).where(table.c.business_id == tenant.pk)
        ).scalar()
    )
    return value


def counts(db: Database, tenant: Tenant) -> tuple[int, int, int, int]:
    """(links, sessions, events, total clicks) of the tenant."""
    clicks = db.read_sync(
        lambda c: c.execute(
            select(func.coalesce(func.sum(links.c.clicks), 0)).where(links.c.business_id == tenant.pk)
        ).scalar()
    )
    return count(db, links, tenant), count(db, sessions, tenant), count(db, events, tenant), int(clicks)


def session_row(db: Database, tenant: Tenant, session: str) -> Any:
    return db.read_sync(
        lambda c: c.execute(
            select(sessions).where(sessions.c.business_id == tenant.pk, sessions.c.id == session)
        ).first()
    )


def session_events(db: Database, tenant: Tenant, session: str) -> list[dict[str, Any]]:
    """The session's stored events, rendered as the API's event object (effective profile, §6.5)."""

    def read(conn: Any) -> list[dict[str, Any]]:
        rows = list(
            conn.execute(
                select(events).where(events.c.business_id == tenant.pk, events.c.session_id == session)
            )
        )
        return event_objects(conn, tenant.pk, rows)

    return db.read_sync(read)


def create(private: httpx.Client, **body: Any) -> dict[str, Any]:
    response = private.post("/v1/links", json=body)
    assert response.status_code == 201, response.text
    link: dict[str, Any] = response.json()
    return link


def click(http: httpx.Client, code: str, agent: str = BROWSER) -> httpx.Response:
    return http.get(f"/l/{code}", headers={"User-Agent": agent})


def hello_session(location: str) -> str:
    found = re.findall(r"[?&]hello_session=([^&#]*)", location)
    assert len(found) == 1, location
    value: str = found[0]
    return value


# --- Creating links (§9.5.1) ----------------------------------------------------------------------


def test_create_link_section9_5_1(
    private: httpx.Client, server: str, database: Database, tenant: Tenant
) -> None:
    profile = new_profile(database, tenant)
    response = private.post(
        "/v1/links",
        json={
            "destination": "https://shop.example.com/sale?ref=sms#top",
            "profile": profile,
            "campaign": "spring",
            "utm": UTM,
        },
    )
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    link = response.json()
    assert CODE_RE.fullmatch(link["code"])
    assert link["url"] == f"{server}/l/{link['code']}"
    assert link == {
        "id": link["id"],
        "type": "link",
        "code": link["code"],
        "url": link["url"],
        "destination": "https://shop.example.com/sale?ref=sms#top",
        "profile": profile,
        "campaign": "spring",
        "utm": UTM,
        "clicks": 0,
        "created_at": link["created_at"],
    }
    assert isinstance(link["created_at"], int) and abs(link["created_at"] - time.time()) < 60
    assert len(link["id"]) <= 64


def test_create_link_minimal_has_nulls_section1_3(private: httpx.Client) -> None:
    link = create(private, destination="http://example.com")
    assert (link["profile"], link["campaign"], link["utm"], link["clicks"]) == (None, None, None, 0)
    partial = create(private, destination="http://example.com", utm={"source": "x"})
    assert partial["utm"] == {"source": "x", "medium": None, "campaign": None}


def test_codes_are_distinct_section9_5_1(private: httpx.Client) -> None:
    codes = {create(private, destination="https://x.test/")["code"] for _ in range(20)}
    assert len(codes) == 20


HOSTILE = [
    "javascript:alert(document.cookie)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "//evil.example/",
    "https:\\\\evil.example",
    "https://shop.example\\@evil.example/",
    "https://user:pass@shop.example/",
    "https://shop.example@evil.example/",
    "https://shop.example/" + "a" * 2048,
    "https://shop.example/\r\nSet-Cookie: a=1",
    "https://shop.example/\u0085",
    "https://shop.example/a b",
    "ftp://shop.example/",
    "https:///evil.example",
]


@pytest.mark.parametrize("destination", HOSTILE)
def test_hostile_destinations_refused_nothing_written_section9_5_1(
    private: httpx.Client, database: Database, tenant: Tenant, destination: str
) -> None:
    assert_error(private.post("/v1/links", json={"destination": destination}), 422, "invalid", "destination")
    assert counts(database, tenant) == (0, 0, 0, 0)


def test_own_short_link_refused_section9_5_1(
    private: httpx.Client, server: str, database: Database, tenant: Tenant
) -> None:
    assert_error(
        private.post("/v1/links", json={"destination": f"{server}/l/abcdefgh"}), 422, "invalid", "destination"
    )
    assert_error(
        private.post("/v1/links", json={"destination": f"{server}/x/../%6C/abcdefgh"}),
        422,
        "invalid",
        "destination",
    )
    # Behind a TLS-terminating proxy the public scheme differs from what the server sees.
    https = server.replace("http://", "https://")
    assert_error(
        private.post("/v1/links", json={"destination": f"{https}/l/abcdefgh"}), 422, "invalid", "destination"
    )
    assert count(database, links, tenant) == 0


@pytest.mark.parametrize(
    ("body", "type_", "parameter"),
    [
        ({}, "parameter_missing", "destination"),
        ({"destination": ""}, "parameter_invalid_empty", "destination"),
        ({"destination": 42}, "invalid", "destination"),
        ({"destination": "https://x.test", "campaign": "c" * 257}, "invalid", "campaign"),
        ({"destination": "https://x.test", "profile": 7}, "invalid", "profile"),
        ({"destination": "https://x.test", "utm": {"term": "t"}}, "invalid", "utm.term"),
        ({"destination": "https://x.test", "utm": {"source": 1}}, "invalid", "utm.source"),
        ({"destination": "https://x.test", "utm": ["x"]}, "invalid", "utm"),
    ],
)
def test_link_fields_validated_section9_5_1(
    private: httpx.Client,
    database: Database,
    tenant: Tenant,
    body: dict[str, Any],
    type_: str,
    parameter: str,
) -> None:
    assert_error(private.post("/v1/links", json=body), 422, type_, parameter)
    assert count(database, links, tenant) == 0


def test_unknown_or_foreign_profile_is_404_section2(
    private: httpx.Client, database: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    foreign = new_profile(database, other_tenant)
    for profile in ("nope", foreign):
        response = private.post("/v1/links", json={"destination": "https://x.test", "profile": profile})
        assert_error(response, 404, "not_found", "profile")
    assert count(database, links, tenant) == 0


def test_validation_before_lookup_section3_3(private: httpx.Client) -> None:
    response = private.post("/v1/links", json={"destination": "javascript:x", "profile": "nope"})
    assert_error(response, 422, "invalid", "destination")


def test_link_endpoints_need_secret_token_section2(
    public: httpx.Client, http: httpx.Client, tenant: Tenant
) -> None:
    for client in (public, http):
        assert_error(client.post("/v1/links", json={"destination": "https://x.test"}), 401, "unauthorized")
        assert_error(client.get("/v1/links"), 401, "unauthorized")
        assert_error(client.post("/v1/links/batch", json={"links": []}), 401, "unauthorized")
        assert_error(client.get("/v1/links/whatever"), 401, "unauthorized")


def test_private_link_routes_refuse_options_section4(private: httpx.Client) -> None:
    response = private.options(
        "/v1/links", headers={"Origin": "https://a.test", "Access-Control-Request-Method": "POST"}
    )
    assert_error(response, 405, "not_allowed")
    assert "access-control-allow-origin" not in response.headers


def test_single_body_limit_section1_2(private: httpx.Client) -> None:
    body = b'{"destination": "https://x.test", "pad": "' + b"x" * 70_000 + b'"}'
    response = private.post("/v1/links", content=body, headers={"Content-Type": "application/json"})
    assert_error(response, 413, "payload_too_large")


# --- Batches (§9.5.2) -----------------------------------------------------------------------------


def test_batch_creates_in_request_order_section9_5_2(
    private: httpx.Client, database: Database, tenant: Tenant
) -> None:
    profile = new_profile(database, tenant)
    items = [
        {"destination": "https://x.test/0", "profile": profile, "campaign": "a"},
        {"destination": "https://x.test/1", "utm": UTM},
        {"destination": "https://x.test/2"},
    ]
    response = private.post("/v1/links/batch", json={"links": items})
    assert response.status_code == 201, response.text
    created = response.json()["links"]
    assert [link["destination"] for link in created] == [i["destination"] for i in items]
    assert created[0]["profile"] == profile and created[0]["campaign"] == "a"
    assert created[1]["utm"] == UTM
    assert len({link["code"] for link in created}) == 3
    assert all(link["type"] == "link" and link["clicks"] == 0 for link in created)
    listed = private.get("/v1/links").json()["data"]
    assert [link["id"] for link in listed] == [link["id"] for link in reversed(created)]


def test_batch_all_or_nothing_on_invalid_items_section9_5_2(
    private: httpx.Client, database: Database, tenant: Tenant
) -> None:
    items: list[Any] = [{"destination": f"https://x.test/{i}"} for i in range(6)]
    items[1] = {"destination": "javascript:alert(1)"}
    items[3] = {"destination": "https://x.test", "utm": {"term": "t"}, "profile": "unknown"}
    items[5] = 17
    response = private.post("/v1/links/batch", json={"links": items})
    assert_error(response, 422, "invalid", "links[1].destination")
    assert_error(response, 422, "invalid", "links[3].utm.term")
    assert_error(response, 422, "invalid", "links[5]")
    assert len(response.json()["errors"]) == 3
    assert count(database, links, tenant) == 0


def test_batch_unknown_profile_is_404_nothing_written_section9_5_2(
    private: httpx.Client, database: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = new_profile(database, tenant)
    foreign = new_profile(database, other_tenant)
    items = [
        {"destination": "https://x.test/0", "profile": mine},
        {"destination": "https://x.test/1", "profile": "unknown"},
        {"destination": "https://x.test/2", "profile": foreign},
        {"destination": "https://x.test/3"},
    ]
    response = private.post("/v1/links/batch", json={"links": items})
    assert_error(response, 404, "not_found", "links[1].profile")
    assert_error(response, 404, "not_found", "links[2].profile")
    assert len(response.json()["errors"]) == 2
    assert count(database, links, tenant) == 0


@pytest.mark.parametrize(
    ("body", "type_"),
    [
        ({}, "parameter_missing"),
        ({"links": {"destination": "https://x.test"}}, "invalid"),
        ({"links": []}, "parameter_invalid_empty"),
        ({"links": [{"destination": "https://x.test"}] * 10_001}, "invalid"),
    ],
)
def test_batch_shape_section9_5_2(
    private: httpx.Client, database: Database, tenant: Tenant, body: dict[str, Any], type_: str
) -> None:
    assert_error(private.post("/v1/links/batch", json=body), 422, type_, "links")
    assert count(database, links, tenant) == 0


def test_batch_of_ten_thousand_section9_5_2(
    private: httpx.Client, database: Database, tenant: Tenant
) -> None:
    items = [
        {"destination": f"https://shop.example.test/p/{i}?ref=sms", "campaign": "big"} for i in range(10_000)
    ]
    started = time.perf_counter()
    response = private.post("/v1/links/batch", json={"links": items})
    elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.text[:500]
    created = response.json()["links"]
    assert len(created) == 10_000
    assert [link["destination"] for link in created[:3]] == [i["destination"] for i in items[:3]]
    assert created[-1]["destination"] == items[-1]["destination"]
    assert len({link["code"] for link in created}) == 10_000
    assert count(database, links, tenant) == 10_000
    # Generous bound for a shared 2-core machine; the bench reports the real figure.
    assert elapsed < 30, elapsed


def test_batch_body_limit_is_one_mebibyte_section1_2(
    private: httpx.Client, database: Database, tenant: Tenant
) -> None:
    # Over 64 KiB is fine on the batch endpoint ...
    items = [{"destination": "https://x.test/" + "a" * 1000} for _ in range(80)]
    assert private.post("/v1/links/batch", json={"links": items}).status_code == 201
    # ... over 1 MiB is not.
    big = [{"destination": "https://x.test/" + "a" * 2000} for _ in range(600)]
    assert_error(private.post("/v1/links/batch", json={"links": big}), 413, "payload_too_large")
    assert count(database, links, tenant) == 80


# --- Reading links (§9.5.3) -----------------------------------------------------------------------


def test_get_link_and_tenancy_section9_5_3(
    private: httpx.Client, server: str, tenant: Tenant, other_tenant: Tenant
) -> None:
    link = create(private, destination="https://x.test/", campaign="c")
    response = private.get(f"/v1/links/{link['id']}")
    assert response.status_code == 200
    assert response.json() == link
    assert_error(private.get("/v1/links/nope"), 404, "not_found", "id")
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {other_tenant.token}"}) as other:
        foreign = other.get(f"/v1/links/{link['id']}")
        assert_error(foreign, 404, "not_found", "id")
        assert foreign.json() == private.get("/v1/links/nope").json()
        assert other.get("/v1/links").json()["data"] == []


def test_list_pagination_section1_4(private: httpx.Client) -> None:
    made = [create(private, destination=f"https://x.test/{i}")["id"] for i in range(5)]
    newest_first = list(reversed(made))
    page = private.get("/v1/links", params={"limit": 2}).json()
    assert page["type"] == "list"
    assert [item["id"] for item in page["data"]] == newest_first[:2]
    assert page["has_more"] is True
    page = private.get("/v1/links", params={"limit": 2, "starting_after": newest_first[1]}).json()
    assert [item["id"] for item in page["data"]] == newest_first[2:4]
    assert page["has_more"] is True
    page = private.get("/v1/links", params={"limit": 2, "starting_after": newest_first[3]}).json()
    assert [item["id"] for item in page["data"]] == newest_first[4:]
    assert page["has_more"] is False
    page = private.get("/v1/links", params={"limit": 2, "ending_before": newest_first[4]}).json()
    assert [item["id"] for item in page["data"]] == newest_first[2:4]
    assert page["has_more"] is True
    assert_error(private.get("/v1/links", params={"limit": 0}), 422, "invalid", "limit")
    assert_error(
        private.get("/v1/links", params={"starting_after": "nope"}), 404, "not_found", "starting_after"
    )


def test_list_filters_section9_5_3(
    private: httpx.Client, database: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    p1 = new_profile(database, tenant)
    p2 = new_profile(database, tenant)
    a = create(private, destination="https://x.test/a", campaign="spring", profile=p1)
    b = create(private, destination="https://x.test/b", campaign="summer", profile=p1)
    c = create(private, destination="https://x.test/c", campaign="spring", profile=p2)
    d = create(private, destination="https://x.test/d")

    def ids(**params: str) -> list[str]:
        response = private.get("/v1/links", params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["data"]]

    assert ids() == [d["id"], c["id"], b["id"], a["id"]]
    assert ids(campaign="spring") == [c["id"], a["id"]]
    assert ids(profile=p1) == [b["id"], a["id"]]
    assert ids(profile=p1, campaign="spring") == [a["id"]]
    assert ids(campaign="Spring") == []
    assert_error(private.get("/v1/links", params={"profile": "nope"}), 404, "not_found", "profile")
    foreign = new_profile(database, other_tenant)
    assert_error(private.get("/v1/links", params={"profile": foreign}), 404, "not_found", "profile")


# --- The redirect (§10, S7) -----------------------------------------------------------------------


def test_click_attaches_fresh_sessions_to_profile_S7(
    private: httpx.Client, http: httpx.Client, database: Database, tenant: Tenant
) -> None:
    profile = new_profile(database, tenant)
    link = create(
        private,
        destination="https://shop.example.com/sale?ref=sms#top",
        profile=profile,
        campaign="spring",
        utm=UTM,
    )
    seen: list[str] = []
    for _ in range(2):
        response = click(http, link["code"])
        assert response.status_code == 302
        assert response.headers["cache-control"] == "no-store"
        assert "set-cookie" not in response.headers
        location = response.headers["location"]
        session = hello_session(location)
        assert location == (
            f"https://shop.example.com/sale?ref=sms&hello_session={session}"
            "&utm_source=hellotext&utm_medium=sms&utm_campaign=spring#top"
        )
        assert str(uuid.UUID(session)) == session and uuid.UUID(session).version == 4
        seen.append(session)
    assert seen[0] != seen[1]
    for session in seen:
        row = session_row(database, tenant, session)
        assert row.profile_id == profile
        assert row.attached_via == "link"
        assert row.attached_at is not None
        utm = codec.loads(row.utm)
        assert {k: utm[k] for k in ("source", "medium", "campaign", "term", "content")} == {
            **UTM,
            "term": None,
            "content": None,
        }
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", utm["observed_at"])
        [event] = session_events(database, tenant, session)
        assert event["action"] == "short_link.clicked"
        assert event["via"] == "link"
        assert event["url"] == "https://shop.example.com/sale?ref=sms#top"
        assert event["profile"] == profile
        assert event["session"] == session
        assert event["metadata"] == {"link": link["id"], "campaign": "spring"}
    assert private.get(f"/v1/links/{link['id']}").json()["clicks"] == 2


def test_click_without_profile_is_anonymous_I1(
    private: httpx.Client, http: httpx.Client, database: Database, tenant: Tenant
) -> None:
    link = create(private, destination="https://shop.example.test/product?x=1#top")
    response = click(http, link["code"])
    assert response.status_code == 302
    session = hello_session(response.headers["location"])
    assert (
        response.headers["location"] == f"https://shop.example.test/product?x=1&hello_session={session}#top"
    )
    row = session_row(database, tenant, session)
    assert row.profile_id is None and row.attached_via is None and row.utm is None
    [event] = session_events(database, tenant, session)
    assert (event["action"], event["via"], event["profile"]) == ("short_link.clicked", "link", None)
    assert event["metadata"] == {"link": link["id"], "campaign": None}
    assert private.get(f"/v1/links/{link['id']}").json()["clicks"] == 1


def test_click_replaces_existing_hello_session_section10(private: httpx.Client, http: httpx.Client) -> None:
    link = create(
        private,
        destination="https://x.test/p?a=1&hello_session=stale&b=2&hello_session=older&utm_source=own#f",
        utm=UTM,
    )
    location = click(http, link["code"]).headers["location"]
    session = hello_session(location)
    assert session != "stale"
    assert location == (
        f"https://x.test/p?a=1&hello_session={session}&b=2&utm_source=own&utm_medium=sms&utm_campaign=spring#f"
    )


@pytest.mark.parametrize(
    "agent",
    [
        "WhatsApp/2.24.1 A",
        "Slackbot-LinkExpanding 1.0",
        "facebookexternalhit/1.1",
        "Mozilla/5.0 (compatible; GOOGLEBOT/2.1)",
    ],
)
def test_preview_bots_change_nothing_section10(
    private: httpx.Client, http: httpx.Client, database: Database, tenant: Tenant, agent: str
) -> None:
    profile = new_profile(database, tenant)
    link = create(private, destination="https://shop.example.com/sale?ref=sms#top", profile=profile, utm=UTM)
    before = counts(database, tenant)
    response = click(http, link["code"], agent)
    assert response.status_code == 302
    assert response.headers["location"] == "https://shop.example.com/sale?ref=sms#top"
    assert response.headers["cache-control"] == "no-store"
    assert counts(database, tenant) == before
    assert before[1:] == (0, 0, 0)


def test_head_changes_nothing_section10(
    private: httpx.Client, http: httpx.Client, database: Database, tenant: Tenant
) -> None:
    link = create(private, destination="https://shop.example.com/?a=1#x", utm=UTM)
    response = http.head(f"/l/{link['code']}", headers={"User-Agent": BROWSER})
    assert response.status_code == 302
    assert response.headers["location"] == "https://shop.example.com/?a=1#x"
    assert counts(database, tenant) == (1, 0, 0, 0)


@pytest.mark.parametrize(
    "code", ["Zz9Zz9Zz", "short", "toolong123", "abc%2Fdef", "a/b", "", "abcdefg-", "%C3%A9bcdefgh"]
)
def test_unknown_codes_get_html_404_section10(
    http: httpx.Client, database: Database, tenant: Tenant, code: str
) -> None:
    for method in ("GET", "HEAD"):
        response = http.request(method, f"/l/{code}", headers={"User-Agent": BROWSER})
        assert response.status_code == 404
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
        assert response.headers["x-content-type-options"] == "nosniff"
        if method == "GET":
            assert "link not found" in response.text.lower()
    assert counts(database, tenant) == (0, 0, 0, 0)


def test_redirect_other_methods_405_section10(
    private: httpx.Client, http: httpx.Client, database: Database, tenant: Tenant
) -> None:
    link = create(private, destination="https://x.test/")
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = http.request(method, f"/l/{link['code']}")
        assert response.status_code == 405
        assert "GET" in response.headers["allow"]
    assert counts(database, tenant) == (1, 0, 0, 0)


def test_redirect_needs_no_credential_and_codes_are_case_sensitive_section10(
    private: httpx.Client, http: httpx.Client
) -> None:
    code = create(private, destination="https://x.test/")["code"]
    response = http.get(f"/l/{code}", headers={"Authorization": "Bearer nope", "User-Agent": BROWSER})
    assert response.status_code == 302
    if code.swapcase() != code:  # an all-digit code has nothing to flip
        assert click(http, code.swapcase()).status_code == 404


def test_non_ascii_destination_redirects_percent_encoded_section10(
    private: httpx.Client, http: httpx.Client
) -> None:
    link = create(private, destination="https://x.test/café?q=ü")
    location = click(http, link["code"]).headers["location"]
    session = hello_session(location)
    assert location == f"https://x.test/caf%C3%A9?q=%C3%BC&hello_session={session}"
    head = http.head(f"/l/{link['code']}")
    assert head.headers["location"] == "https://x.test/caf%C3%A9?q=%C3%BC"


def test_erased_profile_leaves_link_working_section6_6(
    private: httpx.Client, http: httpx.Client, database: Database, tenant: Tenant
) -> None:
    profile = new_profile(database, tenant)
    link = create(private, destination="https://x.test/", profile=profile)
    database.write_sync(
        lambda c: c.execute(
            delete(profiles).where(profiles.c.business_id == tenant.pk, profiles.c.id == profile)
        )
    )
    assert private.get(f"/v1/links/{link['id']}").json()["profile"] is None
    assert private.get("/v1/links").json()["data"][0]["profile"] is None
    response = click(http, link["code"])
    assert response.status_code == 302
    session = hello_session(response.headers["location"])
    assert session_row(database, tenant, session).profile_id is None
    [event] = session_events(database, tenant, session)
    assert event["profile"] is None


def test_click_metrics_section11(
    private: httpx.Client, http: httpx.Client, database: Database, tenant: Tenant
) -> None:
    def value(text: str, series: str) -> float:
        match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
        return float(match.group(1)) if match else 0.0

    names = (
        'hellotext_link_clicks_total{kind="human"}',
        'hellotext_link_clicks_total{kind="bot"}',
        'hellotext_sessions_attached_total{via="link"}',
        'hellotext_events_stored_total{via="link"}',
    )
    before = http.get("/metrics").text
    profile = new_profile(database, tenant)
    link = create(private, destination="https://x.test/", profile=profile)
    anonymous = create(private, destination="https://x.test/")
    click(http, link["code"])
    click(http, anonymous["code"])
    click(http, link["code"], "WhatsApp/2")
    http.head(f"/l/{link['code']}")
    after = http.get("/metrics").text
    deltas = [value(after, n) - value(before, n) for n in names]
    assert deltas == [2, 2, 1, 2]
    assert link["code"] not in after


# --- HELLOTEXT_LINK_BASE_URL ----------------------------------------------------------------------


def test_link_base_url_setting(tmp_path: Path) -> None:
    """HELLOTEXT_LINK_BASE_URL decides `url`, and its /l/ URLs are refused as destinations (§9.5)."""
    from tests.conftest import create_tenant, drop_database

    settings = make_settings(tmp_path, "linkbase", link_base_url="https://links.example.test")
    db = Database.open(settings)
    proc: ServerProcess | None = None
    try:
        tenant = create_tenant(db)
        proc = ServerProcess(settings, log_path=tmp_path / "server.log").start()
        with httpx.Client(base_url=proc.url, headers={"Authorization": f"Bearer {tenant.token}"}) as client:
            response = client.post("/v1/links", json={"destination": "https://shop.example.test/"})
            assert response.status_code == 201
            link = response.json()
            assert link["url"] == f"https://links.example.test/l/{link['code']}"
            assert client.get(f"/v1/links/{link['id']}").json()["url"] == link["url"]
            batch = client.post(
                "/v1/links/batch", json={"links": [{"destination": "https://shop.example.test/"}]}
            )
            assert batch.json()["links"][0]["url"].startswith("https://links.example.test/l/")
            for own in (f"https://links.example.test/l/{link['code']}", f"{proc.url}/l/{link['code']}"):
                assert_error(
                    client.post("/v1/links", json={"destination": own}), 422, "invalid", "destination"
                )
            # The redirect itself answers on whatever host the short domain points at.
            follow = client.get(
                f"/l/{link['code']}", headers={"Host": "links.example.test", "User-Agent": BROWSER}
            )
            assert follow.status_code == 302
    finally:
        if proc is not None:
            proc.stop()
        db.close()
        drop_database(settings)


# --- Click group commit -----------------------------------------------------------------------------


def test_concurrent_clicks_each_get_their_own_session_S7(
    private: httpx.Client, server: str, database: Database, tenant: Tenant
) -> None:
    """Clicks that arrive together are committed together; each still gets its own session and event."""
    from concurrent.futures import ThreadPoolExecutor

    profile = new_profile(database, tenant)
    link = create(private, destination="https://x.test/?a=1", profile=profile, utm=UTM)

    def one(_: int) -> str:
        with httpx.Client(base_url=server, timeout=30) as client:
            response = click(client, link["code"])
            assert response.status_code == 302
            return hello_session(response.headers["location"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        minted = list(pool.map(one, range(48)))
    assert len(set(minted)) == 48
    assert counts(database, tenant) == (1, 48, 48, 48)
    for session in minted[:5]:
        row = session_row(database, tenant, session)
        assert (row.profile_id, row.attached_via) == (profile, "link")
        assert codec.loads(row.utm)["source"] == "hellotext"
        [event] = session_events(database, tenant, session)
        assert event["profile"] == profile


def test_record_clicks_is_all_or_nothing(database: Database, tenant: Tenant) -> None:
    """A batch of clicks whose minted id exists already writes nothing at all (§3.2: no partial write)."""
    from sqlalchemy.exc import IntegrityError

    from hellotext.core.ids import new_session_id
    from hellotext.core.links import LinkSpec
    from hellotext.store.links import Click, create_links, record_clicks
    from hellotext.store.sessions import see_session

    spec = LinkSpec("https://x.test/", None, None, None)
    [link] = database.write_sync(lambda c: create_links(c, tenant.pk, [spec], time.time()))
    taken = new_session_id()
    database.write_sync(lambda c: see_session(c, tenant.pk, taken, time.time()))
    batch = [Click(link, new_session_id(), time.time()), Click(link, taken, time.time())]
    # The click path runs on the driver's cursor, so the driver's own IntegrityError comes through.
    driver_error = database.engines.write.dialect.dbapi.IntegrityError
    with pytest.raises((IntegrityError, driver_error)):
        database.write_sync(lambda c: record_clicks(c, batch))
    assert counts(database, tenant) == (1, 1, 0, 0)
    outcomes = database.write_sync(lambda c: record_clicks(c, batch[:1]))
    assert [o.session for o in outcomes] == [batch[0].session]
    assert counts(database, tenant) == (1, 2, 1, 1)


def test_click_falls_back_to_a_fresh_session_when_the_minted_one_exists(
    database: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Injected failure (a UUID v4 collision cannot be produced for real): the click still succeeds
    with another new session, and the existing session is left as it was (I3)."""
    from hellotext.core.ids import new_session_id
    from hellotext.core.links import LinkSpec
    from hellotext.server import app as app_module
    from hellotext.server.routes import links as routes_links
    from hellotext.store.links import create_links
    from hellotext.store.sessions import attach_session, see_session

    owner = new_profile(database, tenant)
    target = new_profile(database, tenant)
    spec = LinkSpec("https://x.test/", target, None, None)
    [link] = database.write_sync(lambda c: create_links(c, tenant.pk, [spec], time.time()))
    taken = new_session_id()

    def existing(conn: Any) -> None:
        see_session(conn, tenant.pk, taken, time.time())
        attach_session(conn, tenant.pk, taken, owner, "api", time.time())

    database.write_sync(existing)
    minted = iter([taken])
    monkeypatch.setattr(routes_links, "new_session_id", lambda: next(minted, None) or new_session_id())
    application = app_module.create_app(database.settings, database=database)

    async def follow() -> httpx.Response:
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                return await client.get(f"/l/{link.code}", headers={"User-Agent": BROWSER})

    response = asyncio.run(follow())
    assert response.status_code == 302
    session = hello_session(response.headers["location"])
    assert session != taken
    assert session_row(database, tenant, session).profile_id == target
    assert session_row(database, tenant, taken).profile_id == owner
    assert counts(database, tenant)[1:] == (2, 1, 1)


def test_code_collision_is_retried_section9_5_1(
    database: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Injected failure (a collision among 62**8 codes cannot be produced for real): the first draw
    repeats an existing code, the insert fails, nothing stays, and the creation is retried."""
    from hellotext.core.ids import new_code
    from hellotext.core.links import LinkSpec
    from hellotext.server import app as app_module
    from hellotext.store import links as store_links
    from hellotext.store.links import create_links

    spec = LinkSpec("https://x.test/", None, None, None)
    [existing] = database.write_sync(lambda c: create_links(c, tenant.pk, [spec], time.time()))
    draws = iter([existing.code])
    monkeypatch.setattr(store_links, "new_code", lambda n=8: next(draws, None) or new_code(n))
    application = app_module.create_app(database.settings, database=database)

    async def post(body: dict[str, Any], path: str) -> httpx.Response:
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            headers = {"Authorization": f"Bearer {tenant.token}"}
            async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as client:
                return await client.post(path, json=body)

    response = asyncio.run(post({"destination": "https://x.test/retried"}, "/v1/links"))
    assert response.status_code == 201, response.text
    assert response.json()["code"] != existing.code
    draws = iter([existing.code])
    batch = asyncio.run(post({"links": [{"destination": "https://x.test/a"}] * 3}, "/v1/links/batch"))
    assert batch.status_code == 201, batch.text
    assert existing.code not in {link["code"] for link in batch.json()["links"]}
    assert count(database, links, tenant) == 5
