"""``POST /v1/attribution/events`` through real HTTP (spec http-api §9.4, §6.4, §5.3; I2, I3, I9)."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import Connection

from hellotext.store.database import Database
from hellotext.store.profiles import insert_profile
from hellotext.store.sessions import attach_session, get_session, see_session
from tests.conftest import Tenant, assert_error
from tests.server.ingest import PAGE, TABLES, counts, identity_profile, rendered


def new_profile(database: Database, tenant: Tenant) -> str:
    return database.write_sync(lambda conn: insert_profile(conn, tenant.pk, time.time()))


def attach(
    database: Database, tenant: Tenant, session_id: str, profile_id: str, via: str = "identify"
) -> None:
    def unit(conn: Connection) -> None:
        now = time.time()
        see_session(conn, tenant.pk, session_id, now, touch=False)
        assert attach_session(conn, tenant.pk, session_id, profile_id, via, now) == profile_id

    database.write_sync(unit)


def session_of(database: Database, tenant: Tenant, session_id: str) -> Any:
    return database.read_sync(lambda conn: get_session(conn, tenant.pk, session_id))


def attribute(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return client.post("/v1/attribution/events", json=body)


def assert_received(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "received"}


def sid() -> str:
    return str(uuid.uuid4())


# --- I9, the four cases ---------------------------------------------------------------------------------


def test_i9_explicit_profile_first(private: httpx.Client, database: Database, tenant: Tenant) -> None:
    """I9 rule 1: the explicit profile wins; `user_parameters` then create no identity (§6.4)."""
    profile = new_profile(database, tenant)
    body = {**PAGE, "profile": profile, "user_parameters": {"id": "would-be-identity"}}
    assert_received(attribute(private, body))
    (event,) = rendered(database, tenant)
    assert event["profile"] == profile
    assert event["session"] is None
    assert event["via"] == "attribution"
    assert event["raw"] == body
    assert counts(database, tenant)["identities"] == 0
    assert counts(database, tenant)["profiles"] == 1


def test_i9_identity_when_no_profile(private: httpx.Client, database: Database, tenant: Tenant) -> None:
    """I9 rule 2: with a session only, the identity decides; the session is not attached."""
    owner = new_profile(database, tenant)
    session = sid()
    attach(database, tenant, session, owner)
    assert_received(
        attribute(private, {**PAGE, "session": session, "user_parameters": {"id": "u-7", "source": "crm"}})
    )
    by_identity = identity_profile(database, tenant, "crm", "u-7")
    assert by_identity is not None and by_identity != owner
    assert rendered(database, tenant)[0]["profile"] == by_identity
    assert session_of(database, tenant, session).profile == owner


def test_i9_session_owner(private: httpx.Client, database: Database, tenant: Tenant) -> None:
    """I9 rule 3: a session already attached gives its owner."""
    owner = new_profile(database, tenant)
    session = sid()
    attach(database, tenant, session, owner)
    assert_received(attribute(private, {**PAGE, "session": session}))
    assert rendered(database, tenant)[0]["profile"] == owner


def test_i9_anonymous_session(private: httpx.Client, database: Database, tenant: Tenant) -> None:
    """I9 rule 4: a session only, unattached, no identity: anonymous, kept with its session (not attached)."""
    session = sid()
    assert_received(attribute(private, {**PAGE, "session": session}))
    (event,) = rendered(database, tenant)
    assert event["profile"] is None and event["session"] == session
    stored = session_of(database, tenant, session)
    assert stored is not None and stored.profile is None


# --- §9.4 steps ---------------------------------------------------------------------------------------


def test_profile_and_new_session_attach_in_same_transaction_9_4(
    private: httpx.Client, database: Database, tenant: Tenant
) -> None:
    """§9.4 step 4: an unattached (or new) session is attached to the profile, with the event (I2)."""
    profile = new_profile(database, tenant)
    session = sid()
    assert_received(attribute(private, {**PAGE, "profile": profile, "session": session}))
    stored = session_of(database, tenant, session)
    assert (stored.profile, stored.attached_via) == (profile, "api")
    assert stored.attached_at is not None
    (event,) = rendered(database, tenant)
    assert (event["profile"], event["session"]) == (profile, session)
    # An existing, unattached session is attached too; the same profile again is a no-op.
    existing = sid()
    database.write_sync(lambda conn: see_session(conn, tenant.pk, existing, time.time()))
    assert_received(attribute(private, {**PAGE, "profile": profile, "session": existing}))
    assert_received(attribute(private, {**PAGE, "profile": profile, "session": existing}))
    assert session_of(database, tenant, existing).profile == profile
    assert counts(database, tenant)["events"] == 3


def test_session_of_another_profile_is_refused_and_writes_nothing_9_4(
    private: httpx.Client, database: Database, tenant: Tenant
) -> None:
    """§9.4 step 3 / I3: 422 identity_assigned (parameter session); nothing written, the session stays."""
    owner = new_profile(database, tenant)
    other = new_profile(database, tenant)
    session = sid()
    attach(database, tenant, session, owner)
    before = counts(database, tenant)
    seen_before = session_of(database, tenant, session)
    body = {
        "action": "product.viewed",
        "profile": other,
        "session": session,
        "object_parameters": {"name": "n", "source": "s", "reference": "r"},
        "utm_params": {"source": "x"},
    }
    assert_error(attribute(private, body), 422, "identity_assigned", "session")
    assert counts(database, tenant) == before
    after = session_of(database, tenant, session)
    assert after == seen_before  # owner, last_seen_at and UTM unchanged


def test_concurrent_attributions_one_winner_9_4(server: str, database: Database, tenant: Tenant) -> None:
    """§9.4 step 3 'also when a concurrent attach wins': exactly one profile gets the session (I3)."""
    candidates = [new_profile(database, tenant) for _ in range(8)]
    session = sid()
    barrier = threading.Barrier(len(candidates))
    answers: dict[str, int] = {}

    def send(profile: str) -> None:
        with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {tenant.token}"}) as client:
            barrier.wait()
            answers[profile] = attribute(client, {**PAGE, "profile": profile, "session": session}).status_code

    threads = [threading.Thread(target=send, args=(p,)) for p in candidates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [p for p, status in answers.items() if status == 200]
    assert len(winners) == 1
    assert sorted(answers.values()) == [200] + [422] * (len(candidates) - 1)
    assert session_of(database, tenant, session).profile == winners[0]
    assert [e["profile"] for e in rendered(database, tenant)] == winners


def test_profile_or_session_required_9_4(private: httpx.Client, database: Database, tenant: Tenant) -> None:
    assert_error(attribute(private, PAGE), 422, "parameter_missing", "profile")
    assert_error(attribute(private, {**PAGE, "session": "undefined"}), 422, "parameter_missing", "profile")
    # `profile_id` and `session_id` are not aliases.
    assert_error(
        attribute(private, {**PAGE, "profile_id": "p", "session_id": "s"}),
        422,
        "parameter_missing",
        "profile",
    )
    assert_error(attribute(private, {**PAGE, "profile": 5}), 422, "invalid", "profile")
    assert_error(
        attribute(private, {**PAGE, "profile": "p", "session": "bad session"}), 422, "invalid", "session"
    )
    assert counts(database, tenant)["events"] == 0


def test_unknown_or_foreign_profile_404_9_4(
    private: httpx.Client, database: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    """§9.4 step 2, §2 tenancy: another business's profile id is answered exactly like a missing one."""
    theirs = new_profile(database, other_tenant)
    session = sid()
    missing = attribute(private, {**PAGE, "profile": "no-such-profile", "session": session})
    foreign = attribute(private, {**PAGE, "profile": theirs, "session": session})
    assert_error(missing, 404, "not_found", "profile")
    assert_error(foreign, 404, "not_found", "profile")
    assert missing.json() == foreign.json()
    assert counts(database, tenant) == dict.fromkeys(TABLES, 0)
    assert counts(database, other_tenant)["events"] == 0


