"""Hostile input through real HTTP (spec http-api §1.2, §1.5, §3, §5.1, §9.5.1, §10; issue 7 point 1).

Every body-taking endpoint gets the same treatment: bodies at and over the size limits (declared, chunked and
lying about their length), deep nesting, numbers out of range, ``NaN``/``Infinity``, invalid UTF-8, unpaired
surrogates, NUL and control characters, wrong content types, duplicate keys and non-object tops. Each must
be answered with the §3.1 envelope of the status the spec gives, and must write NOTHING: every table's rows
of the business are compared before and after (count and content). Session ids (§5.1), link destinations
and redirect headers (§9.5.1, §10) and slow bodies (the request deadline) have their own tests below.

Many tests send a "bad" body: one that parses but fails one field check (say ``{"session": "a b"}``). When
the hostile addition is harmless the answer is that field error, which proves the body got past the size,
type and parsing checks; when it is not, the answer is the hostile input's own error.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from sqlalchemy import select as sql_select

from hellotext.config import Settings
from hellotext.store.database import Database
from hellotext.store.schema import metadata
from tests.conftest import Tenant, assert_error, create_tenant, drop_database, make_settings
from tests.servers import ServerProcess

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


@pytest.fixture(scope="module")
def businesses(database: Database) -> dict[str, tuple[Tenant, str]]:
    """One business per endpoint (and one profile in it), created when first needed."""
    return {}


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """One client (and connection pool) for the module."""
    with httpx.Client(timeout=60.0) as shared:
        yield shared


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


@pytest.fixture(params=ENDPOINTS, ids=ENDPOINT_IDS)
def target(
    request: pytest.FixtureRequest,
    server: str,
    database: Database,
    businesses: dict[str, tuple[Tenant, str]],
    client: httpx.Client,
) -> Target:
    """Each body-taking endpoint in turn."""
    return bind(request.param, server, database, businesses, client)


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


# --------------------------------------------------------------------------------------------------------
# Size limits (§1.2: 64 KiB, 1 MiB on batch endpoints; judged from Content-Length, else while reading)
# --------------------------------------------------------------------------------------------------------


def test_body_of_exactly_the_limit_passes_the_size_check_section1_2(target: Target) -> None:
    """§1.2: a body of exactly the limit (65,536 or 1,048,576 bytes) is read and judged on its fields."""
    body = padded(target.endpoint.bad, target.endpoint.limit)
    assert len(body) == target.endpoint.limit
    target.assert_parsed(target.send(body))


def test_body_over_the_limit_is_413_section1_2(target: Target) -> None:
    """§1.2: limit + 1 bytes (or far more: one body the size of the batch limit) → 413, nothing written."""
    for over in (1, 1_000, BATCH_LIMIT):
        body = padded(target.endpoint.bad, target.endpoint.limit + over)
        expect(target.send(body), 413, "payload_too_large", case=len(body))
    target.assert_nothing_written()


def test_chunked_body_is_measured_while_reading_section1_2(target: Target) -> None:
    """§1.2: without Content-Length the limit is enforced while reading: limit passes, limit + 1 is 413."""
    head = raw_head(target, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    exact = padded(target.endpoint.bad, target.endpoint.limit)
    answer, _ = raw_exchange(target.base_url, [head + chunked(exact)])
    if target.endpoint.bad is None:
        assert answer.status == 200
    else:
        assert_raw_error(answer, *target.endpoint.error)
    target.mark()
    over = padded(target.endpoint.bad, target.endpoint.limit + 1)
    answer, _ = raw_exchange(target.base_url, [head + chunked(over)])
    assert_raw_error(answer, 413, "payload_too_large")
    target.assert_nothing_written()


def test_declared_length_over_the_limit_is_413_before_any_body_section1_2(target: Target) -> None:
    """§1.2: a Content-Length over the limit is refused at once, without waiting for (or buffering) a body."""
    head = raw_head(
        target, {"Content-Type": "application/json", "Content-Length": str(target.endpoint.limit + 1)}
    )
    answer, _ = raw_exchange(target.base_url, [head], timeout=10.0)
    assert_raw_error(answer, 413, "payload_too_large")
    assert answer.seconds < 10
    target.assert_nothing_written()


def test_bytes_past_the_declared_length_are_not_the_body_section1_2(target: Target) -> None:
    """§1.2: the body is the declared Content-Length bytes only. A length that cuts a valid body short is
    answered 400 from those bytes; what follows is never read as part of it; nothing is written."""
    whole = body_with(target.endpoint.bad, '"session": "lying-length-1"')
    cut = len(whole) // 2
    head = raw_head(target, {"Content-Type": "application/json", "Content-Length": str(cut)})
    answer, _ = raw_exchange(target.base_url, [head + whole[:cut], whole[cut:] + b"x" * 100_000], pause=5.0)
    assert_raw_error(answer, 400, "malformed_json")
    target.assert_nothing_written()


def test_unreadable_content_length_is_400_section1_2(target: Target) -> None:
    """§1.2/§3: a Content-Length that is not a number is refused with 400 and nothing is written.

    (uvicorn's HTTP parser refuses these before the application sees them, so the body of this 400 is its
    plain-text one, not the §3.1 envelope.)
    """
    for length in ("abc", "-1", "1e3", "10, 20", "0x10"):
        head = raw_head(target, {"Content-Type": "application/json", "Content-Length": length})
        answer, _ = raw_exchange(target.base_url, [head + b"{}"])
        assert answer.status in (0, 400), (length, answer)
    target.assert_nothing_written()


def test_credential_is_checked_before_the_body_section3_3(target: Target) -> None:
    """§3.3: credential (401) comes before body size (413) and parsing (400)."""
    for headers in ({}, {"Authorization": "Bearer nope"}):
        for body in (b"x" * (target.endpoint.limit + 1), b"{nope"):
            assert target.client is not None
            response = target.client.request(
                target.endpoint.method,
                target.base_url + target.path,
                content=body,
                headers={"Content-Type": "application/json", **headers},
                timeout=30.0,
            )
            assert_error(response, 401, "unauthorized")
    target.assert_nothing_written()


# --------------------------------------------------------------------------------------------------------
# Parsing (§1.2: unparseable → 400 malformed_json)
# --------------------------------------------------------------------------------------------------------


def nest(levels: int, kind: str = "array") -> str:
    if kind == "array":
        return "[" * levels + "]" * levels
    return '{"a":' * levels + "1" + "}" * levels  # 6 bytes a level: 10,000 levels fit in 64 KiB


def test_ten_thousand_levels_are_malformed_json_section1_2(target: Target) -> None:
    """§1.2: nesting 10,000 levels deep → 400 malformed_json (as a member or as the whole body)."""
    for kind in ("array", "object"):
        deep = nest(10_000, kind)
        expect(target.send(body_with(target.endpoint.bad, '"x": ' + deep)), 400, "malformed_json", case=kind)
        expect(target.send(deep.encode()), 400, "malformed_json", case=kind)
    target.assert_nothing_written()


def test_thirty_two_levels_parse_thirty_three_do_not_section1_2(target: Target) -> None:
    """§1.2: nesting deeper than 32 levels is malformed; 32 (the body's own object included) is fine."""
    target.assert_parsed(target.send(body_with(target.endpoint.bad, '"x": ' + nest(31))))
    target.mark()
    assert_error(target.send(body_with(target.endpoint.bad, '"x": ' + nest(32))), 400, "malformed_json")
    target.assert_nothing_written()


OUT_OF_RANGE = ["1e400", "-1e400", "1" + "0" * 400 + ".5", "9" * 5_000, "1e99999999999999999999"]


def test_numbers_out_of_range_are_malformed_json_section1_2(target: Target) -> None:
    """§1.2: numbers too large to convert (1e400, 5,000 digits...) → 400 malformed_json, wherever they are."""
    for number in OUT_OF_RANGE:
        for member in ('"x": ' + number, f'"x": {{"y": [{number}]}}'):
            response = target.send(body_with(target.endpoint.bad, member))
            expect(response, 400, "malformed_json", case=member[:40])
    target.assert_nothing_written()


def test_a_400_digit_integer_in_an_unknown_key_is_not_a_crash_section3_2(target: Target) -> None:
    """§3.2: a 400-digit integer converts; where it means nothing the body is judged on its fields."""
    target.assert_parsed(target.send(body_with(target.endpoint.bad, '"x": ' + "7" * 400)))


def test_non_json_number_literals_are_malformed_json_section1_2(target: Target) -> None:
    """§1.2: the literals NaN, Infinity and -Infinity (and their cousins) are not JSON → 400."""
    for literal in ("NaN", "Infinity", "-Infinity", "nan", "inf", "undefined", "+1", "01", ".5"):
        response = target.send(body_with(target.endpoint.bad, '"x": ' + literal))
        expect(response, 400, "malformed_json", case=literal)
    target.assert_nothing_written()


INVALID_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"caf\xe9", b"\xf8\x88\x80\x80\x80"]


