"""Sessions over HTTP: attach (§9.2.1, I2, I3), read (§9.2.2), list (§9.2.3), concurrency across processes."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from hellotext.config import Settings
from hellotext.store.database import Database
from hellotext.store.schema import sessions
from tests.conftest import Tenant, assert_error
from tests.servers import ServerProcess


def new_profile(client: httpx.Client) -> str:
    response = client.post("/v1/profiles")
    assert response.status_code == 201, response.text
    pid: str = response.json()["id"]
    return pid


def test_attach_creates_session_and_is_idempotent_i3(private: httpx.Client) -> None:
    pid = new_profile(private)
    session = str(uuid.uuid4())
    first = private.patch(f"/v1/sessions/{session}", json={"profile": pid})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["type"] == "session" and body["id"] == session and body["profile"] == pid
    assert body["attached_via"] == "api" and isinstance(body["attached_at"], int)
    assert body["utm_params"] is None
    # Same profile again (POST is the same operation, profile_id the alias): 200, unchanged.
    again = private.post(f"/v1/sessions/{session}", json={"profile_id": pid})
    assert again.status_code == 200
    assert again.json() == body
    assert private.get(f"/v1/sessions/{session}").json() == body


def test_attach_to_another_profile_is_409_naming_owner_i3(private: httpx.Client) -> None:
    owner, other = new_profile(private), new_profile(private)
    session = str(uuid.uuid4())
    attached = private.patch(f"/v1/sessions/{session}", json={"profile": owner}).json()
    response = private.patch(f"/v1/sessions/{session}", json={"profile": other})
    assert_error(response, 409, "identity_assigned", "profile")
    assert response.json()["session"] == attached
    assert private.get(f"/v1/sessions/{session}").json()["profile"] == owner


def test_attach_existing_unattached_session_keeps_its_history(
    private: httpx.Client, public: httpx.Client
) -> None:
    session = str(uuid.uuid4())
    utm = {"source": "newsletter", "medium": "email"}
    assert public.post("/v1/public/acks", json={"session": session, "utm_params": utm}).status_code == 200
    before = private.get(f"/v1/sessions/{session}").json()
    assert before["profile"] is None and before["attached_at"] is None
    pid = new_profile(private)
    after = private.patch(f"/v1/sessions/{session}", json={"profile": pid}).json()
    assert after["created_at"] == before["created_at"]
    assert after["utm_params"]["source"] == "newsletter"


def test_attach_validation_9_2_1(private: httpx.Client) -> None:
    pid = new_profile(private)
    s = str(uuid.uuid4())
    assert_error(
        private.patch("/v1/sessions/undefined", json={"profile": pid}), 422, "parameter_missing", "session"
    )
    assert_error(
        private.patch("/v1/sessions/null", json={"profile": pid}), 422, "parameter_missing", "session"
    )
    assert_error(private.patch("/v1/sessions/a%20b", json={"profile": pid}), 422, "invalid", "session")
    assert_error(private.patch(f"/v1/sessions/{'x' * 257}", json={"profile": pid}), 422, "invalid", "session")
    assert_error(
        private.patch(f"/v1/sessions/{s}", json={"profile": pid, "session": "other"}),
        422,
        "invalid",
        "session",
    )
    assert private.patch(f"/v1/sessions/{s}", json={"profile": pid, "session": s}).status_code == 200
    s2 = str(uuid.uuid4())
    assert_error(private.patch(f"/v1/sessions/{s2}", json={}), 422, "parameter_missing", "profile")
    assert_error(private.patch(f"/v1/sessions/{s2}"), 422, "parameter_missing", "profile")
    assert_error(
        private.patch(f"/v1/sessions/{s2}", json={"profile": pid, "profile_id": "other"}),
        422,
        "ambiguous_parameter",
        "profile",
    )
    assert_error(private.patch(f"/v1/sessions/{s2}", json={"profile": 5}), 422, "invalid", "profile")
    assert_error(private.patch(f"/v1/sessions/{s2}", json={"profile": "nope"}), 404, "not_found", "profile")
    # A refused attach created nothing.
    assert_error(private.get(f"/v1/sessions/{s2}"), 404, "not_found", "id")


def test_get_session_9_2_2(private: httpx.Client) -> None:
    assert_error(private.get(f"/v1/sessions/{uuid.uuid4()}"), 404, "not_found", "id")
    assert_error(private.get("/v1/sessions/a%20b"), 404, "not_found", "id")


def test_list_sessions_9_2_3(private: httpx.Client, public: httpx.Client) -> None:
    made = [str(uuid.uuid4()) for _ in range(3)]
    for s in made:
        public.post("/v1/public/acks", json={"session": s})
    listed = private.get("/v1/sessions").json()
    assert listed["type"] == "list"
    assert [s["id"] for s in listed["data"]][:3] == list(reversed(made))
    page = private.get("/v1/sessions", params={"limit": 1, "starting_after": made[2]}).json()
    assert [s["id"] for s in page["data"]] == [made[1]] and page["has_more"] is True
    pid = new_profile(private)
    private.patch(f"/v1/sessions/{made[0]}", json={"profile": pid})
    assert [s["id"] for s in private.get("/v1/sessions", params={"profile": pid}).json()["data"]] == [made[0]]
    assert_error(private.get("/v1/sessions", params={"profile": "nope"}), 404, "not_found", "profile")
    assert_error(
        private.get("/v1/sessions", params={"starting_after": "nope"}), 404, "not_found", "starting_after"
    )


def test_public_id_cannot_use_private_routes_2(public: httpx.Client) -> None:
    assert_error(public.get("/v1/sessions"), 401, "unauthorized")
    assert_error(public.patch(f"/v1/sessions/{uuid.uuid4()}", json={"profile": "x"}), 401, "unauthorized")


def race(urls: list[str], token: str, session: str, profiles: list[str], n: int = 50) -> list[httpx.Response]:
    """`n` attaches of one session, alternating profiles and servers, released together."""
    clients = [
        httpx.Client(base_url=u, timeout=60.0, headers={"Authorization": f"Bearer {token}"}) for u in urls
    ]
    gate = threading.Barrier(n)

    def attach(i: int) -> httpx.Response:
        client = clients[i % len(clients)]
        gate.wait()
        return client.patch(f"/v1/sessions/{session}", json={"profile": profiles[i % len(profiles)]})

    try:
        with ThreadPoolExecutor(max_workers=n) as pool:
            return list(pool.map(attach, range(n)))
    finally:
        for client in clients:
            client.close()


def check_one_winner(
    responses: list[httpx.Response], database: Database, tenant: Tenant, session: str
) -> None:
    stored = database.read_sync(
        lambda c: c.execute(
            select(sessions.c.profile_id).where(sessions.c.business_id == tenant.pk, sessions.c.id == session)
        ).all()
    )
    assert len(stored) == 1
    winner = stored[0][0]
    assert winner is not None
    outcomes: Counter[str] = Counter()
    for response in responses:
        body = response.json()
        if response.status_code == 200:
            assert body["profile"] == winner
            outcomes["ok"] += 1
        else:
            assert_error(response, 409, "identity_assigned", "profile")
            assert body["session"]["profile"] == winner
            outcomes["conflict"] += 1
    assert outcomes["ok"] >= 1 and outcomes["conflict"] >= 1, outcomes


def test_concurrent_attaches_one_winner_i3(server: str, tenant: Tenant, database: Database) -> None:
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {tenant.token}"}) as client:
        profiles = [new_profile(client), new_profile(client)]
    session = str(uuid.uuid4())
    responses = race([server], tenant.token, session, profiles)
    check_one_winner(responses, database, tenant, session)


@pytest.mark.postgres_only
def test_concurrent_attaches_across_two_processes_i3(
    settings: Settings, database: Database, tenant: Tenant, tmp_path: Path
) -> None:
    first = ServerProcess(settings, log_path=tmp_path / "a.log").start()
    try:
        second = ServerProcess(settings, log_path=tmp_path / "b.log").start()
        try:
            with httpx.Client(
                base_url=first.url, headers={"Authorization": f"Bearer {tenant.token}"}
            ) as client:
                profiles = [new_profile(client), new_profile(client)]
            for _ in range(3):
                session = str(uuid.uuid4())
                responses = race([first.url, second.url], tenant.token, session, profiles)
                check_one_winner(responses, database, tenant, session)
        finally:
            second.stop()
    finally:
        first.stop()
