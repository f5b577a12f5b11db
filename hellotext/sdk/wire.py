"""What every SDK request shares: the API root, headers, JSON encoding, and typed errors from answers.

The server answers errors with the envelope of spec http-api §3; `error_from_answer` turns one into the
exception a caller acts on (`hellotext.errors` draws the tree).
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from hellotext.errors import (
    APIError,
    HellotextError,
    IdentityConflict,
    NotFound,
    Problem,
    ProblemError,
    RateLimited,
    ServerUnavailable,
    Unauthorized,
    ValidationFailed,
)
from hellotext.sdk.fingerprint import js_number

__all__ = [
    "SDK_VERSION",
    "USER_AGENT",
    "api_headers",
    "dumps",
    "error_from_answer",
    "normalize_api_root",
    "parse_retry_after",
]

SDK_VERSION = "0.1.0"
USER_AGENT = f"hellotext-python/{SDK_VERSION}"


def normalize_api_root(api_root: str) -> str:
    """The API root without trailing slashes (``https://track.example.com/v1``).

    Raises:
        ValueError: not an absolute http(s) URL.
    """
    if not isinstance(api_root, str) or not api_root.startswith(("http://", "https://")):
        raise ValueError("api_root must be an absolute http(s) URL, such as https://track.example.com/v1")
    return api_root.rstrip("/")


def api_headers(credential: str) -> dict[str, str]:
    """The headers of every API call: the credential, JSON both ways, who is calling."""
    return {
        "Authorization": f"Bearer {credential}",
        "Accept": "application/json",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


def _default(value: Any) -> Any:
    # Values a Python program naturally passes that JSON has no type for.
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; dates as ISO 8601, decimals as numbers, sets and tuples as arrays.

    NaN and the infinities are written ``null``, as ``JSON.stringify`` does (the server refuses the bare
    literals).

    Raises:
        TypeError: a value JSON cannot carry.
    """
    try:
        return _ENCODER.encode(value).encode("utf-8")
    except ValueError:
        return _ENCODER.encode(_finite(value)).encode("utf-8")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (integer seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _problems(entries: list[dict[str, Any]]) -> list[Problem]:
    problems = []
    for entry in entries:
        parameter = entry.get("parameter")
        problems.append(
            Problem(
                str(entry.get("type") or "unknown"),
                parameter if isinstance(parameter, str) else None,
                str(entry.get("description") or entry.get("message") or ""),
            )
        )
    return problems or [Problem("unknown", None, "the server refused the request")]


def error_from_answer(status: int, headers: Mapping[str, str], body: Any) -> HellotextError:
    """The typed error for a failed answer.

    Args:
        status: the HTTP status (4xx or 5xx).
        headers: the response headers (``Retry-After`` is read on 429 and 503).
        body: the decoded JSON body, or ``None`` when it was not JSON.

    Returns:
        `Unauthorized` (401), `NotFound` (404), `IdentityConflict` (409, or 422 ``identity_assigned``,
        carrying the current session object when the body has one), `ValidationFailed` (422),
        `RateLimited` (429), `ServerUnavailable` (5xx), or `APIError` (anything else). Every one carries
        ``status`` and the envelope entries (``errors``).
    """
    entries: list[dict[str, Any]] = []
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        entries = [e for e in body["errors"] if isinstance(e, dict)]
    retry_after = parse_retry_after(headers.get("retry-after"))
    if status == 429:
        return RateLimited(status, entries, retry_after=retry_after, body=body)
    if status >= 500:
        return ServerUnavailable(status, entries, retry_after=retry_after, body=body)
    problem_error: ProblemError | None = None
    types = {e.get("type") for e in entries}
    if status == 409 or (status == 422 and "identity_assigned" in types):
        session = body.get("session") if isinstance(body, dict) else None
        problem_error = IdentityConflict(
            _problems(entries), session=session if isinstance(session, dict) else None, status=status
        )
    elif status == 401:
        problem_error = Unauthorized(_problems(entries), status=status)
    elif status == 404:
        problem_error = NotFound(_problems(entries), status=status)
    elif status == 422:
        problem_error = ValidationFailed(_problems(entries), status=status)
    if problem_error is not None:
        problem_error.body = body
        return problem_error
    return APIError(status, entries, retry_after=retry_after, body=body)


def js_string(value: object) -> str:
    """``String(value)`` as JavaScript writes it, for the values an external id may be."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and math.isfinite(value):
        return js_number(value)
    if value is None:
        return "null"
    return str(value)