def test_invalid_utf8_is_malformed_json_section1_2(target: Target) -> None:
    """§1.2: bodies are UTF-8; invalid sequences (a stray byte, an overlong or surrogate encoding, a cut
    sequence, Latin-1) in a value or a key → 400 malformed_json."""
    for bad in INVALID_UTF8:
        for member in (b'"x": "a' + bad + b'b"', b'"a' + bad + b'b": 1'):
            body = body_with(target.endpoint.bad, "__MEMBER__").replace(b"__MEMBER__", member)
            expect(target.send(body), 400, "malformed_json", case=member)
    target.assert_nothing_written()


def test_unpaired_surrogate_escapes_are_malformed_json_section1_2(target: Target) -> None:
    """§1.2: an unpaired surrogate escape (``"\\ud800"``), in a value or a key → 400 malformed_json."""
    for escape in ("\\ud800", "\\udc00", "\\ud800\\u0041", "\\ud800\\ud800", "\\udbff"):
        for member in (f'"x": "a{escape}b"', f'"a{escape}b": 1'):
            expect(target.send(body_with(target.endpoint.bad, member)), 400, "malformed_json", case=member)
    target.assert_nothing_written()


def test_raw_control_characters_in_strings_are_malformed_json_section1_2(target: Target) -> None:
    """§1.2: JSON strings cannot hold raw control characters → 400 malformed_json."""
    for byte in (0x00, 0x01, 0x0A, 0x0D, 0x1B, 0x1F):
        member = b'"x": "a' + bytes([byte]) + b'b"'
        body = body_with(target.endpoint.bad, "__MEMBER__").replace(b"__MEMBER__", member)
        expect(target.send(body), 400, "malformed_json", case=byte)
    target.assert_nothing_written()


