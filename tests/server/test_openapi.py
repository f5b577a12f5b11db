"""The hand-written contract (spec http-api §11 ``GET /v1/openapi.json``).

Three things are checked: the document is valid OpenAPI 3.1 with resolvable references and compilable
schemas; every route the application serves is described (and every described operation is served); and
answers of the live server to representative requests have a documented status and a body that conforms to
the schema documented for that status. Response bodies are validated with ``jsonschema_rs`` (the JSON Schema
engine schemathesis brings), draft 2020-12, the dialect of OpenAPI 3.1.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs
import pytest
import yaml
from starlette.routing import BaseRoute, Mount, Route

from hellotext.config import Settings
from hellotext.server.app import create_app
from hellotext.server.routes.health import OPENAPI_PATH
from tests.conftest import Tenant

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The contract as JSON would carry it (YAML anchors expanded, keys as strings)."""
    with OPENAPI_PATH.open(encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle)
    parsed: dict[str, Any] = json.loads(json.dumps(loaded))
    return parsed


def _resolve(document: dict[str, Any], node: Any) -> Any:
    """Follow ``$ref`` chains of a node inside the document."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node and len(node) == 1:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = document
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        seen += 1
        assert seen < 20, f"reference loop at {ref}"
    return node


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method]


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema_rs.Validator:
    """A draft 2020-12 validator for `schema`, whose local references resolve inside the document."""
    root = {**schema, "components": document["components"]}
    return jsonschema_rs.Draft202012Validator(root, validate_formats=True)


# --------------------------------------------------------------------------------------------------------
# The document itself
# --------------------------------------------------------------------------------------------------------


def test_document_is_valid_openapi_31(document: dict[str, Any]) -> None:
    """§11: the contract is an OpenAPI 3.1 document (checked against the official 3.1 meta-schema)."""
    assert document["openapi"].startswith("3.1.")
    try:
        from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR
    except ImportError:  # pragma: no cover - schemathesis is in the dev extra; keep a structural check
        assert {"openapi", "info", "paths", "components"} <= set(document)
        for _path, _method, operation in _operations(document):
            assert "responses" in operation
    else:
        errors = [str(error) for error in OPENAPI_31_VALIDATOR.iter_errors(document)]
        assert errors == []


def test_every_reference_resolves_and_every_schema_compiles(document: dict[str, Any]) -> None:
    """§11: no dangling ``$ref``; each schema (regexes included) compiles under draft 2020-12."""
    for node in _walk({k: v for k, v in document.items() if k != "x-shared"}):
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            assert _resolve(document, {"$ref": node["$ref"]}) is not None
    for name, schema in document["components"]["schemas"].items():
        try:
            _validator(document, schema)
        except Exception as exc:  # a bad pattern or keyword names the schema
            pytest.fail(f"schema {name} does not compile: {exc}")


def test_operation_ids_are_unique_and_security_is_declared(document: dict[str, Any]) -> None:
    """§2: public endpoints accept the public id or a secret token; private ones only a secret token."""
    schemes = set(document["components"]["securitySchemes"])
    seen: set[str] = set()
    for path, method, operation in _operations(document):
        op_id = operation.get("operationId")
        if op_id is not None:
            assert op_id not in seen, op_id
            seen.add(op_id)
        assert "security" in operation, (path, method)
        names = {name for requirement in operation["security"] for name in requirement}
        assert names <= schemes
        if method == "options" or not path.startswith("/v1/") or path == "/v1/openapi.json":
            assert names == set(), (path, method)
        elif path.startswith(("/v1/public/", "/v1/track/")):
            assert names == {"publicId", "secretToken"}, (path, method)
        else:
            assert names == {"secretToken"}, (path, method)


def test_error_statuses_use_the_envelope(document: dict[str, Any]) -> None:
    """§3.1: every documented JSON error answer on /v1 and the root JSON endpoints is the error envelope."""
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status.startswith(("2", "3")) or path == "/l/{code}":
                continue
            content = _resolve(document, response).get("content", {})
            if "application/json" not in content:  # HTML pages (/demo) are not JSON endpoints
                continue
            schema = content["application/json"]["schema"]
            refs = {n["$ref"] for n in _walk(schema) if isinstance(n, dict) and "$ref" in n}
            assert refs & {
                "#/components/schemas/ErrorEnvelope",
                "#/components/schemas/ConflictEnvelope",
            }, (path, method, status)


# Valid requests of the spec: the request schemas must accept them (permissive enough), and some invalid
# ones they must refuse (realistic enough to guide a generator).
VALID_BODIES: list[tuple[str, str, dict[str, Any]]] = [
    ("/v1/public/acks", "post", {}),
    ("/v1/public/acks", "post", {"session": "undefined", "utm_params": {"source": "a", "gclid": 1}}),
    (
        "/v1/public/acks",
        "post",
        {"session": "s-1", "at": "2026-01-01T00:00:00.000Z", "utm_params": {"source": "nl", "medium": "e"}},
    ),
    (
        "/v1/track/events",
        "post",
        {
            "session": "a6a52a38-4519-461d-88c4-99d070bc6449",
            "user_parameters": {"id": "user_123", "source": "shopify"},
            "action": "product.viewed",
            "object_parameters": {"name": "Blue shirt", "source": "shopify", "reference": "sku-1"},
            "page": {"url": "https://shop.example.com/p/1", "title": "Blue shirt", "path": "/p/1"},
            "utm_params": {},
        },
    ),
    (
        "/v1/track/events",
        "post",
        {
            "action": "order.placed",
            "order_parameters": {"reference": "o-1"},
            "amount": 12.5,
            "currency": "USD",
            "tracked_at": 1767225600,
            "id": "evt-1",
            "user_parameters": {"id": 42},
            "extra": {"kept": True},
        },
    ),
    (
        "/v1/track/events",
        "post",
        {"action": "page.viewed", "url": "https://a.test/", "tracked_at": "2026-01-01"},
    ),
    (
        "/v1/track/events",
        "post",
        {"action": "app.installed", "app_parameters": {"name": "A"}, "tracked_at": 1.5e9},
    ),
    (
        "/v1/track/events",
        "post",
        {"action": "page.viewed", "page": {"url": "/"}, "tracked_at": "2026-01-01T09:30"},
    ),
    ("/v1/track/events/batch", "post", {"events": [{"action": "page.viewed", "url": "https://a.test/"}]}),
    (
        "/v1/public/identifications",
        "post",
        {"session": "s", "user_id": "user_123", "source": "shopify", "email": "J@x.test", "plan": "gold"},
    ),
    ("/v1/public/identifications", "post", {"user_id": 123}),
    ("/v1/actions", "post", {"name": "loyalty.joined"}),
    ("/v1/sessions/{id}", "patch", {"profile": "yh2PtqZamkD3mrOn"}),
    ("/v1/sessions/{id}", "post", {"profile_id": "yh2PtqZamkD3mrOn"}),
    ("/v1/profiles", "post", {}),
    (
        "/v1/profiles",
        "post",
        {
            "first_name": "John",
            "email": {"primary": " John@Example.com "},
            "phone": "+598 (99) 123-456",
            "properties": {"plan": "gold"},
            "session": "a6a52a38-4519-461d-88c4-99d070bc6449",
        },
    ),
    ("/v1/profiles", "post", {"email[primary]": "a@b.co", "phone[mobile]": "+59899123456"}),
    ("/v1/profiles/{id}", "patch", {"email": None, "properties": {"plan": None}}),
    ("/v1/attribution/events", "post", {"profile": "p1", "action": "page.viewed", "url": "https://a.test/"}),
    ("/v1/attribution/events", "post", {"session": "s1", "action": "loyalty.joined"}),
    (
        "/v1/links",
        "post",
        {
            "destination": "https://shop.example.com/sale?ref=sms#top",
            "profile": "yh2PtqZamkD3mrOn",
            "campaign": "spring",
            "utm": {"source": "hellotext", "medium": "sms", "campaign": "spring"},
        },
    ),
    ("/v1/links/batch", "post", {"links": [{"destination": "http://a.test"}]}),
]

INVALID_BODIES: list[tuple[str, str, dict[str, Any]]] = [
    ("/v1/track/events", "post", {}),
    ("/v1/track/events", "post", {"action": "page.viewed", "amount": "12.50"}),
    ("/v1/track/events", "post", {"action": "page.viewed", "currency": "USD"}),
    ("/v1/track/events", "post", {"action": "page.viewed", "session": "a,b"}),
    ("/v1/track/events/batch", "post", {"events": []}),
    ("/v1/public/identifications", "post", {"user_id": "undefined"}),
    ("/v1/public/identifications", "post", {"user_id": 0}),
    ("/v1/actions", "post", {"name": "Not Valid"}),
    ("/v1/sessions/{id}", "patch", {}),
    ("/v1/profiles", "post", {"email": "not-an-email"}),
    ("/v1/profiles", "post", {"phone": "099123456"}),
    ("/v1/attribution/events", "post", {"action": "page.viewed", "url": "https://a.test/"}),
    ("/v1/links", "post", {"destination": "javascript:alert(1)"}),
    ("/v1/links", "post", {"destination": "https://a.test", "utm": {"term": "x"}}),
]


def _request_validator(document: dict[str, Any], path: str, method: str) -> jsonschema_rs.Validator:
    operation = document["paths"][path][method]
    body = _resolve(document, operation["requestBody"])
    return _validator(document, body["content"]["application/json"]["schema"])


@pytest.mark.parametrize(("path", "method", "body"), VALID_BODIES)
def test_request_schemas_accept_valid_requests(
    document: dict[str, Any], path: str, method: str, body: dict[str, Any]
) -> None:
    """§8, §9: requests the spec calls valid pass the documented request schema."""
    errors = [str(e) for e in _request_validator(document, path, method).iter_errors(body)]
    assert errors == []


@pytest.mark.parametrize(("path", "method", "body"), INVALID_BODIES)
def test_request_schemas_refuse_invalid_requests(
    document: dict[str, Any], path: str, method: str, body: dict[str, Any]
) -> None:
    """§8, §9: requests the spec refuses with 422 do not pass the documented request schema."""
    assert not _request_validator(document, path, method).is_valid(body)


def test_documented_examples_are_valid(document: dict[str, Any]) -> None:
    """The examples in the document conform to the schemas they illustrate."""
    checked = 0
    for _path, _method, operation in _operations(document):
        body = operation.get("requestBody")
        if body is None:
            continue
        media = _resolve(document, body)["content"]["application/json"]
        validator = _validator(document, media["schema"])
        examples = [media["example"]] if "example" in media else []
        examples += [e["value"] for e in media.get("examples", {}).values()]
        for example in examples:
            assert [str(e) for e in validator.iter_errors(example)] == []
            checked += 1
    for name, schema in document["components"]["schemas"].items():
        if "example" in schema:
            assert _validator(document, schema).is_valid(schema["example"]), name
            checked += 1
    assert checked >= 10


# --------------------------------------------------------------------------------------------------------
# Every served route is described, every described operation is served
# --------------------------------------------------------------------------------------------------------


def _shape(path: str) -> str:
    """A path template with its parameter names (and Starlette converters) erased.

    OpenAPI treats templates of the same hierarchy as the same path whatever their parameter names, so
    Starlette's catch-all ``/l/{rest:path}`` (would-be codes with a slash) is part of ``/l/{code}``.
    """
    return re.sub(r"\{[^}]*\}", "{}", path)


def _served(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        if isinstance(route, Route):
            methods = set(route.methods or {"GET"})
            # Starlette adds HEAD to every GET route on its own; HEAD is only described where the spec
            # names it (/hellotext.js, /l/{code}).
            methods.discard("HEAD")
            for method in sorted(methods):
                yield _shape(prefix + route.path), method.lower()
        elif isinstance(route, Mount):
            if route.routes:
                yield from _served(list(route.routes), prefix + route.path)
            else:  # a mounted app (static files): described by its path prefix
                yield _shape(prefix + route.path), "get"


def test_every_served_route_is_described(document: dict[str, Any], tmp_path: Any) -> None:
    """§11: every route of ``create_app()`` appears in the contract with each of its methods."""
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}"))
    served = set(_served(list(app.routes)))
    assert served, "the application serves no routes"
    described = {(_shape(path), method) for path, method, _ in _operations(document)}
    missing = sorted(served - described)
    assert missing == [], f"served but not described: {missing}"


def test_every_described_operation_is_served(document: dict[str, Any], tmp_path: Any) -> None:
    """§11: the contract describes no operation the server lacks (HEAD: the GET route serves it)."""
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}"))
    served = set(_served(list(app.routes)))
    described = {(_shape(path), method) for path, method, _ in _operations(document)}
    phantom = sorted(
        (path, method)
        for path, method in described - served
        if not (method == "head" and (path, "get") in served)
    )
    assert phantom == [], f"described but not served: {phantom}"


# --------------------------------------------------------------------------------------------------------
# Live answers conform
# --------------------------------------------------------------------------------------------------------


class Conformance:
    """Checks live responses against the documented response for (path template, method, status)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.checked: list[tuple[str, str, int]] = []

    def response_for(self, path: str, method: str, status: int) -> dict[str, Any]:
        item = self.document["paths"].get(path)
        assert item is not None, f"{path} is not described"
        operation = item.get(method.lower())
        assert operation is not None, f"{method} {path} is not described"
        responses = operation["responses"]
        key = str(status) if str(status) in responses else f"{str(status)[0]}XX"
        assert key in responses, f"{method} {path} answered {status}, which is not documented"
        resolved: dict[str, Any] = _resolve(self.document, responses[key])
        return resolved

    def check(self, response: httpx.Response, path: str, expected: int | None = None) -> httpx.Response:
        """Assert `response` (to a request on the described `path`) conforms; return it."""
        method = response.request.method
        status = response.status_code
        if expected is not None:
            assert status == expected, (method, path, status, response.text[:500])
        documented = self.response_for(path, method, status)
        content = documented.get("content")
        if not content or method == "HEAD":
            self.checked.append((path, method, status))
            return response
        media = response.headers.get("content-type", "").split(";", 1)[0].strip()
        assert media in content, (method, path, status, media, list(content))
        schema = content[media].get("schema")
        if media == "application/json" and schema is not None:
            body = response.json()
            errors = [str(e) for e in _validator(self.document, schema).iter_errors(body)]
            assert errors == [], (method, path, status, body, errors)
        self.checked.append((path, method, status))
        return response


