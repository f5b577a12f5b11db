"""The spine: health, error envelope, routing, credentials, CORS, body limits (http-api §1-§4, §11)."""

from __future__ import annotations

import httpx

from tests.conftest import Tenant, assert_error


def test_health(http: httpx.Client) -> None:
    response = http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


def test_unknown_path_is_json_404(public: httpx.Client) -> None:
    assert_error(public.get("/v1/nope"), 404, "not_found")
    # A trailing slash is another, unknown path.
    assert_error(public.post("/v1/public/acks/", json={}), 404, "not_found")


def test_wrong_method_is_405_with_allow(public: httpx.Client) -> None:
    response = public.delete("/v1/public/acks")
    assert_error(response, 405, "not_allowed")
    assert "POST" in response.headers["allow"]


def test_missing_and_unknown_credentials(http: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer nope"}):
        response = http.post("/v1/public/acks", json={}, headers=headers)
        assert_error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"


def test_bearer_scheme_is_case_insensitive(http: httpx.Client, tenant: Tenant) -> None:
    response = http.post("/v1/public/acks", json={}, headers={"Authorization": f"bearer {tenant.public_id}"})
    assert response.status_code == 200


def test_business_settings_only_own(public: httpx.Client, tenant: Tenant, other_tenant: Tenant) -> None:
    response = public.get(f"/v1/public/businesses/{tenant.public_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == tenant.public_id
    assert body["whitelist"] == "disabled"
    assert body["webchat"] is None
    assert_error(public.get(f"/v1/public/businesses/{other_tenant.public_id}"), 404, "not_found", "id")


def test_preflight_needs_no_credential(http: httpx.Client) -> None:
    response = http.options(
        "/v1/public/acks",
        headers={
            "Origin": "https://shop.example.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://shop.example.test"
    assert response.headers["access-control-allow-headers"] == "authorization,content-type"
    assert response.headers["access-control-max-age"] == "600"
    assert "access-control-allow-credentials" not in response.headers


def test_body_limits(public: httpx.Client) -> None:
    big = b'{"a":"' + b"x" * 70_000 + b'"}'
    response = public.post("/v1/public/acks", content=big, headers={"Content-Type": "application/json"})
    assert_error(response, 413, "payload_too_large")
    response = public.post("/v1/public/acks", content=b"a=b", headers={"Content-Type": "text/plain"})
    assert_error(response, 415, "unsupported_media_type")
    response = public.post("/v1/public/acks", content=b"{nope", headers={"Content-Type": "application/json"})
    assert_error(response, 400, "malformed_json")
    response = public.post("/v1/public/acks", content=b"[1]", headers={"Content-Type": "application/json"})
    assert_error(response, 422, "invalid", None)
    response = public.post(
        "/v1/public/acks", content=b"[" * 33 + b"]" * 33, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "malformed_json")
    empty = public.post("/v1/public/acks", content=b"", headers={"Content-Type": "text/plain"})
    assert empty.status_code == 200