NUL_PLACES = [
    ('"note": "a\\u0000b"', "note"),
    ('"note": {"deep": ["ok", "\\u0000"]}', "note.deep[1]"),
    ('"note": {"k\\u0000": 1}', "note.k\x00"),
    ('"\\u0000": 1', "\x00"),
]


def test_nul_anywhere_is_422_with_its_path_section1_2(target: Target) -> None:
    """§1.2: a string (or key) containing U+0000 → 422 invalid with the path of that value."""
    for member, path in NUL_PLACES:
        expect(target.send(body_with(target.endpoint.bad, member)), 422, "invalid", path, case=member)
    target.assert_nothing_written()


def test_duplicate_keys_last_one_wins_section1_2(target: Target) -> None:
    """§1.2: of duplicate keys the last one wins: a NUL in an earlier copy is gone, in the last it counts."""
    target.assert_parsed(target.send(body_with(target.endpoint.bad, '"note": "a\\u0000"', '"note": "clean"')))
    target.mark()
    response = target.send(body_with(target.endpoint.bad, '"note": "clean"', '"note": "a\\u0000"'))
    assert_error(response, 422, "invalid", "note")
    target.assert_nothing_written()


def test_duplicate_keys_the_stored_value_is_the_last_section1_2(
    public: httpx.Client, private: httpx.Client
) -> None:
    """§1.2: duplicate keys, last wins, in what is stored too (a session and an action name)."""
    json_type = {"Content-Type": "application/json"}
    body = b'{"session": "a b", "session": "dup-last-1"}'
    assert public.post("/v1/public/acks", content=body, headers=json_type).status_code == 200
    assert private.get("/v1/sessions/dup-last-1").status_code == 200
    assert private.get("/v1/sessions/a%20b").status_code == 404
    body = b'{"name": "Not Valid", "name": "dup.last", "description": "x", "description": null}'
    created = private.post("/v1/actions", content=body, headers=json_type)
    assert created.status_code == 201, created.text
    assert (created.json()["name"], created.json()["description"]) == ("dup.last", None)


