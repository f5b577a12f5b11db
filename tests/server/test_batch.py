"""``POST /v1/track/events/batch`` through real HTTP (spec http-api §8.3b, with §8.3's rules per event)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from hellotext.store.database import Database
from hellotext.store.schema import sessions
from tests.conftest import Tenant, assert_error
from tests.server.ingest import PAGE, counts, rendered

RECEIVED = {"status": "received"}


def batch(client: httpx.Client, items: Any) -> httpx.Response:
    return client.post("/v1/track/events/batch", json={"events": items})


def entry_errors(entry: dict[str, Any]) -> list[tuple[str, str | None]]:
    for error in entry["errors"]:
        assert error["message"] == error["description"]
    return [(e["type"], e["parameter"]) for e in entry["errors"]]


def test_per_event_results_in_order_8_3b(public: httpx.Client, database: Database, tenant: Tenant) -> None:
    """§8.3b: one result per event, in request order; 422 and 404 cases appear as their entries."""
    items: list[Any] = [
        {**PAGE, "session": "batch-s1"},
        {"action": "product.viewed", "session": "batch-bad", "object_parameters": {}},
        {"action": "never.declared", "session": "batch-404", "user_parameters": {"id": "u404"}},
        "not an object",
        {"action": "product.viewed", "object": "no-such-object", "session": "batch-404b"},
        {"action": "product.viewed", "object_parameters": {"name": "n", "source": "s", "reference": "r"}},
        {"action": "page.viewed", "amount": "1", "currency": "usd"},
    ]
    response = batch(public, items)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == len(items)
    assert results[0] == RECEIVED
    assert entry_errors(results[1]) == [("parameter_invalid_empty", "object_parameters")]
    assert entry_errors(results[2]) == [("not_found", "action")]
    assert entry_errors(results[3]) == [("invalid", None)]
    assert entry_errors(results[4]) == [("not_found", "object")]
    assert results[5] == RECEIVED
    assert set(entry_errors(results[6])) >= {
        ("invalid", "amount"),
        ("invalid", "currency"),
        ("parameter_missing", "url"),
    }
    # Only the accepted events were written; the failing ones wrote nothing (no session, identity ...).
    stored = rendered(database, tenant)
    assert [e["action"] for e in stored] == ["page.viewed", "product.viewed"]
    assert counts(database, tenant) == {
        "events": 2,
        "sessions": 1,
        "objects": 1,
        "identities": 0,
        "profiles": 0,
    }
    assert {e["received_at"] for e in stored} == {stored[0]["received_at"]}  # committed together


def test_each_event_is_attributed_alone_8_3b(
    public: httpx.Client, database: Database, tenant: Tenant
) -> None:
    items = [
        {**PAGE, "session": "s-a", "user_parameters": {"id": "alice"}},
        {**PAGE, "session": "s-a", "user_parameters": {"id": "bob"}},
        {**PAGE, "session": "s-a"},
        {**PAGE, "session": "s-b", "user_parameters": {"id": "alice"}},
        {**PAGE, "user_parameters": {"id": "undefined"}},
    ]
    assert batch(public, items).json()["results"] == [RECEIVED] * 5
    profiles_ = [e["profile"] for e in rendered(database, tenant)]
    assert profiles_[0] == profiles_[3] and profiles_[0] is not None
    assert profiles_[1] not in (None, profiles_[0])
    assert profiles_[2] is None and profiles_[4] is None  # tracking never attaches the session
    assert counts(database, tenant)["identities"] == 2
    assert counts(database, tenant)["profiles"] == 2


def test_first_touch_utm_within_a_batch_5_2(public: httpx.Client, database: Database, tenant: Tenant) -> None:
    items = [
        {**PAGE, "session": "utm-s"},
        {**PAGE, "session": "utm-s", "utm_params": {"source": "first"}},
        {**PAGE, "session": "utm-s", "utm_params": {"source": "second"}},
    ]
    assert batch(public, items).json()["results"] == [RECEIVED] * 3
    utm = database.read_sync(
        lambda conn: conn.execute(
            select(sessions.c.utm).where(sessions.c.business_id == tenant.pk, sessions.c.id == "utm-s")
        ).scalar_one()
    )
    assert json.loads(utm)["source"] == "first"


def test_objects_shared_within_a_batch_7_2(public: httpx.Client, database: Database, tenant: Tenant) -> None:
    params = {"name": "n", "source": "shop", "reference": "sku-9"}
    items = [{"action": "product.viewed", "object_parameters": params}] * 3 + [
        {"action": "product.viewed", "object_parameters": {"name": "loose"}}
    ] * 2
    assert batch(public, items).json()["results"] == [RECEIVED] * 5
    ids = [e["object"]["id"] for e in rendered(database, tenant)]
    assert len(set(ids[:3])) == 1 and len(set(ids)) == 3


def test_idempotency_within_and_across_batches_8_3b(
    public: httpx.Client, database: Database, tenant: Tenant
) -> None:
    """§8.3b: each event keeps its own key: repeats are received and store nothing."""
    first = batch(
        public, [{**PAGE, "id": "k1"}, {**PAGE, "id": "k1", "session": "dup-session"}, {**PAGE, "id": "k2"}]
    )
    assert first.json()["results"] == [RECEIVED] * 3
    assert counts(database, tenant)["events"] == 2
    assert counts(database, tenant)["sessions"] == 0  # the in-batch repeat wrote nothing
    # Key of a single-event request and of an earlier batch.
    assert public.post("/v1/track/events", json={**PAGE, "id": "k3"}).status_code == 200
    again = batch(public, [{**PAGE, "id": "k3"}, {**PAGE, "id": "k2", "session": "x"}, {**PAGE, "id": "k4"}])
    assert again.json()["results"] == [RECEIVED] * 3
    assert sorted(e["client_id"] for e in rendered(database, tenant)) == ["k1", "k2", "k3", "k4"]
    assert counts(database, tenant)["sessions"] == 0
    # A failing event's key is not taken: a later valid event with it is stored.
    mixed = batch(public, [{"action": "nope.nope", "id": "k5"}, {**PAGE, "id": "k5"}])
    assert entry_errors(mixed.json()["results"][0]) == [("not_found", "action")]
    assert mixed.json()["results"][1] == RECEIVED
    assert counts(database, tenant)["events"] == 5


def test_five_hundred_events_8_3b(public: httpx.Client, database: Database, tenant: Tenant) -> None:
    items = [
        {**PAGE, "session": f"s-{i % 37}", "id": f"bulk-{i}", "user_parameters": {"id": f"u-{i % 11}"}}
        for i in range(500)
    ]
    response = batch(public, items)
    assert response.status_code == 200
    assert response.json()["results"] == [RECEIVED] * 500
    assert counts(database, tenant) == {
        "events": 500,
        "sessions": 37,
        "objects": 0,
        "identities": 11,
        "profiles": 11,
    }


def test_batch_envelope_rules_8_3b(public: httpx.Client, database: Database, tenant: Tenant) -> None:
    assert_error(public.post("/v1/track/events/batch", json={}), 422, "parameter_missing", "events")
    assert_error(
        public.post("/v1/track/events/batch", json={"events": None}), 422, "parameter_missing", "events"
    )
    assert_error(batch(public, {"a": 1}), 422, "invalid", "events")
    assert_error(batch(public, "x"), 422, "invalid", "events")
    assert_error(batch(public, []), 422, "parameter_invalid_empty", "events")
    assert_error(batch(public, [PAGE] * 501), 422, "invalid", "events")
    assert counts(database, tenant)["events"] == 0


def test_batch_body_limit_is_one_mebibyte_1_2(
    public: httpx.Client, database: Database, tenant: Tenant
) -> None:
    """§1.2: batch endpoints take up to 1 MiB (more than the 64 KiB of single bodies), no more."""
    blob = "x" * 2000
    items = [{**PAGE, "metadata": {"blob": blob}} for _ in range(100)]  # about 210 KB
    response = batch(public, items)
    assert response.status_code == 200, response.text
    assert counts(database, tenant)["events"] == 100
    too_big = [{**PAGE, "metadata": {"blob": "y" * 4000}} for _ in range(300)]  # about 1.2 MB
    assert_error(batch(public, too_big), 413, "payload_too_large")
    assert counts(database, tenant)["events"] == 100


def test_batch_auth_and_secret_token_2(
    http: httpx.Client, private: httpx.Client, database: Database, tenant: Tenant
) -> None:
    assert_error(http.post("/v1/track/events/batch", json={"events": [PAGE]}), 401, "unauthorized")
    assert batch(private, [PAGE]).json()["results"] == [RECEIVED]
    assert counts(database, tenant)["events"] == 1


def test_batch_tenancy_2(public: httpx.Client, server: str, database: Database, other_tenant: Tenant) -> None:
    """An object id of another business is answered as unknown; nothing is written there."""
    with httpx.Client(
        base_url=server, headers={"Authorization": f"Bearer {other_tenant.public_id}"}
    ) as other:
        params = {"name": "n", "source": "s", "reference": str(uuid.uuid4())}
        assert batch(other, [{"action": "product.viewed", "object_parameters": params}]).status_code == 200
    foreign = rendered(database, other_tenant)[0]["object"]["id"]
    results = batch(public, [{"action": "product.viewed", "object": foreign}]).json()["results"]
    assert entry_errors(results[0]) == [("not_found", "object")]
    assert counts(database, other_tenant)["events"] == 1


def test_batch_answers_after_commit_8_3b(public: httpx.Client, database: Database, tenant: Tenant) -> None:
    """The accepted events are durably committed before the answer: a fresh connection sees all of them."""
    started = time.time()
    assert batch(public, [{**PAGE, "id": f"c-{i}"} for i in range(50)]).status_code == 200
    assert counts(database, tenant)["events"] == 50
    assert all(e["received_at"] >= int(started) for e in rendered(database, tenant))
