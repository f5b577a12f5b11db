"""Custom actions: ``POST /v1/actions`` and ``GET /v1/actions`` (spec http-api §9.1, §1.4, §2, §7.1)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from sqlalchemy import func, select

from hellotext.store.database import Database
from hellotext.store.schema import actions
from tests.conftest import Tenant, assert_error


def declared(database: Database, tenant: Tenant) -> list[str]:
    return database.read_sync(
        lambda conn: [
            row.name
            for row in conn.execute(
                select(actions.c.name).where(actions.c.business_id == tenant.pk).order_by(actions.c.seq)
            )
        ]
    )


def test_declare_action_9_1(private: httpx.Client, database: Database, tenant: Tenant) -> None:
    before = int(time.time())
    response = private.post("/v1/actions", json={"name": "loyalty.joined", "description": "Joined the club"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "type", "name", "description", "created_at"}
    assert body["type"] == "action"
    assert (body["name"], body["description"]) == ("loyalty.joined", "Joined the club")
    assert isinstance(body["id"], str) and 0 < len(body["id"]) <= 64
    assert isinstance(body["created_at"], int) and before - 1 <= body["created_at"] <= time.time() + 1
    assert response.headers["cache-control"] == "no-store"
    no_description = private.post("/v1/actions", json={"name": "quiz_2.done"})
    assert no_description.status_code == 201
    assert no_description.json()["description"] is None
    assert declared(database, tenant) == ["loyalty.joined", "quiz_2.done"]


def test_declaration_rules_9_1(private: httpx.Client, database: Database, tenant: Tenant) -> None:
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({}, 422, "parameter_missing", "name"),
        ({"name": None}, 422, "parameter_missing", "name"),
        ({"name": ""}, 422, "invalid", "name"),
        ({"name": 12}, 422, "invalid", "name"),
        ({"name": "Loyalty.Joined"}, 422, "invalid", "name"),
        ({"name": "loyalty joined"}, 422, "invalid", "name"),
        ({"name": "loyalty-joined"}, 422, "invalid", "name"),
        ({"name": "a" * 65}, 422, "invalid", "name"),
        ({"name": "page.viewed"}, 422, "not_allowed", "name"),
        ({"name": "order.placed"}, 422, "not_allowed", "name"),
        ({"name": "short_link.clicked"}, 422, "not_allowed", "name"),
        ({"name": "fine", "description": 3}, 422, "invalid", "description"),
        ({"name": "fine", "description": "d" * 1025}, 422, "invalid", "description"),
    ]
    for body, status, type_, parameter in cases:
        assert_error(private.post("/v1/actions", json=body), status, type_, parameter)
    assert declared(database, tenant) == []
    assert private.post("/v1/actions", json={"name": "a" * 64, "description": "d" * 1024}).status_code == 201


def test_already_declared_9_1(private: httpx.Client, database: Database, tenant: Tenant) -> None:
    assert private.post("/v1/actions", json={"name": "dup.action"}).status_code == 201
    assert_error(
        private.post("/v1/actions", json={"name": "dup.action"}), 422, "parameter_not_unique", "name"
    )
    assert declared(database, tenant) == ["dup.action"]


def test_concurrent_declarations_one_wins_9_1(server: str, database: Database, tenant: Tenant) -> None:
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def send() -> None:
        with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {tenant.token}"}) as client:
            barrier.wait()
            statuses.append(client.post("/v1/actions", json={"name": "race.action"}).status_code)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [422] * 7
    assert declared(database, tenant) == ["race.action"]


def test_list_is_paginated_newest_first_1_4(private: httpx.Client, tenant: Tenant) -> None:
    names = [f"step.{i}" for i in range(7)]
    ids = [private.post("/v1/actions", json={"name": name}).json()["id"] for name in names]
    first = private.get("/v1/actions", params={"limit": 3}).json()
    assert first["type"] == "list"
    assert [a["name"] for a in first["data"]] == ["step.6", "step.5", "step.4"]
    assert first["has_more"] is True
    second = private.get("/v1/actions", params={"limit": 3, "starting_after": first["data"][-1]["id"]}).json()
    assert [a["name"] for a in second["data"]] == ["step.3", "step.2", "step.1"]
    assert second["has_more"] is True
    last = private.get("/v1/actions", params={"limit": 3, "starting_after": second["data"][-1]["id"]}).json()
    assert [a["name"] for a in last["data"]] == ["step.0"]
    assert last["has_more"] is False
    back = private.get("/v1/actions", params={"limit": 2, "ending_before": ids[2]}).json()
    assert [a["name"] for a in back["data"]] == ["step.4", "step.3"]
    assert back["has_more"] is True
    everything = private.get("/v1/actions").json()
    assert len(everything["data"]) == 7 and everything["has_more"] is False
    assert all(a["type"] == "action" for a in everything["data"])
    # Built-ins are fixed by §7.1 and never listed.
    assert not {a["name"] for a in everything["data"]} & {"page.viewed", "short_link.clicked"}


def test_list_parameters_1_4(
    private: httpx.Client, tenant: Tenant, other_tenant: Tenant, server: str
) -> None:
    assert_error(private.get("/v1/actions", params={"limit": 0}), 422, "invalid", "limit")
    assert_error(private.get("/v1/actions", params={"limit": "ten"}), 422, "invalid", "limit")
    assert_error(private.get("/v1/actions", params={"limit": 101}), 422, "invalid", "limit")
    assert_error(
        private.get("/v1/actions", params={"starting_after": "a", "ending_before": "b"}),
        422,
        "ambiguous_parameter",
        "ending_before",
    )
    assert_error(
        private.get("/v1/actions", params={"starting_after": "nope"}), 404, "not_found", "starting_after"
    )
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {other_tenant.token}"}) as other:
        theirs = other.post("/v1/actions", json={"name": "their.action"}).json()["id"]
    # Tenancy (§2): another business's cursor is answered like a missing one.
    assert_error(
        private.get("/v1/actions", params={"ending_before": theirs}), 404, "not_found", "ending_before"
    )
    assert private.get("/v1/actions").json()["data"] == []


def test_actions_are_per_business_2_7_1(
    private: httpx.Client, public: httpx.Client, server: str, tenant: Tenant, other_tenant: Tenant
) -> None:
    """The same name may be declared in two businesses; a declaration never serves another business."""
    assert private.post("/v1/actions", json={"name": "shared.name"}).status_code == 201
    with (
        httpx.Client(base_url=server, headers={"Authorization": f"Bearer {other_tenant.token}"}) as other,
        httpx.Client(
            base_url=server, headers={"Authorization": f"Bearer {other_tenant.public_id}"}
        ) as other_public,
    ):
        event = {"action": "shared.name"}
        assert_error(other_public.post("/v1/track/events", json=event), 404, "not_found", "action")
        assert other.get("/v1/actions").json()["data"] == []
        assert other.post("/v1/actions", json={"name": "shared.name"}).status_code == 201
        assert other_public.post("/v1/track/events", json=event).status_code == 200
    assert public.post("/v1/track/events", json={"action": "shared.name"}).status_code == 200


def test_private_only_2(public: httpx.Client, http: httpx.Client) -> None:
    assert_error(public.post("/v1/actions", json={"name": "x.y"}), 401, "unauthorized")
    assert_error(public.get("/v1/actions"), 401, "unauthorized")
    assert_error(http.get("/v1/actions"), 401, "unauthorized")


def test_unsupported_method_405_1_1(private: httpx.Client) -> None:
    response = private.delete("/v1/actions")
    assert_error(response, 405, "not_allowed")
    assert "POST" in response.headers["allow"] and "GET" in response.headers["allow"]


def test_declared_count_unchanged_by_failures_9_1(
    private: httpx.Client, database: Database, tenant: Tenant
) -> None:
    assert_error(
        private.post("/v1/actions", content=b"{", headers={"Content-Type": "application/json"}),
        400,
        "malformed_json",
    )
    count = database.read_sync(
        lambda conn: conn.execute(select(func.count()).where(actions.c.business_id == tenant.pk)).scalar_one()
    )
    assert count == 0