def test_top_level_must_be_an_object_section1_2(target: Target) -> None:
    """§1.2: any top-level JSON value but an object → 422 invalid with parameter null."""
    for top in ("[]", "[{}]", '"text"', "1", "1.5", "null", "true", "false", '"\\u0000"'):
        expect(target.send(top.encode()), 422, "invalid", None, case=top)
    target.assert_nothing_written()


def test_other_unparseable_bodies_are_malformed_json_section1_2(target: Target) -> None:
    """§1.2: blank (but not empty) bodies, trailing garbage, two objects, a byte-order mark, single
    quotes, comments → 400 malformed_json."""
    texts = [b" ", b"\n", b"{", b"{}{}", b'{"a":1}x', b"\xef\xbb\xbf{}", b"{'a': 1}", b"{} // c", b'{"a":1,}']
    for text in texts:
        expect(target.send(text), 400, "malformed_json", case=text)
    target.assert_nothing_written()


# --------------------------------------------------------------------------------------------------------
# Content types (§1.2)
# --------------------------------------------------------------------------------------------------------

NOT_JSON_TYPES = [
    "text/plain",
    "text/json",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "application/jsonx",
    "application/xml",
    "json",
    "application/json+",
    None,
]
JSON_TYPES = [
    "application/json; charset=utf-8",
    "Application/JSON",
    "application/json-patch+json",
    "application/vnd.api+json",
    "application/merge-patch+json; charset=UTF-8",
]


def test_non_json_content_types_are_415_section1_2(target: Target) -> None:
    """§1.2: a non-empty body that is not ``application/json`` or ``application/*+json`` (or has no type)
    → 415, even when the body is perfectly good JSON."""
    body = json.dumps(target.endpoint.bad or {}).encode()
    for content_type in NOT_JSON_TYPES:
        expect(target.send(body, content_type), 415, "unsupported_media_type", case=content_type)
    target.assert_nothing_written()


def test_json_content_types_are_read_section1_2(target: Target) -> None:
    """§1.2: ``application/json`` with parameters, any case, and ``application/*+json`` are JSON."""
    for content_type in JSON_TYPES:
        target.assert_parsed(target.send(json.dumps(target.endpoint.bad or {}).encode(), content_type))


def test_checks_run_in_the_spec_order_section3_3(target: Target) -> None:
    """§3.3: size (413) before media type (415) before parsing (400); an empty body is ``{}`` whatever
    its type."""
    too_big = b"x" * (target.endpoint.limit + 1)
    assert_error(target.send(too_big, "text/plain"), 413, "payload_too_large")
    assert_error(target.send(b"{nope", "text/plain"), 415, "unsupported_media_type")
    target.assert_nothing_written()
    as_json = target.send(b"{}")
    target.mark()
    empty = target.send(b"", "text/plain")
    assert empty.status_code == as_json.status_code
    if empty.status_code >= 400:
        assert empty.json() == as_json.json()
        target.assert_nothing_written()


# --------------------------------------------------------------------------------------------------------
# Session ids (§5.1): 1-256 characters in U+0021-U+007E except "," and ";"
# --------------------------------------------------------------------------------------------------------

