"""Helpers of the hostile-input suites (test_hostile.py, test_hostile_values.py).

The body-taking endpoints with a body that parses but fails one field check, a per-business snapshot of
every table (row count and content digest) to prove that nothing was written, and a raw HTTP/1.1 client
for what httpx will not send: lying lengths, chunked bodies, stalls.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select as sql_select

from hellotext.store.database import Database
from hellotext.store.schema import metadata
from tests.conftest import Tenant, assert_error, create_tenant

BODY_LIMIT = 65_536
BATCH_LIMIT = 1_048_576


# --------------------------------------------------------------------------------------------------------
# Endpoints and the state of the database
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A body-taking endpoint and a body that parses but fails one field check.

    Attributes:
        name: test id.
        method: HTTP method.
        path: path; ``{profile}`` is replaced by a real profile of the business.
        private: needs a secret token (else the public id is used).
        bad: the failing body; ``None`` for an endpoint that ignores its body (then it answers 200).
        error: (status, type, parameter) that `bad` is answered with.
        limit: the endpoint's body limit.
    """

    name: str
    method: str
    path: str
    private: bool
    bad: dict[str, Any] | None
    error: tuple[int, str, str | None] = (200, "", None)
    limit: int = BODY_LIMIT


ENDPOINTS = [
    Endpoint("acks", "POST", "/v1/public/acks", False, {"session": "a b"}, (422, "invalid", "session")),
    Endpoint(
        "track",
        "POST",
        "/v1/track/events",
        False,
        {"action": "page.viewed", "url": "https://a.test/", "session": "a b"},
        (422, "invalid", "session"),
    ),
    Endpoint(
        "track_batch",
        "POST",
        "/v1/track/events/batch",
        False,
        {"events": "nope"},
        (422, "invalid", "events"),
        BATCH_LIMIT,
    ),
    Endpoint(
        "identify",
        "POST",
        "/v1/public/identifications",
        False,
        {"user_id": "u-1", "session": "a b"},
        (422, "invalid", "session"),
    ),
    Endpoint("mint", "POST", "/v1/track/sessions", False, None),
    Endpoint("actions", "POST", "/v1/actions", True, {"name": "Not Valid"}, (422, "invalid", "name")),
    Endpoint("attach_patch", "PATCH", "/v1/sessions/h-1", True, {"profile": 5}, (422, "invalid", "profile")),
    Endpoint("attach_post", "POST", "/v1/sessions/h-1", True, {"profile": 5}, (422, "invalid", "profile")),
    Endpoint("profile_create", "POST", "/v1/profiles", True, {"email": "nope"}, (422, "invalid", "email")),
    Endpoint(
        "profile_patch", "PATCH", "/v1/profiles/{profile}", True, {"email": "nope"}, (422, "invalid", "email")
    ),
    Endpoint(
        "attribution",
        "POST",
        "/v1/attribution/events",
        True,
        {"action": "page.viewed", "url": "https://a.test/"},
        (422, "parameter_missing", "profile"),
    ),
    Endpoint(
        "links", "POST", "/v1/links", True, {"destination": "javascript:x"}, (422, "invalid", "destination")
    ),
    Endpoint(
        "links_batch",
        "POST",
        "/v1/links/batch",
        True,
        {"links": "nope"},
        (422, "invalid", "links"),
        BATCH_LIMIT,
    ),
]
ENDPOINT_IDS = [e.name for e in ENDPOINTS]

Snapshot = dict[str, tuple[int, str]]


def snapshot(db: Database, business_pk: int) -> Snapshot:
    """Per table: how many rows belong to the business, and a digest of their content."""

    def read(conn: Any) -> Snapshot:
        out: Snapshot = {}
        for table in metadata.sorted_tables:
            query = sql_select(table)
            if "business_id" in table.c:
                query = query.where(table.c.business_id == business_pk)
            elif table.name == "businesses":
                query = query.where(table.c.id == business_pk)
            rows = sorted(repr(tuple(row)) for row in conn.execute(query))
            out[table.name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16])
        return out

    return db.read_sync(read)


@dataclass
class Target:
    """An endpoint bound to a business of its own: where to send, with what, and what is stored."""

    endpoint: Endpoint
    base_url: str
    tenant: Tenant
    db: Database
    path: str
    credential: str
    profile: str
    client: httpx.Client | None = None
    before: Snapshot = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}

    def send(
        self, content: bytes, content_type: str | None = "application/json", **headers: str
    ) -> httpx.Response:
        """Send `content` as the body with a correct Content-Length."""
        sent = {**self.auth, **headers}
        if content_type is not None:
            sent["Content-Type"] = content_type
        send = self.client.request if self.client is not None else httpx.request
        return send(
            self.endpoint.method, self.base_url + self.path, content=content, headers=sent, timeout=60.0
        )

    def mark(self) -> None:
        """Remember the business's rows; `assert_nothing_written` compares with them."""
        self.before = snapshot(self.db, self.tenant.pk)

    def assert_nothing_written(self) -> None:
        after = snapshot(self.db, self.tenant.pk)
        changed = {
            name: (self.before[name], after[name]) for name in after if self.before[name] != after[name]
        }
        assert not changed, f"{self.endpoint.name} wrote: {changed}"

    def assert_parsed(self, response: httpx.Response) -> None:
        """The answer of the bad body: the request got past size, media type and JSON checks."""
        if self.endpoint.bad is None:  # the legacy mint ignores its body and mints
            assert response.status_code == 200, response.text
            assert "id" in response.json()
            return
        status, type_, parameter = self.endpoint.error
        assert_error(response, status, type_, parameter)
        self.assert_nothing_written()


