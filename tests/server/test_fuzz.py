"""Contract fuzzing with schemathesis against the live server (spec http-api §11, §3, §2; issue 7 point 1).

Every operation of the served ``/v1/openapi.json`` gets a bounded, seeded pass of generated requests, in
both generation modes (schema-valid and schema-violating data), and every answer must:

- not be a ``5xx`` (§3.2: input never produces a server error);
- conform to the document: status documented for the operation, content type, body schema, documented
  headers (schemathesis' own checks);
- on ``/v1``, carry ``Cache-Control: no-store`` (§1.3), and every error is the §3.1 envelope
  (``message`` identical to ``description``).

Credentials (§2): public endpoints are called with the public id and with a secret token; private ones
with a secret token, and sometimes with the public id or none at all, which must be ``401 unauthorized``
with ``WWW-Authenticate: Bearer``. Generated requests reference real things some of the time: the fixture
creates a profile, a session, an event, a link and an action, and the fuzzer swaps their ids into path
parameters, cursors and body fields, so lookups succeed as well as fail. A stateful pass follows the links
schemathesis infers between operations (create a profile, then read, patch or erase it; create a link,
then get it...).

The pass is bounded (``HELLOTEXT_FUZZ_EXAMPLES`` per operation, ``HELLOTEXT_FUZZ_STATEFUL`` scenarios) and
seeded (``HELLOTEXT_FUZZ_SEED``), so the normal test run repeats the same requests; ``scripts/fuzz`` raises
the numbers and changes the seed.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hellotext.server.routes.health import OPENAPI_PATH
from hellotext.store.database import Database
from tests.conftest import Tenant, create_tenant

SEED = int(os.environ.get("HELLOTEXT_FUZZ_SEED", "20261203"))
EXAMPLES = int(os.environ.get("HELLOTEXT_FUZZ_EXAMPLES", "20"))
STATEFUL_EXAMPLES = int(os.environ.get("HELLOTEXT_FUZZ_STATEFUL", "20"))
STATEFUL_STEPS = int(os.environ.get("HELLOTEXT_FUZZ_STEPS", "6"))

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _document_operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation of the contract, read at collection time for test ids."""
    with OPENAPI_PATH.open(encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in HTTP_METHODS
        if method in item
    ]


OPERATIONS = _document_operations()


def _header(response: Any, name: str) -> str:
    """A header of a schemathesis response (values are lists there)."""
    value = response.headers.get(name, "")
    return str(value[0] if isinstance(value, list) and value else value or "")


def _cache_control_no_store(ctx: Any, response: Any, case: Any) -> bool | None:
    """§1.3: every ``/v1`` response carries ``Cache-Control: no-store``."""
    if case.operation.path.startswith("/v1/") and case.operation.method.upper() != "OPTIONS":
        assert "no-store" in _header(response, "cache-control"), (
            f"{case.operation.label} answered without Cache-Control: no-store"
        )
    return None


def _error_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """§3.1: every JSON error on /v1 and the root JSON endpoints is the envelope; message == description."""
    if response.status_code < 400 or case.operation.path.startswith("/l/"):
        return None
    if not _header(response, "content-type").startswith("application/json"):
        return None
    body = response.json()
    assert isinstance(body, dict) and body.get("errors"), f"{response.status_code} without an envelope"
    for entry in body["errors"]:
        assert set(entry) >= {"type", "parameter", "description", "message"}, entry
        assert entry["message"] == entry["description"], entry
    return None


CHECKS: list[Callable[..., bool | None]] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    _cache_control_no_store,
    _error_envelope,
]


@dataclass(frozen=True)
class World:
    """The business the fuzzer plays in and real things inside it."""

    base_url: str
    tenant: Tenant
    ids: dict[str, list[str]]