@pytest.fixture
def conform(document: dict[str, Any]) -> Conformance:
    return Conformance(document)


def _session_id() -> str:
    return str(uuid.uuid4())


def test_root_endpoints_conform(http: httpx.Client, conform: Conformance, document: dict[str, Any]) -> None:
    """§11: /health, /metrics, /v1/openapi.json answer as described; the served document is the YAML."""
    conform.check(http.get("/health"), "/health", 200)
    conform.check(http.get("/metrics"), "/metrics", 200)
    served = conform.check(http.get("/v1/openapi.json"), "/v1/openapi.json", 200)
    assert served.json() == document


def test_browser_sdk_file_conforms(http: httpx.Client, conform: Conformance) -> None:
    """§11: GET /hellotext.js answers the file; If-None-Match with its ETag answers 304."""
    first = conform.check(http.get("/hellotext.js"), "/hellotext.js", 200)
    etag = first.headers["etag"]
    conform.check(http.get("/hellotext.js", headers={"If-None-Match": etag}), "/hellotext.js", 304)
    conform.check(http.head("/hellotext.js"), "/hellotext.js", 200)


def test_public_endpoints_conform(
    public: httpx.Client, http: httpx.Client, tenant: Tenant, other_tenant: Tenant, conform: Conformance
) -> None:
    """§8.1, §8.2, §8.4, §3: public answers (success and errors) match their documented schemas."""
    path = "/v1/public/businesses/{id}"
    conform.check(public.get(f"/v1/public/businesses/{tenant.public_id}"), path, 200)
    conform.check(public.get(f"/v1/public/businesses/{other_tenant.public_id}"), path, 404)
    conform.check(http.get(f"/v1/public/businesses/{tenant.public_id}"), path, 401)
    preflight = http.options(
        "/v1/public/acks",
        headers={"Origin": "https://shop.example.test", "Access-Control-Request-Method": "POST"},
    )
    conform.check(preflight, "/v1/public/acks", 204)

    acks = "/v1/public/acks"
    utm = {"source": "newsletter", "medium": "email"}
    conform.check(public.post(acks, json={"session": _session_id(), "utm_params": utm}), acks, 200)
    conform.check(public.post(acks, json={"session": "a b"}), acks, 422)
    headers = {"Content-Type": "application/json"}
    conform.check(public.post(acks, content=b"{nope", headers=headers), acks, 400)
    conform.check(public.post(acks, content=b"a=b", headers={"Content-Type": "text/plain"}), acks, 415)
    big = b'{"a":"' + b"x" * 70_000 + b'"}'
    conform.check(public.post(acks, content=big, headers=headers), acks, 413)
    conform.check(public.post("/v1/track/sessions"), "/v1/track/sessions", 200)


