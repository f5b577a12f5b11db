"""Tenancy (§2; sessions-and-identity "What the credentials may do"): every private route, given ids of
another business, answers exactly as for missing ids (404) or refuses the credential (401), and changes
nothing of the other business."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from hellotext.server.routes import all_routes
from tests.conftest import Tenant, assert_error


def client(server: str, credential: str) -> httpx.Client:
    return httpx.Client(base_url=server, timeout=30.0, headers={"Authorization": f"Bearer {credential}"})


def private_templates() -> set[str]:
    """Route templates of the private API (everything under /v1 but public, track and the description)."""
    found = set()
    for route in all_routes():
        if not isinstance(route, Route) or not route.path.startswith("/v1/"):
            continue
        if route.path.startswith(("/v1/public/", "/v1/track/")) or route.path == "/v1/openapi.json":
            continue
        found.add(route.path)
    return found


@pytest.fixture
def victim(server: str, other_tenant: Tenant) -> dict[str, Any]:
    """Data of the other business: profile, session, event, object, action, link."""
    with client(server, other_tenant.token) as their, client(server, other_tenant.public_id) as their_public:
        profile = their.post(
            "/v1/profiles", json={"email": "victim@example.com", "reference": "victim-ref", "first_name": "V"}
        ).json()
        session = str(uuid.uuid4())
        assert their.patch(f"/v1/sessions/{session}", json={"profile": profile["id"]}).status_code == 200
        product = {"name": "Shirt", "source": "shop", "reference": "sku-v"}
        sent = their_public.post(
            "/v1/track/events",
            json={"action": "product.viewed", "session": session, "object_parameters": product},
        )
        assert sent.status_code == 200, sent.text
        assert their.post("/v1/actions", json={"name": "victim.only"}).status_code == 201
        action = their.get("/v1/actions").json()["data"][0]
        link = their.post(
            "/v1/links", json={"destination": "https://v.example.com/", "profile": profile["id"]}
        )
        assert link.status_code == 201, link.text
        timeline = their.get(f"/v1/profiles/{profile['id']}/events").json()["data"]
        return {
            "profile": profile,
            "session": their.get(f"/v1/sessions/{session}").json(),
            "event": timeline[0],
            "object": timeline[0]["object"]["id"],
            "action": action["id"],
            "link": link.json(),
            "timeline": timeline,
        }


def test_every_private_route_with_foreign_ids_is_404_2(
    server: str, tenant: Tenant, other_tenant: Tenant, victim: dict[str, Any]
) -> None:
    v_profile = victim["profile"]["id"]
    v_session = victim["session"]["id"]
    v_event = victim["event"]["id"]
    v_link = victim["link"]["id"]
    covered: set[str] = set()
    with client(server, tenant.token) as mine:
        own_profile = mine.post("/v1/profiles").json()["id"]
        fresh = str(uuid.uuid4())
        page_event = {"action": "page.viewed", "url": "https://m.example.com/"}
        checks: list[tuple[str, str, str, dict[str, Any], str]] = [
            # (template, method, path, request kwargs, expected 404 parameter)
            ("/v1/sessions", "GET", "/v1/sessions", {"params": {"profile": v_profile}}, "profile"),
            (
                "/v1/sessions",
                "GET",
                "/v1/sessions",
                {"params": {"starting_after": v_session}},
                "starting_after",
            ),
            ("/v1/sessions/{id}", "GET", f"/v1/sessions/{v_session}", {}, "id"),
            (
                "/v1/sessions/{id}",
                "PATCH",
                f"/v1/sessions/{v_session}",
                {"json": {"profile": v_profile}},
                "profile",
            ),
            (
                "/v1/sessions/{id}",
                "POST",
                f"/v1/sessions/{fresh}",
                {"json": {"profile_id": v_profile}},
                "profile",
            ),
            (
                "/v1/profiles",
                "GET",
                "/v1/profiles",
                {"params": {"starting_after": v_profile}},
                "starting_after",
            ),
            (
                "/v1/profiles",
                "GET",
                "/v1/profiles",
                {"params": {"ending_before": v_profile}},
                "ending_before",
            ),
            ("/v1/profiles", "POST", "/v1/profiles", {"json": {"session": v_session}}, ""),
            ("/v1/profiles/{id}", "GET", f"/v1/profiles/{v_profile}", {}, "id"),
            ("/v1/profiles/{id}", "PATCH", f"/v1/profiles/{v_profile}", {"json": {"first_name": "X"}}, "id"),
            ("/v1/profiles/{id}", "DELETE", f"/v1/profiles/{v_profile}", {}, "id"),
            ("/v1/profiles/{id}/events", "GET", f"/v1/profiles/{v_profile}/events", {}, "id"),
            (
                "/v1/profiles/{id}/events",
                "GET",
                f"/v1/profiles/{own_profile}/events",
                {"params": {"starting_after": v_event}},
                "starting_after",
            ),
            ("/v1/profiles/{id}/sessions", "GET", f"/v1/profiles/{v_profile}/sessions", {}, "id"),
            (
                "/v1/actions",
                "GET",
                "/v1/actions",
                {"params": {"starting_after": victim["action"]}},
                "starting_after",
            ),
            ("/v1/links", "GET", "/v1/links", {"params": {"profile": v_profile}}, "profile"),
            ("/v1/links", "GET", "/v1/links", {"params": {"starting_after": v_link}}, "starting_after"),
            (
                "/v1/links",
                "POST",
                "/v1/links",
                {"json": {"destination": "https://m.example.com/", "profile": v_profile}},
                "profile",
            ),
            (
                "/v1/links/batch",
                "POST",
                "/v1/links/batch",
                {"json": {"links": [{"destination": "https://m.example.com/", "profile": v_profile}]}},
                "links[0].profile",
            ),
            ("/v1/links/{id}", "GET", f"/v1/links/{v_link}", {}, "id"),
            (
                "/v1/attribution/events",
                "POST",
                "/v1/attribution/events",
                {"json": {**page_event, "profile": v_profile}},
                "profile",
            ),
            (
                "/v1/attribution/events",
                "POST",
                "/v1/attribution/events",
                {"json": {"action": "product.viewed", "object": victim["object"], "profile": own_profile}},
                "object",
            ),
            (
                "/v1/attribution/events",
                "POST",
                "/v1/attribution/events",
                {"json": {"action": "victim.only", "profile": own_profile}},
                "action",
            ),
        ]
        for template, method, path, kwargs, parameter in checks:
            response = mine.request(method, path, **kwargs)
            covered.add(template)
            if template == "/v1/profiles" and method == "POST":
                # The same session string in this business is another, new session: created, not 409.
                assert response.status_code == 201, response.text
                continue
            assert response.status_code == 404, (method, path, response.status_code, response.text)
            body = response.json()
            assert [e["type"] for e in body["errors"]] == ["not_found"], body
            assert parameter in [e["parameter"] for e in body["errors"]], (path, body)
        # The other business's public id is refused on every private route.
    with client(server, other_tenant.public_id) as their_public:
        for template in private_templates():
            path = template.replace("{id}", v_profile)
            method = "POST" if template in ("/v1/attribution/events", "/v1/links/batch") else "GET"
            assert_error(their_public.request(method, path, json={}), 401, "unauthorized")
    assert covered == private_templates()


def test_foreign_data_unchanged_after_the_walk_2(
    server: str, tenant: Tenant, other_tenant: Tenant, victim: dict[str, Any]
) -> None:
    test_every_private_route_with_foreign_ids_is_404_2(server, tenant, other_tenant, victim)
    with client(server, other_tenant.token) as their:
        v_profile = victim["profile"]["id"]
        assert their.get(f"/v1/profiles/{v_profile}").json() == victim["profile"]
        assert their.get(f"/v1/sessions/{victim['session']['id']}").json() == victim["session"]
        assert their.get(f"/v1/profiles/{v_profile}/events").json()["data"] == victim["timeline"]
        assert their.get(f"/v1/links/{victim['link']['id']}").json()["profile"] == v_profile
    with client(server, tenant.token) as mine:
        # Same session string, two unrelated sessions: ours is a new one, unattached to their profile.
        ours = mine.get(f"/v1/sessions/{victim['session']['id']}").json()
        assert ours["profile"] != victim["profile"]["id"]


def test_same_session_string_in_two_businesses_is_two_sessions_2(
    server: str, tenant: Tenant, other_tenant: Tenant
) -> None:
    session = str(uuid.uuid4())
    with client(server, tenant.token) as mine, client(server, other_tenant.token) as their:
        a = mine.post("/v1/profiles").json()["id"]
        b = their.post("/v1/profiles").json()["id"]
        assert mine.patch(f"/v1/sessions/{session}", json={"profile": a}).status_code == 200
        assert their.patch(f"/v1/sessions/{session}", json={"profile": b}).status_code == 200
        assert mine.get(f"/v1/sessions/{session}").json()["profile"] == a
        assert their.get(f"/v1/sessions/{session}").json()["profile"] == b
        with client(server, tenant.public_id) as my_public:
            identified = my_public.post(
                "/v1/public/identifications", json={"user_id": "u", "session": session}
            )
            assert identified.json()["session_conflict"] is True
        assert their.get(f"/v1/sessions/{session}").json()["profile"] == b
