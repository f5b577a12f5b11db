"""Hostile values through real HTTP (spec http-api §5.1, §9.5.1, §10, §8.3, §1.4; issue 7 point 1).

Session ids at and past their limits and with forbidden characters, header injection through link
destinations, UTM values and cookies, numbers too large for their fields, NUL in paths and query strings,
and slow bodies against the request deadline. Each refused request must write nothing (every table's rows
of the business compared before and after).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from sqlalchemy import select as sql_select

from hellotext.config import Settings
from hellotext.store.database import Database
from hellotext.store.schema import profiles
from tests.conftest import Tenant, assert_error, create_tenant, drop_database, make_settings
from tests.server.hostile import (
    ENDPOINT_IDS,
    ENDPOINTS,
    RawAnswer,
    Target,
    assert_raw_error,
    bind,
    body_with,
    chunked,
    expect,
    raw_exchange,
    raw_head,
    snapshot,
)
from tests.servers import ServerProcess


@pytest.fixture(scope="module")
def businesses(database: Database) -> dict[str, tuple[Tenant, str]]:
    """One business per endpoint (and one profile in it), created when first needed."""
    return {}


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """One client (and connection pool) for the module."""
    with httpx.Client(timeout=60.0) as shared:
        yield shared


# --------------------------------------------------------------------------------------------------------
# Session ids (§5.1): 1-256 characters in U+0021-U+007E except "," and ";"
# --------------------------------------------------------------------------------------------------------

SESSION_ENDPOINTS = ["acks", "track", "identify", "attribution", "profile_create", "attach_patch"]
BAD_SESSIONS = {
    "257-chars": "s" * 257,
    "semicolon": "a;b",
    "comma": "a,b",
    "space": "a b",
    "leading-space": " abc",
    "tab": "a\tb",
    "non-ascii": "caf\u00e9",
    "snowman": "\u2603",
    "del": "a\x7fb",
    "escaped-control": "a\x01b",
    "cookie-attributes": "hello_session=x; HttpOnly",
    "crlf-cookie": "x\r\nSet-Cookie: a=b",
}


def session_request(target: Target, session: str) -> httpx.Response:
    """Name `session` the way the endpoint takes it (attach: in the path)."""
    name = target.endpoint.name
    if name == "attach_patch":
        path = "/v1/sessions/" + quote(session, safe="")
        assert target.client is not None
        return target.client.patch(
            target.base_url + path, json={"profile": target.profile}, headers=target.auth
        )
    body: dict[str, Any] = {"session": session}
    if name in ("track", "attribution"):
        body.update(action="page.viewed", url="https://a.test/")
    if name == "identify":
        body["user_id"] = "u-1"
    if name == "attribution":
        body["profile"] = target.profile
    return target.send(json.dumps(body).encode())


@pytest.fixture(params=SESSION_ENDPOINTS)
def session_target(
    request: pytest.FixtureRequest,
    server: str,
    database: Database,
    businesses: dict[str, tuple[Tenant, str]],
    client: httpx.Client,
) -> Target:
    """Each endpoint that names a session."""
    return bind(ENDPOINTS[ENDPOINT_IDS.index(request.param)], server, database, businesses, client)


def test_bad_session_ids_are_422_section5_1(session_target: Target) -> None:
    """§5.1: a session id breaking the rule (257 characters, ``;``, ``,``, spaces, non-ASCII, control
    characters, cookie syntax) → 422 invalid (parameter ``session``), nothing written."""
    for name, session in BAD_SESSIONS.items():
        expect(session_request(session_target, session), 422, "invalid", "session", case=name)
    session_target.assert_nothing_written()


def test_session_ids_at_the_edges_are_accepted_section5_1(session_target: Target) -> None:
    """§5.1: 256 characters and any printable ASCII but "," and ";" is a valid id, stored exactly."""
    assert session_target.client is not None
    secret = {"Authorization": f"Bearer {session_target.tenant.token}"}
    for session in ("s" * 256, "hello_session=x", 'q"uote~!', "x" * 255 + "~", "%41", "a"):
        response = session_request(session_target, session)
        assert response.status_code in (200, 201), (session, response.text)
        stored = session_target.client.get(
            session_target.base_url + "/v1/sessions/" + quote(session, safe=""), headers=secret
        )
        assert stored.status_code == 200 and stored.json()["id"] == session, (session, stored.text)


# --------------------------------------------------------------------------------------------------------
# Header injection: link destinations, UTM values, cookies (§9.5.1, §10)
# --------------------------------------------------------------------------------------------------------


@pytest.fixture
def links_target(database: Database, server: str, client: httpx.Client) -> Target:
    """``POST /v1/links`` in a fresh business."""
    tenant = create_tenant(database, name="Hostile links")
    links = ENDPOINTS[ENDPOINT_IDS.index("links")]
    made = Target(links, server, tenant, database, "/v1/links", tenant.token, "", client)
    made.mark()
    return made


INJECTED_DESTINATIONS = [
    "https://shop.example.test/a\r\nSet-Cookie: a=1",
    "https://shop.example.test/a\nLocation: https://evil.test/",
    "https://shop.example.test/a\rX-Injected: 1",
    "https://shop.example.test/?q=1\r\n\r\n<script>",
    "https://shop.example.test/a\tb",
    "https://shop.example.test/a b",
    "https://shop.example.test/\u2028x",
    "https://shop.example.test/\x00",
    "https://evil.test\r\n.shop.example.test/",
]


def test_destinations_with_raw_line_breaks_are_422_section9_5_1(links_target: Target) -> None:
    """§9.5.1: whitespace or control characters in a destination → 422 (``destination``); nothing written.
    In a batch the item is named (``links[1].destination``) and no link is created."""
    assert links_target.client is not None
    for destination in INJECTED_DESTINATIONS:
        response = links_target.send(json.dumps({"destination": destination}).encode())
        expect(response, 422, "invalid", "destination", case=destination)
        batch = {"links": [{"destination": "https://shop.example.test/ok"}, {"destination": destination}]}
        response = links_target.client.post(
            links_target.base_url + "/v1/links/batch", json=batch, headers=links_target.auth
        )
        expect(response, 422, "invalid", "links[1].destination", case=destination)
    links_target.assert_nothing_written()


def click_raw(base_url: str, code: str, extra: str = "") -> RawAnswer:
    host = urlsplit(base_url).netloc
    head = f"GET /l/{code} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0 hostile-test\r\n{extra}"
    answer, _ = raw_exchange(base_url, [(head + "Connection: close\r\n\r\n").encode("latin-1")])
    return answer


def assert_clean_redirect(answer: RawAnswer) -> str:
    assert answer.status == 302, answer
    assert set(answer.headers) <= {
        "date",
        "server",
        "location",
        "cache-control",
        "content-length",
        "connection",
    }, answer.headers
    location = answer.headers["location"]
    assert not any(ch in location for ch in "\r\n\t "), location
    return location


def test_encoded_line_breaks_stay_encoded_in_the_redirect_section10(links_target: Target) -> None:
    """§10: ``%0d%0a`` in a destination (a valid URL) reaches ``Location`` still encoded; no header is
    injected, no cookie set; an encoded ``hello_session`` is replaced by the fresh session."""
    destination = (
        "https://shop.example.test/a%0d%0aSet-Cookie:%20a=1?hello_session=z%0D%0AX-Injected:%201&k=%0a#f%0d"
    )
    created = links_target.send(json.dumps({"destination": destination}).encode())
    assert created.status_code == 201, created.text
    location = assert_clean_redirect(click_raw(links_target.base_url, created.json()["code"]))
    assert location.startswith("https://shop.example.test/a%0d%0aSet-Cookie:%20a=1?hello_session=")
    assert "X-Injected" not in location and location.endswith("&k=%0a#f%0d")


def test_utm_values_with_line_breaks_are_percent_encoded_section10(links_target: Target) -> None:
    """§10: UTM values are appended percent-encoded, so line breaks in them cannot split headers."""
    utm = {"source": "a\r\nSet-Cookie: b=2", "medium": "x\nX-Injected: 1", "campaign": "c\r"}
    created = links_target.send(
        json.dumps({"destination": "https://shop.example.test/", "utm": utm}).encode()
    )
    assert created.status_code == 201, created.text
    location = assert_clean_redirect(click_raw(links_target.base_url, created.json()["code"]))
    assert "utm_source=a%0D%0ASet-Cookie%3A%20b%3D2" in location
    assert "utm_medium=x%0AX-Injected%3A%201" in location and "utm_campaign=c%0D" in location


def test_cookies_sent_to_the_redirect_are_ignored_section10(links_target: Target) -> None:
    """§10: the redirect never sets cookies and mints its own session, whatever cookie-like values come."""
    created = links_target.send(json.dumps({"destination": "https://shop.example.test/"}).encode())
    assert created.status_code == 201
    cookie = "Cookie: hello_session=evil; Path=/; hello_session=x%0d%0aSet-Cookie:%20a=b\r\n"
    location = assert_clean_redirect(click_raw(links_target.base_url, created.json()["code"], cookie))
    session = location.split("hello_session=", 1)[1]
    assert len(session) == 36 and session.count("-") == 4 and session[14] == "4", location


# --------------------------------------------------------------------------------------------------------
# Field-level numbers (§8.3 amount/tracked_at, §1.5 user ids, §1.4 limit)
# --------------------------------------------------------------------------------------------------------

HUGE = "1" + "0" * 400


@pytest.mark.parametrize(
    ("endpoint", "member", "error"),
    [
        ("track", '"amount": 1e16', "amount"),
        ("track", f'"amount": {HUGE}', "amount"),
        ("track", f'"tracked_at": {HUGE}', "tracked_at"),
        ("track", f'"tracked_at": -{HUGE}', "tracked_at"),
        ("track", f'"user_parameters": {{"id": {HUGE}}}', "user_parameters.id"),
        ("attribution", '"amount": 1e16', "amount"),
        ("attribution", f'"tracked_at": {HUGE}', "tracked_at"),
        ("identify", f'"user_id": {HUGE}', "user_id"),
        ("identify", f'"user_id": -{HUGE}', "user_id"),
    ],
)
def test_huge_numbers_in_fields_are_422_section8_3(
    server: str, database: Database, endpoint: str, member: str, error: str
) -> None:
    """§8.3, §1.5: amount over 10^15, tracked_at or user ids with 400 digits → 422 on that field."""
    tenant = create_tenant(database, name="Numbers")
    spec = ENDPOINTS[ENDPOINT_IDS.index(endpoint)]
    base: dict[str, Any] = {"session": "n-1"}
    if endpoint != "identify":
        base.update(action="page.viewed", url="https://a.test/")
    else:
        base["user_id"] = "u-1"
    credential = tenant.token if spec.private else tenant.public_id
    before = snapshot(database, tenant.pk)
    response = httpx.post(
        server + spec.path,
        content=body_with(base, member),
        headers={"Authorization": f"Bearer {credential}", "Content-Type": "application/json"},
        timeout=30.0,
    )
    assert_error(response, 422, "invalid", error)
    assert snapshot(database, tenant.pk) == before
    if endpoint != "track":
        return
    # In a batch the same event is refused alone: 200 with its errors, nothing written (§8.3b).
    batch = httpx.post(
        server + "/v1/track/events/batch",
        content=b'{"events": [' + body_with(base, member) + b"]}",
        headers={"Authorization": f"Bearer {tenant.public_id}", "Content-Type": "application/json"},
        timeout=30.0,
    )
    assert batch.status_code == 200, batch.text
    assert (("invalid", error)) in [(e["type"], e["parameter"]) for e in batch.json()["results"][0]["errors"]]
    assert snapshot(database, tenant.pk) == before


def test_email_that_grows_when_lowercased_section8_5(
    public: httpx.Client, tenant: Tenant, database: Database
) -> None:
    """§8.5: ``email`` ≤ 254 characters, stored lowercased. "İ" (U+0130) lowercases to two characters, so
    200 of them pass a length check made before lowercasing and then overflow the 254-character column:
    500 on PostgreSQL, a 405-character email stored on SQLite. Either 422 or a stored email ≤ 254 is right.
    """
    response = public.post(
        "/v1/public/identifications", json={"user_id": "grows-1", "email": "\u0130" * 200 + "@x.co"}
    )
    assert response.status_code < 500, response.text
    if response.status_code == 422:
        assert_error(response, 422, "invalid", "email")
        return
    stored = database.read_sync(
        lambda conn: conn.execute(
            sql_select(profiles.c.unverified_email).where(profiles.c.business_id == tenant.pk)
        ).scalar_one()
    )
    assert len(stored) <= 254, len(stored)


def test_limit_query_out_of_range_is_422_section1_4(private: httpx.Client) -> None:
    """§1.4: ``limit`` that is not an integer 1-100 (1e400, 400 digits, NaN...) → 422 invalid ``limit``."""
    for limit in ("1e400", HUGE, "-" + HUGE, "NaN", "Infinity", "0", "101", "1.0", "true", "\u0000"):
        for path in ("/v1/profiles", "/v1/links", "/v1/sessions", "/v1/actions"):
            expect(private.get(path, params={"limit": limit}), 422, "invalid", "limit", case=(path, limit))


def test_nul_in_paths_and_queries_section1_2(
    private: httpx.Client, public: httpx.Client, tenant: Tenant, database: Database
) -> None:
    """§1.2 (NUL), §2, §1.4: U+0000 in a path id names nothing (404 ``id``; 422 ``session`` on attach,
    §9.2.1); in a query value it is invalid (422 naming the parameter). Never a 5xx: PostgreSQL text
    cannot hold U+0000, so such a value must not reach a query."""
    profile = private.post("/v1/profiles", json={}).json()["id"]
    before = snapshot(database, tenant.pk)
    for method, path in [
        ("GET", "/v1/profiles/a%00"),
        ("PATCH", "/v1/profiles/a%00"),
        ("DELETE", "/v1/profiles/a%00"),
        ("GET", "/v1/profiles/a%00/events"),
        ("GET", "/v1/profiles/a%00/sessions"),
        ("GET", "/v1/links/a%00"),
        ("GET", "/v1/sessions/a%00"),
    ]:
        expect(private.request(method, path, json={}), 404, "not_found", "id", case=path)
    expect(public.get("/v1/public/businesses/a%00"), 404, "not_found", "id", case="business")
    for method in ("PATCH", "POST"):
        response = private.request(method, "/v1/sessions/a%00", json={"profile": profile})
        expect(response, 422, "invalid", "session", case=method)
    for path, name in [
        ("/v1/links?profile=a%00", "profile"),
        ("/v1/links?campaign=a%00", "campaign"),
        ("/v1/links?starting_after=a%00", "starting_after"),
        ("/v1/profiles?email=a%00%40b.co", "email"),
        ("/v1/profiles?reference=a%00", "reference"),
        ("/v1/profiles?ending_before=%00", "ending_before"),
        ("/v1/sessions?profile=%00", "profile"),
        ("/v1/actions?starting_after=%00", "starting_after"),
        (f"/v1/profiles/{profile}/events?action=%00", "action"),
        (f"/v1/profiles/{profile}/sessions?ending_before=%00", "ending_before"),
        ("/v1/links?x%00=1", "x\x00"),
    ]:
        expect(private.get(path), 422, "invalid", name, case=path)
    assert snapshot(database, tenant.pk) == before


# --------------------------------------------------------------------------------------------------------
# Slow bodies: the request deadline (HELLOTEXT_REQUEST_TIMEOUT, hellotext/server/timeouts.py)
# --------------------------------------------------------------------------------------------------------

DEADLINE = 2


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Database, Settings]]:
    """A server of its own with a 2-second request deadline."""
    settings = make_settings(tmp_path_factory.mktemp("slow"), "slow", request_timeout=DEADLINE)
    db = Database.open(settings)
    proc = ServerProcess(
        settings,
        extra_env={"HELLOTEXT_REQUEST_TIMEOUT": str(DEADLINE)},
        log_path=tmp_path_factory.mktemp("slow-logs") / "server.log",
    ).start()
    try:
        yield proc.url, db, settings
    finally:
        proc.stop()
        db.close()
        drop_database(settings)


@pytest.mark.parametrize(
    ("endpoint", "style"),
    [("acks", "stall"), ("links", "stall"), ("acks", "trickle"), ("links", "chunked-stall")],
)
def test_slow_bodies_are_cut_off_by_the_deadline(
    slow_server: tuple[str, Database, Settings], endpoint: str, style: str
) -> None:
    """A client that sends half a body and stalls, or trickles it a byte at a time, is answered 503
    (or its connection closed) soon after the deadline; nothing is written and the server keeps serving."""
    url, db, _settings = slow_server
    tenant = create_tenant(db, name="Slow")
    spec = ENDPOINTS[ENDPOINT_IDS.index(endpoint)]
    made = Target(spec, url, tenant, db, spec.path, tenant.token if spec.private else tenant.public_id, "")
    made.mark()
    body = json.dumps(
        {"session": "slow-1", "destination": "https://shop.example.test/", "pad": "x" * 60}
    ).encode()
    if style == "chunked-stall":
        head = raw_head(made, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        parts = [head + chunked(body[:40])[: -len(b"0\r\n\r\n")]]
    else:
        head = raw_head(made, {"Content-Type": "application/json", "Content-Length": str(len(body))})
        parts = [head + body[:40]]
        if style == "trickle":
            parts += [body[i : i + 1] for i in range(40, len(body) - 1)]
    answer, _ = raw_exchange(url, parts, pause=0.25, timeout=DEADLINE + 20)
    assert answer.status != -1 and answer.seconds < DEADLINE + 8, answer
    if answer.status:
        assert_raw_error(answer, 503, "server_error")
    time.sleep(0.5)  # a write still in flight would land now
    made.assert_nothing_written()
    assert httpx.get(url + "/health", timeout=10.0).status_code == 200