def test_event_endpoints_conform(public: httpx.Client, conform: Conformance) -> None:
    """§8.3, §8.3b: track answers exactly {"status":"received"}; errors and batch results as described."""
    path = "/v1/track/events"
    event = {"action": "page.viewed", "url": "https://shop.example.test/", "session": _session_id()}
    ok = conform.check(public.post(path, json=event), path, 200)
    assert ok.content == b'{"status":"received"}'
    conform.check(public.post(path, json={"url": "https://shop.example.test/"}), path, 422)
    conform.check(public.post(path, json={"action": "loyalty.never_declared"}), path, 404)
    batch = {"events": [event, {"action": "page.viewed"}]}
    answer = conform.check(public.post("/v1/track/events/batch", json=batch), "/v1/track/events/batch", 200)
    results = answer.json()["results"]
    assert results[0] == {"status": "received"}
    assert "errors" in results[1]
    conform.check(public.post("/v1/track/events/batch", json={"events": []}), "/v1/track/events/batch", 422)


def test_identity_endpoints_conform(
    public: httpx.Client, private: httpx.Client, http: httpx.Client, tenant: Tenant, conform: Conformance
) -> None:
    """§8.5, §9.1-§9.4: identification, actions, profiles, sessions, attribution, timeline, erasure."""
    session = _session_id()
    identify = "/v1/public/identifications"
    body = {"session": session, "user_id": f"u-{session}", "source": "shop", "name": "Ann", "plan": "gold"}
    conform.check(public.post(identify, json=body), identify, 200)
    conform.check(public.post(identify, json={"user_id": "undefined"}), identify, 422)

    action = f"custom.{uuid.uuid4().hex[:8]}"
    conform.check(private.post("/v1/actions", json={"name": action}), "/v1/actions", 201)
    conform.check(private.get("/v1/actions"), "/v1/actions", 200)
    conform.check(private.get("/v1/actions", params={"limit": 0}), "/v1/actions", 422)
    conform.check(public.get("/v1/actions"), "/v1/actions", 401)

    profiles = "/v1/profiles"
    email = f"{uuid.uuid4().hex[:10]}@example.test"
    created = conform.check(private.post(profiles, json={"first_name": "Bo", "email": email}), profiles, 201)
    profile = created.json()["id"]
    conform.check(private.post(profiles, json={"email": email}), profiles, 200)
    conform.check(private.get(profiles, params={"email": email}), profiles, 200)
    one = "/v1/profiles/{id}"
    conform.check(private.get(f"/v1/profiles/{profile}"), one, 200)
    conform.check(private.patch(f"/v1/profiles/{profile}", json={"properties": {"plan": "gold"}}), one, 200)
    conform.check(private.get("/v1/profiles/nope-not-here"), one, 404)

    other = conform.check(private.post(profiles, json={}), profiles, 201).json()["id"]
    attach = "/v1/sessions/{id}"
    anon = _session_id()
    track = {"action": "page.viewed", "url": "https://shop.example.test/a", "session": anon}
    conform.check(public.post("/v1/track/events", json=track), "/v1/track/events", 200)
    conform.check(private.patch(f"/v1/sessions/{anon}", json={"profile": profile}), attach, 200)
    conform.check(private.post(f"/v1/sessions/{anon}", json={"profile": profile}), attach, 200)
    conflict = conform.check(private.patch(f"/v1/sessions/{anon}", json={"profile": other}), attach, 409)
    assert conflict.json()["session"]["profile"] == profile
    conform.check(private.patch(f"/v1/sessions/{anon}", json={}), attach, 422)
    conform.check(private.get(f"/v1/sessions/{anon}"), attach, 200)
    conform.check(private.get(f"/v1/sessions/{_session_id()}"), attach, 404)
    conform.check(private.get("/v1/sessions", params={"profile": profile}), "/v1/sessions", 200)
    conform.check(private.get("/v1/sessions", params={"profile": "nope"}), "/v1/sessions", 404)

    attribution = "/v1/attribution/events"
    event = {"profile": profile, "action": "order.placed", "order_parameters": {"reference": "o-1"}}
    conform.check(private.post(attribution, json={**event, "amount": 5, "currency": "USD"}), attribution, 200)
    conform.check(
        private.post(attribution, json={"action": "page.viewed", "url": "https://a.test"}), attribution, 422
    )
    conform.check(private.post(attribution, json={**event, "profile": "nope"}), attribution, 404)
    timeline = conform.check(
        private.get(f"/v1/profiles/{profile}/events"), "/v1/profiles/{id}/events", 200
    ).json()
    assert len(timeline["data"]) >= 2
    conform.check(private.get(f"/v1/profiles/{profile}/sessions"), "/v1/profiles/{id}/sessions", 200)
    conform.check(private.delete(f"/v1/profiles/{other}"), one, 204)
    conform.check(private.delete(f"/v1/profiles/{other}"), one, 404)


