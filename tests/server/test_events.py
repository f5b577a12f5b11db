"""``POST /v1/track/events`` through real HTTP (spec http-api §7, §8.3, §5.2, §6.4; I1, I4, I9).

Every check of what was written reads the database with a fresh connection (the `database` fixture's read
engine, or a brand-new engine), never the server's own state.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, insert, select

from hellotext.config import Settings
from hellotext.core.events import parse_event
from hellotext.core.ids import new_id
from hellotext.store.actions import DeclaredActions
from hellotext.store.database import Database
from hellotext.store.engine import make_engines
from hellotext.store.events import DuplicateKeyRace, ingest
from hellotext.store.profiles import insert_profile
from hellotext.store.schema import actions, events, profiles
from hellotext.store.sessions import attach_session, get_session, see_session
from tests.conftest import Tenant, assert_error
from tests.server.ingest import PAGE, TABLES, counts, identity_profile, rendered

# --- helpers (database access with fresh connections) --------------------------------------------------


def stored(database: Database, tenant: Tenant) -> list[Any]:
    """The tenant's event rows, oldest first."""
    return database.read_sync(
        lambda conn: list(
            conn.execute(select(events).where(events.c.business_id == tenant.pk).order_by(events.c.seq))
        )
    )


def session_of(database: Database, tenant: Tenant, session_id: str) -> Any:
    return database.read_sync(lambda conn: get_session(conn, tenant.pk, session_id))


def new_profile(database: Database, tenant: Tenant) -> str:
    return database.write_sync(lambda conn: insert_profile(conn, tenant.pk, time.time()))


def attach(database: Database, tenant: Tenant, session_id: str, profile_id: str) -> None:
    def unit(conn: Connection) -> None:
        now = time.time()
        see_session(conn, tenant.pk, session_id, now, touch=False)
        assert attach_session(conn, tenant.pk, session_id, profile_id, "api", now) == profile_id

    database.write_sync(unit)


def declare_directly(database: Database, tenant: Tenant, name: str) -> None:
    """Declare an action behind the server's back (as another server process would)."""
    database.write_sync(
        lambda conn: conn.execute(
            insert(actions).values(business_id=tenant.pk, id=new_id(), name=name, created_at=time.time())
        )
    )


def assert_received(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "received"}
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"


def sid() -> str:
    return str(uuid.uuid4())


# --- success and what is stored -------------------------------------------------------------------------


def test_answer_is_exactly_received_and_durable_8_3(
    public: httpx.Client, settings: Settings, tenant: Tenant
) -> None:
    """§8.3: 200 {"status": "received"} only after commit: a brand-new engine reads the event at once."""
    session = sid()
    assert_received(public.post("/v1/track/events", json={**PAGE, "session": session}))
    engines = make_engines(settings)
    try:
        with engines.read.connect() as conn:
            row = conn.execute(
                select(events.c.action, events.c.session_id, events.c.via).where(
                    events.c.business_id == tenant.pk
                )
            ).one()
    finally:
        engines.dispose()
    assert tuple(row) == ("page.viewed", session, "track")