def bind(
    endpoint: Endpoint,
    server: str,
    database: Database,
    businesses: dict[str, tuple[Tenant, str]],
    client: httpx.Client,
) -> Target:
    """`endpoint` bound to its business (created with one profile on first use), rows remembered."""
    if endpoint.name not in businesses:
        tenant = create_tenant(database, name=f"Hostile {endpoint.name}")
        created = client.post(
            server + "/v1/profiles",
            json={"first_name": "Target"},
            headers={"Authorization": f"Bearer {tenant.token}"},
        )
        assert created.status_code == 201, created.text
        businesses[endpoint.name] = (tenant, created.json()["id"])
    tenant, profile = businesses[endpoint.name]
    made = Target(
        endpoint=endpoint,
        base_url=server,
        tenant=tenant,
        db=database,
        path=endpoint.path.replace("{profile}", profile),
        credential=tenant.token if endpoint.private else tenant.public_id,
        profile=profile,
        client=client,
    )
    made.mark()
    return made


def body_with(base: dict[str, Any] | None, *raw_members: str) -> bytes:
    """JSON text of `base` with extra members spliced in as raw text (``"key": <value text>``)."""
    text = json.dumps(base or {})
    inner = text[1:-1].strip()
    members = [m for m in (inner, *raw_members) if m]
    return ("{" + ", ".join(members) + "}").encode()


def padded(base: dict[str, Any] | None, size: int) -> bytes:
    """`base` plus a ``pad`` string making the body exactly `size` bytes."""
    skeleton = body_with(base, '"pad": ""')
    return body_with(base, '"pad": "' + "x" * (size - len(skeleton)) + '"')


# --------------------------------------------------------------------------------------------------------
# Raw HTTP: lying lengths, chunked bodies, stalls
# --------------------------------------------------------------------------------------------------------


@dataclass
class RawAnswer:
    """A response read off a raw socket; `status` 0 when the server closed without answering, -1 when it
    neither answered nor closed in time."""

    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def raw_head(target: Target, headers: dict[str, str], path: str | None = None) -> bytes:
    host = urlsplit(target.base_url).netloc
    lines = [f"{target.endpoint.method} {path or target.path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in {**target.auth, **headers}.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def raw_exchange(
    base_url: str, parts: list[bytes], *, pause: float = 0.0, timeout: float = 30.0
) -> tuple[RawAnswer, int]:
    """Send `parts` one after another (`pause` seconds apart, stopping early once the server answers or
    closes), then read the answer. Returns it and how many parts were sent."""
    address = urlsplit(base_url)
    started = time.monotonic()
    sock = socket.create_connection((address.hostname or "127.0.0.1", address.port or 80), timeout=timeout)
    sent = 0
    try:
        for part in parts:
            if pause and sent:
                readable, _, _ = select.select([sock], [], [], pause)
                if readable:  # the server answered (or hung up) before the body was complete
                    break
            try:
                sock.sendall(part)
            except OSError:
                break
            sent += 1
        response = http.client.HTTPResponse(sock)
        try:
            response.begin()
            body = response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError):
            return RawAnswer(0, {}, b"", time.monotonic() - started), sent
        except TimeoutError:  # no answer at all within `timeout`: a hang, never a pass
            return RawAnswer(-1, {}, b"", time.monotonic() - started), sent
        headers = {k.lower(): v for k, v in response.getheaders()}
        return RawAnswer(response.status, headers, body, time.monotonic() - started), sent
    finally:
        sock.close()


def chunked(body: bytes, size: int = 16_384) -> bytes:
    """`body` in HTTP/1.1 chunked transfer coding."""
    pieces = [
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)
    ]
    return b"".join(pieces) + b"0\r\n\r\n"


def assert_raw_error(answer: RawAnswer, status: int, type_: str, parameter: str | None = None) -> None:
    assert answer.status == status, (answer.status, answer.body[:300])
    assert answer.headers["content-type"].startswith("application/json")
    entries = answer.json()["errors"]
    assert (type_, parameter) in [(e["type"], e["parameter"]) for e in entries], answer.body
    assert all(e["message"] == e["description"] for e in entries)


def expect(
    response: httpx.Response, status: int, type_: str, parameter: str | None = None, *, case: Any
) -> None:
    """`assert_error`, naming the hostile sample when it fails."""
    try:
        assert_error(response, status, type_, parameter)
    except AssertionError as exc:
        raise AssertionError(f"sample {case!r}: {exc}") from None