def _must(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.request.url, response.status_code, response.text)
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def world(server: str, database: Database) -> World:
    """A fresh business with one of each kind of thing, created over HTTP."""
    tenant = create_tenant(database, name="Fuzz")
    secret = {"Authorization": f"Bearer {tenant.token}"}
    public = {"Authorization": f"Bearer {tenant.public_id}"}
    session = "fuzz-session-1"
    with httpx.Client(base_url=server, timeout=30.0) as http:
        action = _must(http.post("/v1/actions", json={"name": "fuzz.done"}, headers=secret), 201)
        profile = _must(
            http.post(
                "/v1/profiles",
                json={"email": "fuzz@example.test", "reference": "fuzz-1", "session": session},
                headers=secret,
            ),
            201,
        )
        spare = _must(http.post("/v1/profiles", json={"first_name": "Spare"}, headers=secret), 201)
        for action_name in ("page.viewed", "fuzz.done"):
            event = {"action": action_name, "session": session, "url": "https://shop.example.test/"}
            _must(http.post("/v1/track/events", json=event, headers=public), 200)
        link = _must(
            http.post(
                "/v1/links",
                json={
                    "destination": "https://shop.example.test/p?x=1",
                    "profile": profile["id"],
                    "campaign": "c",
                },
                headers=secret,
            ),
            201,
        )
        events = _must(http.get(f"/v1/profiles/{profile['id']}/events", headers=secret), 200)
    ids = {
        "profile": [profile["id"]],
        # The spare profile is the one an erasure may hit, so the main one keeps its timeline.
        "erasable": [spare["id"]],
        "session": [session],
        "event": [item["id"] for item in events["data"]],
        "link": [link["id"]],
        "code": [link["code"]],
        "action": [action["id"]],
        "action_name": ["fuzz.done", "page.viewed"],
        "public_id": [tenant.public_id],
        "email": ["fuzz@example.test"],
        "reference": ["fuzz-1"],
        "campaign": ["c"],
    }
    return World(base_url=server, tenant=tenant, ids=ids)


def _load_schema(world: World) -> Any:
    """The contract as the server serves it, loaded by schemathesis."""
    document = httpx.get(world.base_url + "/v1/openapi.json", timeout=30.0).json()
    loaded = schemathesis.openapi.from_dict(document)
    loaded.config.update(base_url=world.base_url)
    # Credentials are ours to choose per request (below), not generated.
    loaded.config.generation.update(with_security_parameters=False)
    return loaded


@pytest.fixture(scope="module")
def schema(world: World) -> Any:
    """The served contract, shared by the per-operation tests."""
    return _load_schema(world)


@pytest.fixture(scope="module")
def http_session() -> Iterator[requests.Session]:
    """One keep-alive connection pool for the whole pass."""
    with requests.Session() as session:
        yield session


def _path_kind(path: str) -> str | None:
    """Which real thing the ``{id}``/``{code}`` of a path names."""
    if path.startswith("/v1/public/businesses/"):
        return "public_id"
    if path.startswith("/v1/sessions/"):
        return "session"
    if path.startswith("/v1/profiles/"):
        return "profile"
    if path.startswith("/v1/links/"):
        return "link"
    if path.startswith("/l/"):
        return "code"
    return None


def _cursor_kind(path: str) -> str:
    if "/events" in path:
        return "event"
    for prefix, kind in (("/v1/sessions", "session"), ("/v1/links", "link"), ("/v1/actions", "action")):
        if path.startswith(prefix):
            return kind
    return "profile"


BODY_KINDS = {"profile": "profile", "profile_id": "profile", "session": "session", "action": "action_name"}
QUERY_KINDS = {"profile": "profile", "email": "email", "reference": "reference", "campaign": "campaign"}


def _use_real_ids(case: Any, data: st.DataObject, world: World) -> None:
    """Swap real ids into the places that name things.

    Each kind of thing is either left as generated or replaced by one real id (probability one half), the
    same id everywhere that kind appears in the request, so that e.g. the session of the path and of the
    body agree, or ``profile`` and its alias ``profile_id`` name the same profile.
    """
    chosen: dict[str, str | None] = {}

    def pick(kind: str) -> str | None:
        if kind not in chosen:
            real = data.draw(st.booleans(), label=f"real {kind}")
            chosen[kind] = str(data.draw(st.sampled_from(world.ids[kind]), label=kind)) if real else None
        return chosen[kind]

    operation = case.operation
    # Documented examples may come from one shared object; never edit it in place.
    case.path_parameters = copy.deepcopy(case.path_parameters)
    case.query = copy.deepcopy(case.query)
    case.body = copy.deepcopy(case.body)
    path_kind = _path_kind(operation.path)
    if path_kind is not None and case.path_parameters:
        if operation.method.upper() == "DELETE":
            path_kind = "erasable"
        value = pick(path_kind)
        if value is not None:
            case.path_parameters[next(iter(case.path_parameters))] = value
    if isinstance(case.query, dict):
        for name in list(case.query):
            kind = QUERY_KINDS.get(name)
            if name in ("starting_after", "ending_before"):
                kind = _cursor_kind(operation.path)
            value = pick(kind) if kind else None
            if value is not None:
                case.query[name] = value
    if isinstance(case.body, dict):
        for name in list(case.body):
            kind = BODY_KINDS.get(name)
            value = pick(kind) if kind else None
            if value is not None:
                case.body[name] = value


def _credential_choices(operation: Any) -> list[str]:
    """Which credentials to try on an operation (§2)."""
    path = operation.path
    if operation.method.upper() == "OPTIONS" or not path.startswith("/v1/") or path == "/v1/openapi.json":
        return ["none"]
    if path.startswith(("/v1/public/", "/v1/track/")):
        return ["public", "secret", "public", "secret", "none"]
    return ["secret", "secret", "secret", "public", "none"]