SESSION_ENDPOINTS = ["acks", "track", "identify", "attribution", "profile_create", "attach_patch"]
BAD_SESSIONS = {
    "257-chars": "s" * 257,
    "semicolon": "a;b",
    "comma": "a,b",
    "space": "a b",
    "leading-space": " abc",
    "tab": "a\tb",
    "non-ascii": "caf\u00e9",
    "snowman": "\u2603",
    "del": "a\x7fb",
    "escaped-control": "a\x01b",
    "cookie-attributes": "hello_session=x; HttpOnly",
    "crlf-cookie": "x\r\nSet-Cookie: a=b",
}


def session_request(target: Target, session: str) -> httpx.Response:
    """Name `session` the way the endpoint takes it (attach: in the path)."""
    name = target.endpoint.name
    if name == "attach_patch":
        path = "/v1/sessions/" + quote(session, safe="")
        assert target.client is not None
        return target.client.patch(
            target.base_url + path, json={"profile": target.profile}, headers=target.auth
        )
    body: dict[str, Any] = {"session": session}
    if name in ("track", "attribution"):
        body.update(action="page.viewed", url="https://a.test/")
    if name == "identify":
        body["user_id"] = "u-1"
    if name == "attribution":
        body["profile"] = target.profile
    return target.send(json.dumps(body).encode())


@pytest.fixture(params=SESSION_ENDPOINTS)
def session_target(
    request: pytest.FixtureRequest,
    server: str,
    database: Database,
    businesses: dict[str, tuple[Tenant, str]],
    client: httpx.Client,
) -> Target:
    """Each endpoint that names a session."""
    return bind(ENDPOINTS[ENDPOINT_IDS.index(request.param)], server, database, businesses, client)


def test_bad_session_ids_are_422_section5_1(session_target: Target) -> None:
    """§5.1: a session id breaking the rule (257 characters, ``;``, ``,``, spaces, non-ASCII, control
    characters, cookie syntax) → 422 invalid (parameter ``session``), nothing written."""
    for name, session in BAD_SESSIONS.items():
        expect(session_request(session_target, session), 422, "invalid", "session", case=name)
    session_target.assert_nothing_written()


def test_session_ids_at_the_edges_are_accepted_section5_1(session_target: Target) -> None:
    """§5.1: 256 characters and any printable ASCII but "," and ";" is a valid id, stored exactly."""
    assert session_target.client is not None
    secret = {"Authorization": f"Bearer {session_target.tenant.token}"}
    for session in ("s" * 256, "hello_session=x", 'q"uote~!', "x" * 255 + "~", "%41", "a"):
        response = session_request(session_target, session)
        assert response.status_code in (200, 201), (session, response.text)
        stored = session_target.client.get(
            session_target.base_url + "/v1/sessions/" + quote(session, safe=""), headers=secret
        )
        assert stored.status_code == 200 and stored.json()["id"] == session, (session, stored.text)


# --------------------------------------------------------------------------------------------------------
# Header injection: link destinations, UTM values, cookies (§9.5.1, §10)
# --------------------------------------------------------------------------------------------------------


@pytest.fixture
def links_target(database: Database, server: str, client: httpx.Client) -> Target:
    """``POST /v1/links`` in a fresh business."""
    tenant = create_tenant(database, name="Hostile links")
    links = ENDPOINTS[ENDPOINT_IDS.index("links")]
    made = Target(links, server, tenant, database, "/v1/links", tenant.token, "", client)
    made.mark()
    return made


INJECTED_DESTINATIONS = [
    "https://shop.example.test/a\r\nSet-Cookie: a=1",
    "https://shop.example.test/a\nLocation: https://evil.test/",
    "https://shop.example.test/a\rX-Injected: 1",
    "https://shop.example.test/?q=1\r\n\r\n<script>",
    "https://shop.example.test/a\tb",
    "https://shop.example.test/a b",
    "https://shop.example.test/\u2028x",
    "https://shop.example.test/\x00",
    "https://evil.test\r\n.shop.example.test/",
]