def test_link_endpoints_conform(
    private: httpx.Client, http: httpx.Client, tenant: Tenant, conform: Conformance
) -> None:
    """§9.5, §10: links, the batch, lists, and the redirect (302 and the 404 page)."""
    body = {
        "destination": "https://shop.example.test/sale?ref=sms#top",
        "campaign": "spring",
        "utm": {"source": "hellotext", "medium": "sms"},
    }
    link = conform.check(private.post("/v1/links", json=body), "/v1/links", 201).json()
    conform.check(private.post("/v1/links", json={"destination": "javascript:alert(1)"}), "/v1/links", 422)
    conform.check(private.post("/v1/links", json={**body, "profile": "nope"}), "/v1/links", 404)
    batch = {"links": [{"destination": "https://shop.example.test/a"}, {"destination": "https://b.test/"}]}
    conform.check(private.post("/v1/links/batch", json=batch), "/v1/links/batch", 201)
    conform.check(private.post("/v1/links/batch", json={"links": []}), "/v1/links/batch", 422)
    conform.check(private.get("/v1/links", params={"campaign": "spring"}), "/v1/links", 200)
    conform.check(private.get(f"/v1/links/{link['id']}"), "/v1/links/{id}", 200)
    conform.check(private.get("/v1/links/nope"), "/v1/links/{id}", 404)
    conform.check(http.get(f"/l/{link['code']}"), "/l/{code}", 302)
    conform.check(http.head(f"/l/{link['code']}"), "/l/{code}", 302)
    conform.check(http.get("/l/zzzzzzzz"), "/l/{code}", 404)
