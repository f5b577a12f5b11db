"""Reading request bodies: size cap before parsing, media type, JSON decoding (spec http-api §1.2)."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import ClientDisconnect, Request

from hellotext.core.values import find_nul
from hellotext.errors import Problem, ProblemError

BODY_LIMIT = 64 * 1024
BATCH_BODY_LIMIT = 1024 * 1024
MAX_DEPTH = 32
_decoder = msgspec.json.Decoder()


def _fail(type_: str, parameter: str | None, description: str, status: int) -> ProblemError:
    return ProblemError(Problem(type_, parameter, description), status=status)


def _too_large(limit: int) -> ProblemError:
    return _fail("payload_too_large", None, f"the request body must be at most {limit} bytes", 413)


def _is_json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json":
        return True
    kind, _, sub = media.partition("/")
    return kind == "application" and sub.endswith("+json")


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether a decoded JSON value nests objects/arrays deeper than `limit` (the top level is depth 1).

    Walks containers only, iteratively, and stops at the first one past the limit.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


async def read_raw(request: Request, limit: int) -> bytes:
    """The body bytes, never buffering more than `limit` + 1 bytes.

    Raises:
        ProblemError: 413 when over the limit (judged from Content-Length first).
    """
    length = request.headers.get("content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise _fail("malformed_json", None, "Content-Length is not a number", 400) from None
        if declared > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        # The client left mid-body: nothing is written, and nobody will read this answer.
        raise _fail("malformed_json", None, "the request body was cut short", 400) from None
    return b"".join(chunks)


def decode_json_object(data: bytes, content_type: str | None) -> dict[str, Any]:
    """Decode a JSON object body per §1.2: empty → ``{}``; 415, 400 and 422 as the spec says."""
    if not data:
        return {}
    if content_type is None or not _is_json_type(content_type):
        raise _fail("unsupported_media_type", None, "the request body must be sent as application/json", 415)
    try:
        # The decoder has its own recursion guard, so very deep text fails here, cheaply and safely.
        value = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, ValueError):
        raise _fail("malformed_json", None, "the request body is not valid JSON", 400) from None
    # Only text with enough brackets can nest too deep, and only text with the escape can hold U+0000
    # (a raw NUL byte is already refused by the decoder): the walks are skipped for most bodies.
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH and isinstance(value, dict | list) and too_deep(value):
        raise _fail("malformed_json", None, f"the JSON body nests deeper than {MAX_DEPTH} levels", 400)
    if not isinstance(value, dict):
        raise _fail("invalid", None, "the request body must be a JSON object", 422)
    if b"\\u0000" in data:
        where = find_nul(value)
        if where is not None:
            raise _fail("invalid", where, "strings must not contain the NUL character", 422)
    return value


async def read_json(request: Request, *, limit: int = BODY_LIMIT) -> dict[str, Any]:
    """Read and decode a JSON object body with the spec's limits."""
    data = await read_raw(request, limit)
    return decode_json_object(data, request.headers.get("content-type"))