def test_field_rules_of_8_3_apply_9_4(private: httpx.Client, database: Database, tenant: Tenant) -> None:
    profile = new_profile(database, tenant)
    base = {"profile": profile, "session": sid()}
    assert_error(attribute(private, {**base, "action": "short_link.clicked"}), 422, "not_allowed", "action")
    assert_error(attribute(private, {**base, "action": "not.declared"}), 404, "not_found", "action")
    assert_error(attribute(private, {**base, "action": "product.viewed"}), 422, "object_invalid", "object")
    assert_error(attribute(private, {**base, **PAGE, "amount": "3"}), 422, "invalid", "amount")
    assert_error(attribute(private, {**base, **PAGE, "id": ""}), 422, "invalid", "id")
    # Field problems come before the profile lookup (§3.3).
    assert_error(attribute(private, {**PAGE, "profile": "nope", "amount": "3"}), 422, "invalid", "amount")
    assert counts(database, tenant)["events"] == 0
    assert counts(database, tenant)["sessions"] == 0


def test_idempotency_shares_key_space_with_track_9_4(
    private: httpx.Client, public: httpx.Client, database: Database, tenant: Tenant
) -> None:
    """§9.4 step 5: a key stored by /track/events makes an attribution a repeat, and the reverse."""
    profile = new_profile(database, tenant)
    assert_received(public.post("/v1/track/events", json={**PAGE, "id": "shared-1"}))
    session = sid()
    assert_received(attribute(private, {**PAGE, "profile": profile, "session": session, "id": "shared-1"}))
    assert session_of(database, tenant, session) is None  # nothing written: no session, no attachment
    assert_received(attribute(private, {**PAGE, "profile": profile, "id": "shared-2"}))
    assert_received(public.post("/v1/track/events", json={**PAGE, "id": "shared-2"}))
    assert [(e["client_id"], e["via"]) for e in rendered(database, tenant)] == [
        ("shared-1", "track"),
        ("shared-2", "attribution"),
    ]


def test_private_only_2(public: httpx.Client, http: httpx.Client) -> None:
    """§2: a public id on a private endpoint → 401; no preflight handling there (§4)."""
    assert_error(attribute(public, {**PAGE, "profile": "p"}), 401, "unauthorized")
    assert_error(http.post("/v1/attribution/events", json=PAGE), 401, "unauthorized")


def test_metrics_count_attribution_11(
    private: httpx.Client, http: httpx.Client, database: Database, tenant: Tenant
) -> None:
    via = "attribution"

    def value(name: str, label: str) -> float:
        for line in http.get("/metrics").text.splitlines():
            if line.startswith(f'{name}{{via="{label}"}}'):
                return float(line.split()[-1])
        return 0.0

    stored_before = value("hellotext_events_stored_total", via)
    attached_before = value("hellotext_sessions_attached_total", "api")
    profile = new_profile(database, tenant)
    session = sid()
    assert_received(attribute(private, {**PAGE, "profile": profile, "session": session}))
    assert_received(attribute(private, {**PAGE, "profile": profile, "session": session}))
    assert value("hellotext_events_stored_total", via) == stored_before + 2
    assert value("hellotext_sessions_attached_total", "api") == attached_before + 1