def test_stored_event_fields_8_3(public: httpx.Client, database: Database, tenant: Tenant) -> None:
    """§8.3 stored event: every field normalised, raw payload as sent (unknown keys and `profile` kept)."""
    session = sid()
    body = {
        "action": "product.viewed",
        "session": session,
        "url": "https://shop.example.com/p/1",
        "page": {"url": "https://shop.example.com/p/1", "title": "Blue shirt", "path": "/p/1"},
        "utm_params": {"source": "newsletter", "medium": "email", "observed_at": "2026-01-01T00:00:00.000Z"},
        "amount": 20,
        "currency": "USD",
        "metadata": {"color": "blue"},
        "tracked_at": "2026-01-01T00:00:00Z",
        "object_parameters": {"name": "Blue shirt", "source": "shopify", "reference": "sku-1", "price": 20},
        "id": "evt-fields-1",
        "profile": "not-honoured-here",
        "custom_key": [1, {"x": None}],
    }
    before = time.time()
    assert_received(public.post("/v1/track/events", json=body))
    (event,) = rendered(database, tenant)
    assert event["type"] == "event"
    assert event["action"] == "product.viewed"
    assert event["profile"] is None
    assert event["session"] == session
    assert event["tracked_at"] == 1_767_225_600
    assert isinstance(event["received_at"], int) and before - 1 <= event["received_at"] <= time.time() + 1
    assert (event["amount"], event["currency"]) == (20, "USD")
    assert event["url"] == "https://shop.example.com/p/1"
    assert event["page"] == body["page"]
    assert event["utm_params"] == {
        "source": "newsletter",
        "medium": "email",
        "campaign": None,
        "term": None,
        "content": None,
        "observed_at": "2026-01-01T00:00:00.000Z",
    }
    assert event["metadata"] == {"color": "blue"}
    assert event["client_id"] == "evt-fields-1"
    assert event["via"] == "track"
    assert event["raw"] == body
    obj = event["object"]
    assert obj["type"] == "object"
    assert (obj["object_type"], obj["source"], obj["reference"]) == ("product", "shopify", "sku-1")
    assert obj["data"] == body["object_parameters"]
    assert isinstance(obj["created_at"], int)


def test_tracked_at_defaults_to_receipt_and_accepts_epoch_8_3(
    public: httpx.Client, database: Database, tenant: Tenant
) -> None:
    before = int(time.time())
    assert_received(public.post("/v1/track/events", json=PAGE))
    assert_received(public.post("/v1/track/events", json={**PAGE, "tracked_at": 1_767_225_600.9}))
    first, second = stored(database, tenant)
    assert before - 1 <= first.tracked_at <= time.time() + 1
    assert first.tracked_at == first.received_at
    assert second.tracked_at == 1_767_225_600.9


def test_event_without_session_is_valid_6_4(public: httpx.Client, database: Database, tenant: Tenant) -> None:
    for absent in (None, "", "undefined", "null"):
        assert_received(public.post("/v1/track/events", json={**PAGE, "session": absent}))
    assert counts(database, tenant)["events"] == 4
    assert counts(database, tenant)["sessions"] == 0
    assert all(row.session_id is None for row in stored(database, tenant))


