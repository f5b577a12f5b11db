"""Profiles over HTTP: §9.3.1-§9.3.4, §9.3.7 (I10 find before create, trusted fields only)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import func, select

from hellotext.store.database import Database
from hellotext.store.schema import profiles
from tests.conftest import Tenant, assert_error


def unique_email() -> str:
    return f"u{uuid.uuid4().hex[:12]}@example.com"


def unique_phone() -> str:
    return "+5989" + str(uuid.uuid4().int)[:9]


def test_create_empty_profile_9_3_1(private: httpx.Client) -> None:
    response = private.post("/v1/profiles")
    assert response.status_code == 201
    body = response.json()
    assert body["type"] == "profile"
    for key in ("first_name", "last_name", "email", "phone", "reference"):
        assert body[key] is None
    assert body["properties"] == {} and body["traits"] == {} and body["identities"] == []
    assert body["unverified"] == {"email": None, "phone": None, "name": None}
    assert isinstance(body["created_at"], int) and isinstance(body["updated_at"], int)
    assert response.headers["cache-control"] == "no-store"


def test_create_normalises_and_reads_back_9_3_3(private: httpx.Client) -> None:
    email = unique_email()
    created = private.post(
        "/v1/profiles",
        json={
            "first_name": "John",
            "last_name": "Doe",
            "email": {"primary": "  " + email.upper()},
            "phone[mobile]": "+598 (99) 123-456",
            "reference": f"wp-{uuid.uuid4().hex[:6]}",
            "properties": {"plan": "gold"},
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["email"] == email
    assert body["phone"] == "+59899123456"
    shown = private.get(f"/v1/profiles/{body['id']}")
    assert shown.status_code == 200
    assert shown.json() == body


def test_create_matches_by_email_and_merges_i10(private: httpx.Client) -> None:
    email = unique_email()
    first = private.post("/v1/profiles", json={"email": email, "first_name": "Ann", "properties": {"a": 1}})
    assert first.status_code == 201
    second = private.post(
        "/v1/profiles",
        json={
            "email": email.upper(),
            "first_name": "Other",
            "last_name": "Lee",
            "properties": {"a": 2, "b": 3},
        },
    )
    assert second.status_code == 200
    body = second.json()
    assert body["id"] == first.json()["id"]
    assert (body["first_name"], body["last_name"]) == ("Ann", "Lee")
    assert body["properties"] == {"a": 1, "b": 3}


def test_create_matches_by_phone_i10(private: httpx.Client) -> None:
    phone = unique_phone()
    first = private.post("/v1/profiles", json={"phone": phone})
    second = private.post("/v1/profiles", json={"phone": {"mobile": phone}, "email": unique_email()})
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["email"] is not None


def test_email_and_phone_of_two_profiles_9_3_1(
    private: httpx.Client, database: Database, tenant: Tenant
) -> None:
    email, phone = unique_email(), unique_phone()
    private.post("/v1/profiles", json={"email": email})
    private.post("/v1/profiles", json={"phone": phone})
    before = count_profiles(database, tenant)
    response = private.post("/v1/profiles", json={"email": email, "phone": phone, "first_name": "X"})
    assert_error(response, 422, "parameter_not_unique", "phone")
    assert count_profiles(database, tenant) == before


def test_reference_owner_rule_9_3_1(private: httpx.Client) -> None:
    ref = f"r-{uuid.uuid4().hex[:8]}"
    private.post("/v1/profiles", json={"reference": ref})
    assert_error(
        private.post("/v1/profiles", json={"reference": ref}), 422, "parameter_not_unique", "reference"
    )
    assert_error(
        private.post("/v1/profiles", json={"email": unique_email(), "reference": ref}),
        422,
        "parameter_not_unique",
        "reference",
    )


def test_create_validation_9_3_1(private: httpx.Client) -> None:
    assert_error(private.post("/v1/profiles", json={"email": "nope"}), 422, "invalid", "email")
    assert_error(private.post("/v1/profiles", json={"phone": "099"}), 422, "invalid", "phone")
    assert_error(
        private.post("/v1/profiles", json={"email": "a@b.co", "email[primary]": "c@d.co"}),
        422,
        "ambiguous_parameter",
        "email",
    )
    assert_error(private.post("/v1/profiles", json={"properties": {"": 1}}), 422, "invalid", "properties")
    assert_error(private.post("/v1/profiles", json={"first_name": 1}), 422, "invalid", "first_name")
    assert_error(private.post("/v1/profiles", json={"session": "a b"}), 422, "invalid", "session")


def test_create_with_session_attaches_9_3_1(private: httpx.Client) -> None:
    session = str(uuid.uuid4())
    created = private.post("/v1/profiles", json={"email": unique_email(), "session": session})
    assert created.status_code == 201
    shown = private.get(f"/v1/sessions/{session}").json()
    assert shown["profile"] == created.json()["id"]
    assert shown["attached_via"] == "api"


def test_create_with_session_of_another_profile_is_409_9_3_1(
    private: httpx.Client, database: Database, tenant: Tenant
) -> None:
    session = str(uuid.uuid4())
    owner = private.post("/v1/profiles", json={"session": session}).json()["id"]
    email = unique_email()
    before = count_profiles(database, tenant)
    response = private.post("/v1/profiles", json={"email": email, "session": session})
    assert_error(response, 409, "identity_assigned", "profile")
    assert response.json()["session"]["profile"] == owner
    assert count_profiles(database, tenant) == before  # nothing created
    # A match that is the owner is fine; a match that is not is refused without merging.
    other = private.post("/v1/profiles", json={"email": email}).json()
    refused = private.post("/v1/profiles", json={"email": email, "first_name": "Z", "session": session})
    assert refused.status_code == 409
    assert private.get(f"/v1/profiles/{other['id']}").json()["first_name"] is None


def test_concurrent_creates_make_one_profile_9_3_1(private: httpx.Client) -> None:
    email = unique_email()

    def create(_: int) -> tuple[int, str]:
        response = private.post("/v1/profiles", json={"email": email})
        return response.status_code, response.json()["id"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(create, range(24)))
    statuses = sorted(status for status, _ in results)
    assert statuses.count(201) == 1, statuses
    assert statuses.count(200) == len(results) - 1
    assert len({pid for _, pid in results}) == 1


def test_list_and_filters_9_3_2(private: httpx.Client) -> None:
    email, phone, ref = unique_email(), unique_phone(), f"r-{uuid.uuid4().hex[:8]}"
    a = private.post("/v1/profiles", json={"email": email, "reference": ref}).json()
    b = private.post("/v1/profiles", json={"phone": phone}).json()
    listed = private.get("/v1/profiles").json()
    assert listed["type"] == "list"
    ids = [p["id"] for p in listed["data"]]
    assert ids.index(b["id"]) < ids.index(a["id"])  # newest first
    assert ids_of(private.get("/v1/profiles", params={"email": email.upper()})) == [a["id"]]
    assert ids_of(private.get("/v1/profiles", params={"phone": phone[:4] + " " + phone[4:]})) == [b["id"]]
    assert ids_of(private.get("/v1/profiles", params={"reference": ref})) == [a["id"]]
    assert ids_of(private.get("/v1/profiles", params={"reference": ref, "email": unique_email()})) == []
    assert_error(private.get("/v1/profiles", params={"email": "bad"}), 422, "invalid", "email")
    assert_error(private.get("/v1/profiles", params={"phone": "bad"}), 422, "invalid", "phone")


def test_pagination_1_4(private: httpx.Client) -> None:
    made = [private.post("/v1/profiles", json={"properties": {"n": i}}).json()["id"] for i in range(5)]
    newest_first = list(reversed(made))
    page1 = private.get("/v1/profiles", params={"limit": 2}).json()
    assert [p["id"] for p in page1["data"]] == newest_first[:2] and page1["has_more"] is True
    page2 = private.get("/v1/profiles", params={"limit": 2, "starting_after": newest_first[1]}).json()
    assert [p["id"] for p in page2["data"]] == newest_first[2:4]
    back = private.get("/v1/profiles", params={"limit": 2, "ending_before": newest_first[3]}).json()
    assert [p["id"] for p in back["data"]] == newest_first[1:3]
    assert_error(private.get("/v1/profiles", params={"limit": 0}), 422, "invalid", "limit")
    assert_error(
        private.get("/v1/profiles", params={"starting_after": made[0], "ending_before": made[1]}),
        422,
        "ambiguous_parameter",
        "ending_before",
    )
    assert_error(
        private.get("/v1/profiles", params={"starting_after": "nope"}), 404, "not_found", "starting_after"
    )


def test_show_unknown_9_3_3(private: httpx.Client) -> None:
    assert_error(private.get("/v1/profiles/nope"), 404, "not_found", "id")


def test_patch_9_3_4(private: httpx.Client) -> None:
    created = private.post(
        "/v1/profiles", json={"first_name": "Ann", "email": unique_email(), "properties": {"a": 1, "b": 2}}
    ).json()
    new_email = unique_email()
    response = private.patch(
        f"/v1/profiles/{created['id']}",
        json={
            "first_name": None,
            "email[primary]": new_email,
            "properties": {"a": None, "c": 3},
            "session": "x y",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["first_name"] is None
    assert body["email"] == new_email
    assert body["properties"] == {"b": 2, "c": 3}
    assert private.get(f"/v1/profiles/{created['id']}").json() == body
    cleared = private.patch(f"/v1/profiles/{created['id']}", json={"properties": None, "email": None}).json()
    assert cleared["properties"] == {} and cleared["email"] is None


def test_patch_unique_and_validation_9_3_4(private: httpx.Client) -> None:
    taken_email, taken_phone, taken_ref = unique_email(), unique_phone(), f"r-{uuid.uuid4().hex[:8]}"
    private.post("/v1/profiles", json={"email": taken_email, "phone": taken_phone, "reference": taken_ref})
    mine = private.post("/v1/profiles", json={"first_name": "Me"}).json()["id"]
    for field, value in (("email", taken_email), ("phone", taken_phone), ("reference", taken_ref)):
        response = private.patch(f"/v1/profiles/{mine}", json={field: value, "first_name": "Changed"})
        assert_error(response, 422, "parameter_not_unique", field)
    assert private.get(f"/v1/profiles/{mine}").json()["first_name"] == "Me"  # nothing written
    assert_error(private.patch(f"/v1/profiles/{mine}", json={"phone": "12"}), 422, "invalid", "phone")
    assert_error(private.patch("/v1/profiles/nope", json={"first_name": "x"}), 404, "not_found", "id")


def test_profile_sessions_9_3_7(private: httpx.Client) -> None:
    pid = private.post("/v1/profiles").json()["id"]
    sessions = [str(uuid.uuid4()) for _ in range(3)]
    for s in sessions:
        assert private.patch(f"/v1/sessions/{s}", json={"profile": pid}).status_code == 200
    private.patch(f"/v1/sessions/{uuid.uuid4()}", json={"profile": private.post("/v1/profiles").json()["id"]})
    listed = private.get(f"/v1/profiles/{pid}/sessions").json()
    assert [s["id"] for s in listed["data"]] == list(reversed(sessions))
    assert all(s["type"] == "session" and s["profile"] == pid for s in listed["data"])
    assert private.get("/v1/sessions", params={"profile": pid}).json() == listed
    assert_error(private.get("/v1/profiles/nope/sessions"), 404, "not_found", "id")


def ids_of(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return [p["id"] for p in data]


def count_profiles(database: Database, tenant: Tenant) -> int:
    query = select(func.count()).select_from(profiles).where(profiles.c.business_id == tenant.pk)
    return int(database.read_sync(lambda c: c.execute(query).scalar_one()))
