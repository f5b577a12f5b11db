"""Hostile request bodies through real HTTP (spec http-api §1.2, §3; issue 7 point 1).

Every body-taking endpoint gets the same treatment: bodies at and over the size limits (declared, chunked and
lying about their length), deep nesting, numbers out of range, ``NaN``/``Infinity``, invalid UTF-8, unpaired
surrogates, NUL and control characters, wrong content types, duplicate keys and non-object tops. Each must
be answered with the §3.1 envelope of the status the spec gives, and must write NOTHING: every table's rows
of the business are compared before and after (count and content). Session ids, link destinations,
redirect headers, field-level numbers and slow bodies are in test_hostile_values.py.

Many tests send a "bad" body: one that parses but fails one field check (say ``{"session": "a b"}``). When
the hostile addition is harmless the answer is that field error, which proves the body got past the size,
type and parsing checks; when it is not, the answer is the hostile input's own error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from hellotext.store.database import Database
from tests.conftest import Tenant, assert_error
from tests.server.hostile import (
    BATCH_LIMIT,
    ENDPOINT_IDS,
    ENDPOINTS,
    Target,
    assert_raw_error,
    bind,
    body_with,
    chunked,
    expect,
    padded,
    raw_exchange,
    raw_head,
)


@pytest.fixture(scope="module")
def businesses(database: Database) -> dict[str, tuple[Tenant, str]]:
    """One business per endpoint (and one profile in it), created when first needed."""
    return {}


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """One client (and connection pool) for the module."""
    with httpx.Client(timeout=60.0) as shared:
        yield shared


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
