"""Browser identification over HTTP: §8.5, §6.3 (I5 never joins by email, I8 session_conflict)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from hellotext.store.database import Database
from hellotext.store.schema import identities
from tests.conftest import Tenant, assert_error


def identify(public: httpx.Client, **body: Any) -> dict[str, Any]:
    response = public.post("/v1/public/identifications", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def identity_profile(database: Database, tenant: Tenant, source: str, user_id: str) -> str | None:
    query = select(identities.c.profile_id).where(
        identities.c.business_id == tenant.pk, identities.c.source == source, identities.c.user_id == user_id
    )
    found: str | None = database.read_sync(lambda c: c.execute(query).scalar())
    return found


def metric(http: httpx.Client, name: str, label: str) -> float:
    text = http.get("/metrics").text
    match = re.search(rf"^{name}\{{{label}\}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_first_call_creates_profile_then_same_profile_i5(
    public: httpx.Client, private: httpx.Client, database: Database, tenant: Tenant
) -> None:
    session = str(uuid.uuid4())
    body = identify(
        public,
        session=session,
        user_id="user_123",
        source="Shopify",
        email="John@Example.com",
        name=" John Doe ",
    )
    assert body == {
        "status": "identified",
        "session": session,
        "session_attached": True,
        "session_conflict": False,
    }
    pid = identity_profile(database, tenant, "shopify", "user_123")
    assert pid is not None
    shown = private.get(f"/v1/sessions/{session}").json()
    assert shown["profile"] == pid and shown["attached_via"] == "identify"
    profile = private.get(f"/v1/profiles/{pid}").json()
    assert profile["identities"] == [{"source": "shopify", "user_id": "user_123"}]
    assert profile["unverified"] == {"email": "john@example.com", "phone": None, "name": "John Doe"}
    # Unverified data never becomes trusted (§6.1).
    assert profile["email"] is None and profile["first_name"] is None
    # Again, with a new session: same profile; the repeat gives the same answer.
    other_session = str(uuid.uuid4())
    identify(public, session=other_session, user_id="user_123", source="shopify")
    assert private.get(f"/v1/sessions/{other_session}").json()["profile"] == pid
    again = identify(public, session=session, user_id="user_123", source="shopify", email="john@example.com")
    assert again == body
    assert identity_profile(database, tenant, "shopify", "user_123") == pid


def test_integer_user_id_and_blank_source_6_2(
    public: httpx.Client, database: Database, tenant: Tenant
) -> None:
    identify(public, user_id=42, source="  ")
    assert identity_profile(database, tenant, "", "42") is not None
    identify(public, user_id="42")
    # Same identity (source "" both times): no second profile.
    assert identity_profile(database, tenant, "", "42") is not None


def test_existing_profile_with_same_email_is_not_joined_i5(
    public: httpx.Client, private: httpx.Client, database: Database, tenant: Tenant
) -> None:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    trusted = private.post("/v1/profiles", json={"email": email, "phone": "+59899123456"}).json()
    session = str(uuid.uuid4())
    body = identify(public, session=session, user_id="u-1", email=email, phone="+59899123456")
    assert body["session_attached"] is True
    pid = identity_profile(database, tenant, "", "u-1")
    assert pid is not None and pid != trusted["id"]
    assert private.get(f"/v1/sessions/{session}").json()["profile"] == pid
    # The trusted profile is untouched and still the only one matching the email.
    assert private.get(f"/v1/profiles/{trusted['id']}").json() == trusted
    listed = private.get("/v1/profiles", params={"email": email}).json()["data"]
    assert [p["id"] for p in listed] == [trusted["id"]]


def test_session_of_another_profile_conflicts_and_stays_i8(
    public: httpx.Client, private: httpx.Client, http: httpx.Client
) -> None:
    owner = private.post("/v1/profiles").json()["id"]
    session = str(uuid.uuid4())
    private.patch(f"/v1/sessions/{session}", json={"profile": owner})
    before = metric(http, "hellotext_identifications_total", 'outcome="conflict"')
    body = identify(public, session=session, user_id="someone-else")
    assert body == {
        "status": "identified",
        "session": session,
        "session_attached": False,
        "session_conflict": True,
    }
    assert private.get(f"/v1/sessions/{session}").json()["profile"] == owner
    assert metric(http, "hellotext_identifications_total", 'outcome="conflict"') == before + 1
    # And again: same answer.
    assert identify(public, session=session, user_id="someone-else") == body


def test_no_session_6_3(public: httpx.Client, http: httpx.Client) -> None:
    before = metric(http, "hellotext_identifications_total", 'outcome="no_session"')
    body = identify(public, user_id="lonely", session="undefined")
    assert body == {
        "status": "identified",
        "session": None,
        "session_attached": False,
        "session_conflict": False,
    }
    assert metric(http, "hellotext_identifications_total", 'outcome="no_session"') == before + 1


def test_known_identity_updates_unverified_and_merges_traits_6_3(
    public: httpx.Client, private: httpx.Client, database: Database, tenant: Tenant
) -> None:
    identify(public, user_id="t-1", email="a@example.com", name="Ann", plan="gold", age=30)
    identify(public, user_id="t-1", email="  ", phone=" +598 99 ", plan="silver", city="Montevideo")
    pid = identity_profile(database, tenant, "", "t-1")
    profile = private.get(f"/v1/profiles/{pid}").json()
    assert profile["unverified"] == {"email": "a@example.com", "phone": "+598 99", "name": "Ann"}
    assert profile["traits"] == {"plan": "silver", "age": 30, "city": "Montevideo"}


def test_metrics_attached_and_already_attached_11(public: httpx.Client, http: httpx.Client) -> None:
    attached = metric(http, "hellotext_identifications_total", 'outcome="attached"')
    already = metric(http, "hellotext_identifications_total", 'outcome="already_attached"')
    via = metric(http, "hellotext_sessions_attached_total", 'via="identify"')
    session = str(uuid.uuid4())
    identify(public, session=session, user_id="m-1")
    identify(public, session=session, user_id="m-1")
    assert metric(http, "hellotext_identifications_total", 'outcome="attached"') == attached + 1
    assert metric(http, "hellotext_identifications_total", 'outcome="already_attached"') == already + 1
    assert metric(http, "hellotext_sessions_attached_total", 'via="identify"') == via + 1


def test_validation_8_5(public: httpx.Client, private: httpx.Client) -> None:
    url = "/v1/public/identifications"
    assert_error(public.post(url, json={}), 422, "parameter_missing", "user_id")
    assert_error(public.post(url, json={"user_id": " "}), 422, "parameter_invalid_empty", "user_id")
    assert_error(public.post(url, json={"user_id": "undefined"}), 422, "invalid", "user_id")
    assert_error(public.post(url, json={"user_id": 0}), 422, "invalid", "user_id")
    assert_error(public.post(url, json={"user_id": {"a": 1}}), 422, "invalid", "user_id")
    assert_error(public.post(url, json={"user_id": "x" * 257}), 422, "invalid", "user_id")
    assert_error(public.post(url, json={"user_id": "u", "email": 1}), 422, "invalid", "email")
    assert_error(public.post(url, json={"user_id": "u", "phone": "1" * 33}), 422, "invalid", "phone")
    assert_error(public.post(url, json={"user_id": "u", "name": []}), 422, "invalid", "name")
    assert_error(public.post(url, json={"user_id": "u", "source": 7}), 422, "invalid", "source")
    assert_error(public.post(url, json={"user_id": "u", "session": "a;b"}), 422, "invalid", "session")
    # A secret token of the same business may call public endpoints too (§2).
    assert private.post(url, json={"user_id": "by-token"}).status_code == 200


def test_cors_on_identification_4(public: httpx.Client) -> None:
    response = public.post(
        "/v1/public/identifications", json={"user_id": "c-1"}, headers={"Origin": "https://shop.example.com"}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://shop.example.com"
    preflight = public.options(
        "/v1/public/identifications",
        headers={"Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