def test_destinations_with_raw_line_breaks_are_422_section9_5_1(links_target: Target) -> None:
    """§9.5.1: whitespace or control characters in a destination → 422 (``destination``); nothing written.
    In a batch the item is named (``links[1].destination``) and no link is created."""
    assert links_target.client is not None
    for destination in INJECTED_DESTINATIONS:
        response = links_target.send(json.dumps({"destination": destination}).encode())
        expect(response, 422, "invalid", "destination", case=destination)
        batch = {"links": [{"destination": "https://shop.example.test/ok"}, {"destination": destination}]}
        response = links_target.client.post(
            links_target.base_url + "/v1/links/batch", json=batch, headers=links_target.auth
        )
        expect(response, 422, "invalid", "links[1].destination", case=destination)
    links_target.assert_nothing_written()


def click_raw(base_url: str, code: str, extra: str = "") -> RawAnswer:
    host = urlsplit(base_url).netloc
    head = f"GET /l/{code} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0 hostile-test\r\n{extra}"
    answer, _ = raw_exchange(base_url, [(head + "Connection: close\r\n\r\n").encode("latin-1")])
    return answer


def assert_clean_redirect(answer: RawAnswer) -> str:
    assert answer.status == 302, answer
    assert set(answer.headers) <= {
        "date",
        "server",
        "location",
        "cache-control",
        "content-length",
        "connection",
    }, answer.headers
    location = answer.headers["location"]
    assert not any(ch in location for ch in "\r\n\t "), location
    return location


def test_encoded_line_breaks_stay_encoded_in_the_redirect_section10(links_target: Target) -> None:
    """§10: ``%0d%0a`` in a destination (a valid URL) reaches ``Location`` still encoded; no header is
    injected, no cookie set; an encoded ``hello_session`` is replaced by the fresh session."""
    destination = (
        "https://shop.example.test/a%0d%0aSet-Cookie:%20a=1?hello_session=z%0D%0AX-Injected:%201&k=%0a#f%0d"
    )
    created = links_target.send(json.dumps({"destination": destination}).encode())
    assert created.status_code == 201, created.text
    location = assert_clean_redirect(click_raw(links_target.base_url, created.json()["code"]))
    assert location.startswith("https://shop.example.test/a%0d%0aSet-Cookie:%20a=1?hello_session=")
    assert "X-Injected" not in location and location.endswith("&k=%0a#f%0d")


def test_utm_values_with_line_breaks_are_percent_encoded_section10(links_target: Target) -> None:
    """§10: UTM values are appended percent-encoded, so line breaks in them cannot split headers."""
    utm = {"source": "a\r\nSet-Cookie: b=2", "medium": "x\nX-Injected: 1", "campaign": "c\r"}
    created = links_target.send(
        json.dumps({"destination": "https://shop.example.test/", "utm": utm}).encode()
    )
    assert created.status_code == 201, created.text
    location = assert_clean_redirect(click_raw(links_target.base_url, created.json()["code"]))
    assert "utm_source=a%0D%0ASet-Cookie%3A%20b%3D2" in location
    assert "utm_medium=x%0AX-Injected%3A%201" in location and "utm_campaign=c%0D" in location


def test_cookies_sent_to_the_redirect_are_ignored_section10(links_target: Target) -> None:
    """§10: the redirect never sets cookies and mints its own session, whatever cookie-like values come."""
    created = links_target.send(json.dumps({"destination": "https://shop.example.test/"}).encode())
    assert created.status_code == 201
    cookie = "Cookie: hello_session=evil; Path=/; hello_session=x%0d%0aSet-Cookie:%20a=b\r\n"
    location = assert_clean_redirect(click_raw(links_target.base_url, created.json()["code"], cookie))
    session = location.split("hello_session=", 1)[1]
    assert len(session) == 36 and session.count("-") == 4 and session[14] == "4", location