def _headers_for(credential: str, world: World) -> dict[str, str]:
    if credential == "public":
        return {"Authorization": f"Bearer {world.tenant.public_id}"}
    if credential == "secret":
        return {"Authorization": f"Bearer {world.tenant.token}"}
    return {}


def _expects_401(operation: Any, credential: str) -> bool:
    choices = set(_credential_choices(operation))
    if choices == {"none"}:
        return False
    private = not operation.path.startswith(("/v1/public/", "/v1/track/"))
    return credential == "none" or (private and credential == "public")


def _examples_for(operation: Any) -> int:
    """Fewer examples where there is little to vary: preflights and the static files at the root."""
    if operation.method.upper() == "OPTIONS" or not operation.path.startswith(("/v1/", "/l/")):
        return max(3, EXAMPLES // 4)
    return EXAMPLES


def _fuzz_settings(examples: int) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink],
        print_blob=False,
    )


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_conforms_under_fuzzing(
    method: str, path: str, schema: Any, world: World, http_session: requests.Session
) -> None:
    """§3.2, §11: generated requests (valid and invalid) never get a 5xx and every answer conforms.

    §2: a private endpoint called with the public id or no credential is 401 with ``WWW-Authenticate``.
    """
    if path == "/v1/openapi.json":
        # schemathesis leaves out the document it was loaded from; test_openapi checks this answer.
        response = httpx.get(world.base_url + path, timeout=30.0)
        assert response.status_code == 200 and response.json()["openapi"].startswith("3.1")
        return
    operation = schema[path][method]
    strategies: dict[str, st.SearchStrategy[Any]] = {
        mode.value: operation.as_strategy(generation_mode=mode)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    }
    examples = operation.get_strategies_from_examples()
    if examples:
        # The documented examples (with real ids swapped in) reach the success paths that random data
        # rarely does: an attach to a real profile, an event of a declared action.
        strategies["example"] = st.one_of(examples)
    credentials = _credential_choices(operation)
    seen: dict[int, int] = {}

    @_fuzz_settings(_examples_for(operation))
    @hypothesis.seed(SEED)
    @hypothesis.given(data=st.data())
    def run(data: st.DataObject) -> None:
        mode = data.draw(st.sampled_from(list(strategies)), label="mode")
        case = data.draw(strategies[mode], label="case")
        _use_real_ids(case, data, world)
        credential = data.draw(st.sampled_from(credentials), label="credential")
        headers = _headers_for(credential, world)
        response = case.call(session=http_session, headers=headers, timeout=30)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        case.validate_response(
            response, checks=CHECKS, headers=headers, transport_kwargs={"base_url": world.base_url}
        )
        if _expects_401(operation, credential):
            assert response.status_code == 401, (credential, response.status_code, response.text)
            assert _header(response, "www-authenticate").lower().startswith("bearer")
            assert response.json()["errors"][0]["type"] == "unauthorized"

    run()
    print(f"{method} {path}: statuses {sorted(seen.items())}")  # shown with -s; helps judge coverage
    assert seen, "no request was made"
    assert all(status < 500 for status in seen), seen


def test_stateful_links_conform(world: World) -> None:
    """§11 with linked operations: sequences that reuse what earlier answers returned still conform.

    The links are the ones schemathesis infers from the document (a created profile's ``id`` into
    ``GET/PATCH/DELETE /v1/profiles/{id}``, a link's ``id`` into ``GET /v1/links/{id}``, ...). Every call
    carries the secret token, which every ``/v1`` endpoint accepts.
    """
    schema = _load_schema(world)
    schema.config.generation.update(modes=[GenerationMode.POSITIVE])
    base = schema.as_state_machine()
    headers = _headers_for("secret", world)
    statuses: dict[tuple[str, int], int] = {}

    class Machine(base):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": world.base_url, "headers": headers, "timeout": 30}

        def after_call(self, response: Any, case: Any) -> None:
            key = (case.operation.label, response.status_code)
            statuses[key] = statuses.get(key, 0) + 1
            super().after_call(response, case)

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            case.validate_response(response, checks=CHECKS, headers=headers, transport_kwargs=kwargs)

    hypothesis.seed(SEED)(Machine)
    Machine.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
    )
    print(f"stateful: {sorted(statuses.items())}")
    created = {label for (label, status) in statuses if status == 201}
    followed = {label for (label, status) in statuses if label.startswith("GET") and status == 200}
    # The pass must have created things and read some back, or it tested nothing stateful.
    assert created, statuses
    assert followed, statuses
    assert all(status < 500 for (_label, status) in statuses), statuses
