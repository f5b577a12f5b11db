"""JSON responses and the error envelope (spec http-api §1.3, §3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.responses import Response

from hellotext.errors import Problem

_encoder = msgspec.json.Encoder()
JSON_TYPE = "application/json; charset=utf-8"
RECEIVED = b'{"status":"received"}'
_JSON_TYPE = JSON_TYPE.encode("latin-1")
_OWN = frozenset({b"content-type", b"cache-control"})
_RECEIVED_HEADERS = (
    (b"content-length", str(len(RECEIVED)).encode("latin-1")),
    (b"content-type", _JSON_TYPE),
    (b"cache-control", b"no-store"),
)


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response; every one carries ``Cache-Control: no-store``."""
    content = _encoder.encode(body)
    response = Response(content, status_code=status, media_type=None, headers=headers)
    # Raw headers set in one go: MutableHeaders' __setitem__ rescans the list on every call.
    response.raw_headers = [
        *(pair for pair in response.raw_headers if pair[0] not in _OWN),
        (b"content-type", _JSON_TYPE),
        (b"cache-control", b"no-store"),
    ]
    return response


def received() -> Response:
    """The exact success answer of the ingest endpoints: ``200 {"status":"received"}``."""
    response = Response(RECEIVED, status_code=200, media_type=None)
    response.raw_headers = list(_RECEIVED_HEADERS)
    return response


def error_response(
    problems: list[Problem],
    status: int,
    *,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The error envelope: ``{"errors": [...]}`` plus any top-level `extra` fields."""
    body: dict[str, Any] = {"errors": [p.as_dict() for p in problems]}
    if extra:
        body.update(extra)
    return json_response(body, status, headers)


def problem(type_: str, parameter: str | None, description: str, status: int) -> Response:
    """An error envelope with one entry."""
    return error_response([Problem(type_, parameter, description)], status)