# --------------------------------------------------------------------------------------------------------
# Field-level numbers (§8.3 amount/tracked_at, §1.5 user ids, §1.4 limit)
# --------------------------------------------------------------------------------------------------------

HUGE = "1" + "0" * 400


@pytest.mark.parametrize(
    ("endpoint", "member", "error"),
    [
        ("track", '"amount": 1e16', "amount"),
        ("track", f'"amount": {HUGE}', "amount"),
        ("track", f'"tracked_at": {HUGE}', "tracked_at"),
        ("track", f'"tracked_at": -{HUGE}', "tracked_at"),
        ("track", f'"user_parameters": {{"id": {HUGE}}}', "user_parameters.id"),
        ("attribution", '"amount": 1e16', "amount"),
        ("attribution", f'"tracked_at": {HUGE}', "tracked_at"),
        ("identify", f'"user_id": {HUGE}', "user_id"),
        ("identify", f'"user_id": -{HUGE}', "user_id"),
    ],
)
def test_huge_numbers_in_fields_are_422_section8_3(
    server: str, database: Database, endpoint: str, member: str, error: str
) -> None:
    """§8.3, §1.5: amount over 10^15, tracked_at or user ids with 400 digits → 422 on that field."""
    tenant = create_tenant(database, name="Numbers")
    spec = ENDPOINTS[ENDPOINT_IDS.index(endpoint)]
    base: dict[str, Any] = {"session": "n-1"}
    if endpoint != "identify":
        base.update(action="page.viewed", url="https://a.test/")
    else:
        base["user_id"] = "u-1"
    credential = tenant.token if spec.private else tenant.public_id
    before = snapshot(database, tenant.pk)
    response = httpx.post(
        server + spec.path,
        content=body_with(base, member),
        headers={"Authorization": f"Bearer {credential}", "Content-Type": "application/json"},
        timeout=30.0,
    )
    assert_error(response, 422, "invalid", error)
    assert snapshot(database, tenant.pk) == before
    if endpoint != "track":
        return
    # In a batch the same event is refused alone: 200 with its errors, nothing written (§8.3b).
    batch = httpx.post(
        server + "/v1/track/events/batch",
        content=b'{"events": [' + body_with(base, member) + b"]}",
        headers={"Authorization": f"Bearer {tenant.public_id}", "Content-Type": "application/json"},
        timeout=30.0,
    )
    assert batch.status_code == 200, batch.text
    assert (("invalid", error)) in [(e["type"], e["parameter"]) for e in batch.json()["results"][0]["errors"]]
    assert snapshot(database, tenant.pk) == before


def test_limit_query_out_of_range_is_422_section1_4(private: httpx.Client) -> None:
    """§1.4: ``limit`` that is not an integer 1-100 (1e400, 400 digits, NaN...) → 422 invalid ``limit``."""
    for limit in ("1e400", HUGE, "-" + HUGE, "NaN", "Infinity", "0", "101", "1.0", "true", "\u0000"):
        for path in ("/v1/profiles", "/v1/links", "/v1/sessions", "/v1/actions"):
            expect(private.get(path, params={"limit": limit}), 422, "invalid", "limit", case=(path, limit))