def test_secret_token_is_accepted_and_cors_applies_2_4(
    private: httpx.Client, public: httpx.Client, http: httpx.Client, database: Database, tenant: Tenant
) -> None:
    """§2: public endpoints take a secret token of the same business too (none → 401); §4: CORS."""
    assert_error(http.post("/v1/track/events", json=PAGE), 401, "unauthorized")
    assert_received(private.post("/v1/track/events", json=PAGE))
    origin = "https://shop.example.com"
    response = public.post("/v1/track/events", json=PAGE, headers={"Origin": origin})
    assert_received(response)
    assert response.headers["access-control-allow-origin"] == origin
    preflight = public.options(
        "/v1/track/events", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204
    assert counts(database, tenant)["events"] == 2


# --- §5.2 session sighting ---------------------------------------------------------------------------------


def test_session_created_seen_and_first_touch_utm_5_2(
    public: httpx.Client, database: Database, tenant: Tenant
) -> None:
    session = sid()
    assert_received(
        public.post("/v1/track/events", json={**PAGE, "session": session, "utm_params": {"source": " "}})
    )
    first = session_of(database, tenant, session)
    assert first is not None and first.profile is None and first.utm_params is None  # blank UTM sets nothing
    time.sleep(1.05)
    utm = {"source": "news", "campaign": "spring"}
    assert_received(public.post("/v1/track/events", json={**PAGE, "session": session, "utm_params": utm}))
    assert_received(
        public.post("/v1/track/events", json={**PAGE, "session": session, "utm_params": {"source": "later"}})
    )
    last = session_of(database, tenant, session)
    assert last.created_at == first.created_at
    assert last.last_seen_at > first.last_seen_at
    assert last.utm_params == {
        "source": "news",
        "medium": None,
        "campaign": "spring",
        "term": None,
        "content": None,
        "observed_at": None,
    }
    assert counts(database, tenant)["sessions"] == 1


def test_concurrent_first_sightings_make_one_session_5_2(
    server: str, database: Database, tenant: Tenant
) -> None:
    session = sid()
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def send() -> None:
        with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {tenant.public_id}"}) as client:
            barrier.wait()
            statuses.append(client.post("/v1/track/events", json={**PAGE, "session": session}).status_code)

    threads = [threading.Thread(target=send) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 10
    assert counts(database, tenant)["sessions"] == 1
    assert counts(database, tenant)["events"] == 10


# --- §6.4 / I9 attribution on the public endpoint ----------------------------------------------------------


def test_i9_explicit_profile_is_not_honoured_on_public_endpoint(
    public: httpx.Client, database: Database, tenant: Tenant
) -> None:
    """I9 rule 1 is private only: on /track/events a `profile` key is raw payload."""
    profile = new_profile(database, tenant)
    session = sid()
    assert_received(public.post("/v1/track/events", json={**PAGE, "session": session, "profile": profile}))
    (event,) = rendered(database, tenant)
    assert event["profile"] is None
    assert event["raw"]["profile"] == profile
    assert session_of(database, tenant, session).profile is None


def test_i9_identity_in_user_parameters(public: httpx.Client, database: Database, tenant: Tenant) -> None:
    """I9 rule 2: unknown identity → new identity and empty profile; the session is NOT attached (§6.4)."""
    session = sid()
    body = {**PAGE, "session": session, "user_parameters": {"id": "user_1", "source": " Shopify "}}
    assert_received(public.post("/v1/track/events", json=body))
    profile = identity_profile(database, tenant, "shopify", "user_1")
    assert profile is not None
    assert counts(database, tenant)["profiles"] == 1
    assert session_of(database, tenant, session).profile is None
    # Known identity: the same profile, nothing new.
    assert_received(
        public.post(
            "/v1/track/events", json={**PAGE, "user_parameters": {"id": "user_1", "source": "shopify"}}
        )
    )
    assert [e["profile"] for e in rendered(database, tenant)] == [profile, profile]
    assert counts(database, tenant)["profiles"] == 1
    assert counts(database, tenant)["identities"] == 1
    # The identity's profile exists (it was created, not merely named).
    assert (
        database.read_sync(
            lambda conn: conn.execute(
                select(profiles.c.id).where(profiles.c.business_id == tenant.pk, profiles.c.id == profile)
            ).scalar()
        )
        == profile
    )


def test_i9_identity_beats_the_session_owner(
    public: httpx.Client, database: Database, tenant: Tenant
) -> None:
    """§6.5: an event attributed to B by identity on a session attached to A belongs to B only."""
    owner = new_profile(database, tenant)
    session = sid()
    attach(database, tenant, session, owner)
    assert_received(
        public.post("/v1/track/events", json={**PAGE, "session": session, "user_parameters": {"id": 42}})
    )
    by_identity = identity_profile(database, tenant, "", "42")
    assert by_identity is not None and by_identity != owner
    (event,) = rendered(database, tenant)
    assert event["profile"] == by_identity
    assert session_of(database, tenant, session).profile == owner  # tracking never moves a session


def test_i9_session_owner(public: httpx.Client, database: Database, tenant: Tenant) -> None:
    """I9 rule 3: an event on an attached session is the owner's (stored NULL, effective = owner)."""
    owner = new_profile(database, tenant)
    session = sid()
    attach(database, tenant, session, owner)
    assert_received(public.post("/v1/track/events", json={**PAGE, "session": session}))
    (event,) = rendered(database, tenant)
    assert event["profile"] == owner
    assert counts(database, tenant)["identities"] == 0


def test_i9_anonymous_then_retroactive_i1_i4(
    public: httpx.Client, database: Database, tenant: Tenant
) -> None:
    """I9 rule 4 / I1: anonymous events keep their session; I4: attaching later adopts them, unrewritten."""
    session = sid()
    assert_received(public.post("/v1/track/events", json={**PAGE, "session": session}))
    (event,) = rendered(database, tenant)
    assert event["profile"] is None and event["session"] == session
    owner = new_profile(database, tenant)
    attach(database, tenant, session, owner)
    (event,) = rendered(database, tenant)
    assert event["profile"] == owner
    assert stored(database, tenant)[0].profile_id is None  # nothing was rewritten


@pytest.mark.parametrize("placeholder", ["undefined", "null", "0", 0, "[object Object]", " "])
def test_placeholder_user_ids_are_ignored_6_2(
    public: httpx.Client, database: Database, tenant: Tenant, placeholder: Any
) -> None:
    assert_received(public.post("/v1/track/events", json={**PAGE, "user_parameters": {"id": placeholder}}))
    assert counts(database, tenant)["identities"] == 0
    assert counts(database, tenant)["profiles"] == 0
    assert rendered(database, tenant)[0]["profile"] is None


# --- §7.1 custom actions -------------------------------------------------------------------------------


def test_custom_action_must_be_declared_7_1(
    public: httpx.Client, private: httpx.Client, database: Database, tenant: Tenant
) -> None:
    assert_error(
        public.post("/v1/track/events", json={"action": "loyalty.joined"}), 404, "not_found", "action"
    )
    assert private.post("/v1/actions", json={"name": "loyalty.joined"}).status_code == 201
    assert_received(public.post("/v1/track/events", json={"action": "loyalty.joined"}))
    # A declaration made elsewhere (another process) is seen at once: negative answers are not cached.
    assert_error(public.post("/v1/track/events", json={"action": "quiz.done"}), 404, "not_found", "action")
    declare_directly(database, tenant, "quiz.done")
    assert_received(public.post("/v1/track/events", json={"action": "quiz.done"}))
    assert [row.action for row in stored(database, tenant)] == ["loyalty.joined", "quiz.done"]


def test_custom_action_with_objects_7_2(public: httpx.Client, database: Database, tenant: Tenant) -> None:
    declare_directly(database, tenant, "ticket.booked")
    assert_error(
        public.post(
            "/v1/track/events", json={"action": "ticket.booked", "object_parameters": {"seat": "A1"}}
        ),
        422,
        "parameter_missing",
        "object_type",
    )
    body = {"action": "ticket.booked", "object_type": "ticket", "object_parameters": {"seat": "A1"}}
    assert_received(public.post("/v1/track/events", json=body))
    assert_received(
        public.post("/v1/track/events", json={"action": "ticket.booked", "order_attributes": {"n": 1}})
    )
    objs = [e["object"] for e in rendered(database, tenant)]
    assert [(o["object_type"], o["data"]) for o in objs] == [("ticket", {"seat": "A1"}), ("order", {"n": 1})]


# --- §7.2 objects ---------------------------------------------------------------------------------------


def test_object_find_or_create_7_2_rule_6(public: httpx.Client, database: Database, tenant: Tenant) -> None:
    first = {"name": "Blue shirt", "source": "shopify", "reference": "sku-1"}
    second = {"name": "Renamed", "source": "shopify", "reference": "sku-1", "price": 3}
    for params in (first, second):
        assert_received(
            public.post("/v1/track/events", json={"action": "product.viewed", "object_parameters": params})
        )
    # Same source and reference, another type: another object.
    assert_received(public.post("/v1/track/events", json={"action": "cart.added", "cart_parameters": first}))
    # Without a reference (or with a blank one), every event makes a new object.
    for _ in range(2):
        body = {
            "action": "product.viewed",
            "object_parameters": {"name": "x", "source": "shopify", "reference": " "},
        }
        assert_received(public.post("/v1/track/events", json=body))
    events_ = rendered(database, tenant)
    ids = [e["object"]["id"] for e in events_]
    assert ids[0] == ids[1]
    assert len(set(ids)) == 4
    assert events_[1]["object"]["data"] == first  # reused unchanged
    assert events_[1]["raw"]["object_parameters"] == second  # the event keeps what it sent
    assert events_[2]["object"]["object_type"] == "cart"
    assert counts(database, tenant)["objects"] == 4


def test_concurrent_find_or_create_makes_one_object_7_2(
    server: str, database: Database, tenant: Tenant
) -> None:
    barrier = threading.Barrier(10)
    statuses: list[int] = []
    body = {
        "action": "product.viewed",
        "object_parameters": {"name": "n", "source": "s", "reference": "race"},
    }

    def send() -> None:
        with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {tenant.public_id}"}) as client:
            barrier.wait()
            statuses.append(client.post("/v1/track/events", json=body).status_code)

    threads = [threading.Thread(target=send) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 10
    assert counts(database, tenant)["objects"] == 1
    assert len({e["object"]["id"] for e in rendered(database, tenant)}) == 1


def test_object_by_id_7_2_rule_4(
    public: httpx.Client, database: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    params = {"name": "Blue", "source": "s", "reference": "r"}
    assert_received(
        public.post("/v1/track/events", json={"action": "product.viewed", "object_parameters": params})
    )
    object_id = rendered(database, tenant)[0]["object"]["id"]
    assert_received(public.post("/v1/track/events", json={"action": "cart.added", "object": object_id}))
    assert_received(public.post("/v1/track/events", json={**PAGE, "object": object_id}))
    assert [e["object"]["id"] for e in rendered(database, tenant)] == [object_id] * 3
    assert_error(
        public.post("/v1/track/events", json={"action": "order.placed", "object": object_id}),
        422,
        "invalid",
        "object",
    )
    assert_error(
        public.post(
            "/v1/track/events", json={"action": "cart.added", "object": object_id, "object_type": "cart"}
        ),
        422,
        "invalid",
        "object",
    )
    assert_error(
        public.post("/v1/track/events", json={"action": "product.viewed", "object": "no-such-object"}),
        404,
        "not_found",
        "object",
    )
    # Tenancy (§2): the other business's object id is answered exactly like a missing one.
    with httpx.Client(
        base_url=str(public.base_url), headers={"Authorization": f"Bearer {other_tenant.public_id}"}
    ) as other:
        missing = other.post(
            "/v1/track/events", json={"action": "product.viewed", "object": "no-such-object"}
        )
        foreign = other.post("/v1/track/events", json={"action": "product.viewed", "object": object_id})
    assert_error(foreign, 404, "not_found", "object")
    assert foreign.json() == missing.json()
    assert counts(database, other_tenant)["events"] == 0


# --- §8.3 idempotency ------------------------------------------------------------------------------------


def test_same_id_twice_stores_one_event_and_writes_nothing_8_3(
    public: httpx.Client, database: Database, tenant: Tenant
) -> None:
    first = {**PAGE, "session": sid(), "id": "evt-1"}
    assert_received(public.post("/v1/track/events", json=first))
    before = counts(database, tenant)
    repeat = {
        "action": "product.viewed",
        "session": sid(),
        "user_parameters": {"id": "someone"},
        "object_parameters": {"name": "n", "source": "s", "reference": "r"},
        "utm_params": {"source": "x"},
        "id": "evt-1",
    }
    assert_received(public.post("/v1/track/events", json=repeat))
    assert counts(database, tenant) == before  # no event, session, object, identity or profile
    assert session_of(database, tenant, repeat["session"]) is None
    # An invalid repeat still gets its 4xx (the key is checked after validation).
    assert_error(public.post("/v1/track/events", json={**first, "amount": "1"}), 422, "invalid", "amount")
    assert_error(
        public.post("/v1/track/events", json={"action": "un.declared", "id": "evt-1"}),
        404,
        "not_found",
        "action",
    )


def test_idempotency_keys_are_per_business_8_3(
    public: httpx.Client, server: str, database: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    assert_received(public.post("/v1/track/events", json={**PAGE, "id": "shared-key"}))
    with httpx.Client(
        base_url=server, headers={"Authorization": f"Bearer {other_tenant.public_id}"}
    ) as other:
        assert_received(other.post("/v1/track/events", json={**PAGE, "id": "shared-key"}))
    assert counts(database, tenant)["events"] == 1
    assert counts(database, other_tenant)["events"] == 1


def test_concurrent_repeats_store_one_event_8_3(server: str, database: Database, tenant: Tenant) -> None:
    """§8.3: check and insert are one atomic step: 20 concurrent repeats, one event, one winner's writes."""
    barrier = threading.Barrier(20)
    statuses: list[int] = []

    def send(index: int) -> None:
        body = {
            "action": "product.viewed",
            "session": f"race-{index}",
            "user_parameters": {"id": f"racer-{index}"},
            "object_parameters": {"name": "n", "source": "s", "reference": f"ref-{index}"},
            "id": "the-one-key",
        }
        with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {tenant.public_id}"}) as client:
            barrier.wait()
            statuses.append(client.post("/v1/track/events", json=body).status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 20
    assert counts(database, tenant) == {
        "events": 1,
        "sessions": 1,
        "objects": 1,
        "identities": 1,
        "profiles": 1,
    }
    (event,) = stored(database, tenant)
    winner = event.session_id.removeprefix("race-")
    assert identity_profile(database, tenant, "", f"racer-{winner}") == event.profile_id


# --- §7 / §8.3 validation through HTTP: every rule and error type, nothing written ------------------

PV = "product.viewed"
OP = "object_parameters"
BASE = {"session": "sess-fail", "user_parameters": {"id": "user-fail"}}
CASES: list[tuple[dict[str, Any], int, str, str | None]] = [
    ({}, 422, "parameter_missing", "action"),
    ({"action": None}, 422, "parameter_missing", "action"),
    ({"action": " "}, 422, "parameter_invalid_empty", "action"),
    ({"action": 7}, 422, "invalid", "action"),
    ({"action": "short_link.clicked"}, 422, "not_allowed", "action"),
    ({"action": "never.declared"}, 404, "not_found", "action"),
    ({"action": "page.viewed"}, 422, "parameter_missing", "url"),
    ({**PAGE, "session": "has space"}, 422, "invalid", "session"),
    ({**PAGE, "session": ["s"]}, 422, "invalid", "session"),
    ({**PAGE, "user_parameters": []}, 422, "invalid", "user_parameters"),
    ({**PAGE, "user_parameters": {"id": {"a": 1}}}, 422, "invalid", "user_parameters.id"),
    ({**PAGE, "user_parameters": {"id": "u" * 257}}, 422, "invalid", "user_parameters.id"),
    ({**PAGE, "user_parameters": {"id": "u", "source": "s" * 65}}, 422, "invalid", "user_parameters.source"),
    ({**PAGE, "page": 1}, 422, "invalid", "page"),
    ({**PAGE, "page": {"title": "t" * 1025}}, 422, "invalid", "page.title"),
    ({**PAGE, "page": {"path": 5}}, 422, "invalid", "page.path"),
    ({**PAGE, "url": "u" * 2049}, 422, "invalid", "url"),
    ({**PAGE, "utm_params": [1]}, 422, "invalid", "utm_params"),
    ({**PAGE, "utm_params": {"medium": 1}}, 422, "invalid", "utm_params.medium"),
    ({**PAGE, "amount": "12.50"}, 422, "invalid", "amount"),
    ({**PAGE, "amount": False}, 422, "invalid", "amount"),
    ({**PAGE, "amount": -1}, 422, "invalid", "amount"),
    ({**PAGE, "amount": 1e16}, 422, "invalid", "amount"),
    ({**PAGE, "amount": 1, "currency": "eur"}, 422, "invalid", "currency"),
    ({**PAGE, "currency": "EUR"}, 422, "parameter_missing", "amount"),
    ({**PAGE, "metadata": "m"}, 422, "invalid", "metadata"),
    ({**PAGE, "tracked_at": "not a date"}, 422, "invalid", "tracked_at"),
    ({**PAGE, "tracked_at": 1_500_000_000_000}, 422, "invalid", "tracked_at"),
    ({**PAGE, "tracked_at": 946_684_799}, 422, "invalid", "tracked_at"),
    ({**PAGE, "tracked_at": time.time() + 3 * 86_400}, 422, "invalid", "tracked_at"),
    ({**PAGE, "id": ""}, 422, "invalid", "id"),
    ({**PAGE, "id": "k" * 65}, 422, "invalid", "id"),
    ({**PAGE, "id": 12}, 422, "invalid", "id"),
    ({"action": PV}, 422, "object_invalid", "object"),
    ({"action": "order.shipped"}, 422, "object_invalid", "object"),
    ({"action": PV, "object": "x", OP: {"name": "n"}}, 422, "ambiguous_parameter", "object"),
    (
        {"action": "order.placed", "order_parameters": {"a": 1}, "order_attributes": {"a": 1}},
        422,
        "ambiguous_parameter",
        "object",
    ),
    ({"action": PV, "refund_parameters": {"a": 1}}, 422, "invalid", "object_type"),
    (
        {"action": "refund.requested", "object_type": "cart", "refund_parameters": {"a": 1}},
        422,
        "invalid",
        "object_type",
    ),
    ({"action": PV, "object_type": "Bad-Type", OP: {"name": "n"}}, 422, "invalid", "object_type"),
    ({**PAGE, OP: {"a": 1}}, 422, "parameter_missing", "object_type"),
    ({"action": PV, "object": 3}, 422, "invalid", "object"),
    ({"action": PV, "object": "missing-object"}, 404, "not_found", "object"),
    ({"action": PV, OP: "o"}, 422, "invalid", OP),
    ({"action": PV, OP: {}}, 422, "parameter_invalid_empty", OP),
    ({"action": PV, OP: {"a": 1}}, 422, "parameter_missing", f"{OP}.name"),
    (
        {"action": PV, "product_parameters": {"name": ""}},
        422,
        "parameter_invalid_empty",
        "product_parameters.name",
    ),
    (
        {"action": "app.spent", "app_parameters": {"name": None}},
        422,
        "parameter_invalid_empty",
        "app_parameters.name",
    ),
    (
        {"action": "coupon.redeemed", "coupon_parameters": {"a": 1}},
        422,
        "parameter_missing",
        "coupon_parameters.code",
    ),
    ({"action": PV, OP: {"name": "n", "source": "s" * 257}}, 422, "invalid", "object_parameters.source"),
    ({"action": PV, OP: {"name": "n", "reference": 9}}, 422, "invalid", "object_parameters.reference"),
]


@pytest.mark.parametrize(("body", "status", "type_", "parameter"), CASES)
def test_validation_rules_write_nothing_7_8_3(
    public: httpx.Client,
    database: Database,
    tenant: Tenant,
    body: dict[str, Any],
    status: int,
    type_: str,
    parameter: str | None,
) -> None:
    """§7, §8.3: each rule answers its error; §3.2: a request that fails writes nothing."""
    response = public.post("/v1/track/events", json={**BASE, **body})
    assert_error(response, status, type_, parameter)
    assert counts(database, tenant) == dict.fromkeys(TABLES, 0)


def test_field_validation_comes_before_lookups_3_3(public: httpx.Client) -> None:
    """§3.3: 422 field problems are answered before 404 lookups (undeclared action, unknown object)."""
    response = public.post("/v1/track/events", json={"action": "never.declared", "amount": "x"})
    assert_error(response, 422, "invalid", "amount")
    response = public.post("/v1/track/events", json={"action": "product.viewed", "object": "nope", "id": ""})
    assert_error(response, 422, "invalid", "id")


def test_several_problems_listed_3_1(public: httpx.Client) -> None:
    response = public.post(
        "/v1/track/events",
        json={
            "action": "product.viewed",
            "session": "a b",
            "amount": "1",
            "tracked_at": "x",
            "object_parameters": {},
        },
    )
    for type_, parameter in [
        ("invalid", "session"),
        ("invalid", "amount"),
        ("invalid", "tracked_at"),
        ("parameter_invalid_empty", "object_parameters"),
    ]:
        assert_error(response, 422, type_, parameter)


def test_body_rules_apply_1_2(public: httpx.Client, database: Database, tenant: Tenant) -> None:
    headers = {"Content-Type": "application/json"}
    assert_error(public.post("/v1/track/events", content=b"{", headers=headers), 400, "malformed_json")
    assert_error(public.post("/v1/track/events", content=b"[]", headers=headers), 422, "invalid", None)
    assert_error(
        public.post("/v1/track/events", content=b"x", headers={"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    big = {**PAGE, "metadata": {"blob": "x" * 70_000}}
    assert_error(public.post("/v1/track/events", json=big), 413, "payload_too_large")
    nul = {**PAGE, "metadata": {"k": "a\u0000b"}}
    assert_error(public.post("/v1/track/events", json=nul), 422, "invalid", "metadata.k")
    assert counts(database, tenant)["events"] == 0


def test_events_stored_metric_11(public: httpx.Client, http: httpx.Client) -> None:
    def value() -> float:
        for line in http.get("/metrics").text.splitlines():
            if line.startswith('hellotext_events_stored_total{via="track"}'):
                return float(line.split()[-1])
        return 0.0

    before = value()
    assert_received(public.post("/v1/track/events", json=PAGE))
    assert_received(public.post("/v1/track/events", json={**PAGE, "id": "metric-key"}))
    assert_received(
        public.post("/v1/track/events", json={**PAGE, "id": "metric-key"})
    )  # a repeat stores nothing
    assert value() == before + 2


@pytest.mark.postgres_only
def test_key_race_rolls_back_the_loser_8_3(database: Database, tenant: Tenant) -> None:
    """§8.3: when a concurrent writer commits the key between the check and the insert, the losing unit
    raises and is rolled back (nothing of it survives); run again, it finds the key and writes nothing."""
    now = time.time()
    cache = DeclaredActions()
    first = parse_event({**PAGE, "id": "race-key", "session": "winner"}, now)
    second = parse_event(
        {**PAGE, "id": "race-key", "session": "loser", "user_parameters": {"id": "loser-user"}}, now
    )
    engine = database.engines.write
    outcome: dict[str, Any] = {}

    def loser() -> None:
        try:
            with engine.begin() as conn:
                ingest(conn, tenant.pk, [second], via="track", received_at=now, actions=cache)
        except DuplicateKeyRace as exc:
            outcome["raised"] = exc

    with engine.connect() as conn:
        transaction = conn.begin()
        ingest(conn, tenant.pk, [first], via="track", received_at=now, actions=cache)
        thread = threading.Thread(target=loser)
        thread.start()
        time.sleep(0.5)  # the loser has checked the key and now waits on our uncommitted row
        transaction.commit()
        thread.join(timeout=30)
    assert isinstance(outcome.get("raised"), DuplicateKeyRace)
    assert counts(database, tenant) == {
        "events": 1,
        "sessions": 1,
        "objects": 0,
        "identities": 0,
        "profiles": 0,
    }
    rerun = database.write_sync(
        lambda conn: ingest(conn, tenant.pk, [second], via="track", received_at=now, actions=cache)
    )
    assert rerun.outcomes == [None] and rerun.stored == 0
    assert counts(database, tenant)["sessions"] == 1