def test_nul_in_paths_and_queries_section1_2(
    private: httpx.Client, public: httpx.Client, tenant: Tenant, database: Database
) -> None:
    """§1.2 (NUL), §2, §1.4: U+0000 in a path id names nothing (404 ``id``; 422 ``session`` on attach,
    §9.2.1); in a query value it is invalid (422 naming the parameter). Never a 5xx: PostgreSQL text
    cannot hold U+0000, so such a value must not reach a query."""
    profile = private.post("/v1/profiles", json={}).json()["id"]
    before = snapshot(database, tenant.pk)
    for method, path in [
        ("GET", "/v1/profiles/a%00"),
        ("PATCH", "/v1/profiles/a%00"),
        ("DELETE", "/v1/profiles/a%00"),
        ("GET", "/v1/profiles/a%00/events"),
        ("GET", "/v1/profiles/a%00/sessions"),
        ("GET", "/v1/links/a%00"),
        ("GET", "/v1/sessions/a%00"),
    ]:
        expect(private.request(method, path, json={}), 404, "not_found", "id", case=path)
    expect(public.get("/v1/public/businesses/a%00"), 404, "not_found", "id", case="business")
    for method in ("PATCH", "POST"):
        response = private.request(method, "/v1/sessions/a%00", json={"profile": profile})
        expect(response, 422, "invalid", "session", case=method)
    for path, name in [
        ("/v1/links?profile=a%00", "profile"),
        ("/v1/links?campaign=a%00", "campaign"),
        ("/v1/links?starting_after=a%00", "starting_after"),
        ("/v1/profiles?email=a%00%40b.co", "email"),
        ("/v1/profiles?reference=a%00", "reference"),
        ("/v1/profiles?ending_before=%00", "ending_before"),
        ("/v1/sessions?profile=%00", "profile"),
        ("/v1/actions?starting_after=%00", "starting_after"),
        (f"/v1/profiles/{profile}/events?action=%00", "action"),
        (f"/v1/profiles/{profile}/sessions?ending_before=%00", "ending_before"),
        ("/v1/links?x%00=1", "x\x00"),
    ]:
        expect(private.get(path), 422, "invalid", name, case=path)
    assert snapshot(database, tenant.pk) == before


# --------------------------------------------------------------------------------------------------------
# Slow bodies: the request deadline (HELLOTEXT_REQUEST_TIMEOUT, hellotext/server/timeouts.py)
# --------------------------------------------------------------------------------------------------------

DEADLINE = 2


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Database, Settings]]:
    """A server of its own with a 2-second request deadline."""
    settings = make_settings(tmp_path_factory.mktemp("slow"), "slow", request_timeout=DEADLINE)
    db = Database.open(settings)
    proc = ServerProcess(
        settings,
        extra_env={"HELLOTEXT_REQUEST_TIMEOUT": str(DEADLINE)},
        log_path=tmp_path_factory.mktemp("slow-logs") / "server.log",
    ).start()
    try:
        yield proc.url, db, settings
    finally:
        proc.stop()
        db.close()
        drop_database(settings)


@pytest.mark.parametrize(
    ("endpoint", "style"),
    [("acks", "stall"), ("links", "stall"), ("acks", "trickle"), ("links", "chunked-stall")],
)
def test_slow_bodies_are_cut_off_by_the_deadline(
    slow_server: tuple[str, Database, Settings], endpoint: str, style: str
) -> None:
    """A client that sends half a body and stalls, or trickles it a byte at a time, is answered 503
    (or its connection closed) soon after the deadline; nothing is written and the server keeps serving."""
    url, db, _settings = slow_server
    tenant = create_tenant(db, name="Slow")
    spec = ENDPOINTS[ENDPOINT_IDS.index(endpoint)]
    made = Target(spec, url, tenant, db, spec.path, tenant.token if spec.private else tenant.public_id, "")
    made.mark()
    body = json.dumps(
        {"session": "slow-1", "destination": "https://shop.example.test/", "pad": "x" * 60}
    ).encode()
    if style == "chunked-stall":
        head = raw_head(made, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        parts = [head + chunked(body[:40])[: -len(b"0\r\n\r\n")]]
    else:
        head = raw_head(made, {"Content-Type": "application/json", "Content-Length": str(len(body))})
        parts = [head + body[:40]]
        if style == "trickle":
            parts += [body[i : i + 1] for i in range(40, len(body) - 1)]
    answer, _ = raw_exchange(url, parts, pause=0.25, timeout=DEADLINE + 20)
    assert answer.status != -1 and answer.seconds < DEADLINE + 8, answer
    if answer.status:
        assert_raw_error(answer, 503, "server_error")
    time.sleep(0.5)  # a write still in flight would land now
    made.assert_nothing_written()
    assert httpx.get(url + "/health", timeout=10.0).status_code == 200
