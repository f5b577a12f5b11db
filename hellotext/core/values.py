"""Normalisation and validation of the small values used everywhere (spec http-api §1.5, §5.1).

Each checker returns the normalised value or raises `ValidationFailed` naming the parameter.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from hellotext.errors import Problem, ValidationFailed

SESSION_MAX = 256
ABSENT_SESSIONS = frozenset({"", "undefined", "null"})
PLACEHOLDER_USER_IDS = frozenset(
    {"undefined", "null", "none", "nil", "nan", "anonymous", "[object object]", "0"}
)
_SESSION_RE = re.compile(r"[\x21-\x2b\x2d-\x3a\x3c-\x7e]{1,256}")
_CLIENT_ID_RE = re.compile(r"[\x21-\x7e]{1,64}")
_PHONE_STRIP = str.maketrans("", "", " -.()")
_PHONE_RE = re.compile(r"\+[1-9][0-9]{7,14}")
_EPOCH_2000 = 946684800.0


def invalid(parameter: str | None, description: str) -> ValidationFailed:
    """A 422 ``invalid`` error."""
    return ValidationFailed(Problem("invalid", parameter, description))


def missing(parameter: str | None, description: str) -> ValidationFailed:
    """A 422 ``parameter_missing`` error."""
    return ValidationFailed(Problem("parameter_missing", parameter, description))


def empty(parameter: str | None, description: str) -> ValidationFailed:
    """A 422 ``parameter_invalid_empty`` error."""
    return ValidationFailed(Problem("parameter_invalid_empty", parameter, description))


def is_session_id(value: object) -> bool:
    """Whether `value` is a valid session id (§5.1): 1-256 printable ASCII, no whitespace, `,` or `;`."""
    return isinstance(value, str) and _SESSION_RE.fullmatch(value) is not None


def optional_session(value: object, parameter: str = "session") -> str | None:
    """Read an optional session value: absent-like values give ``None``; a bad one raises 422 invalid."""
    if value is None or (isinstance(value, str) and value in ABSENT_SESSIONS):
        return None
    if not is_session_id(value):
        raise invalid(parameter, f"{parameter} must be 1-256 printable ASCII characters without , or ;")
    assert isinstance(value, str)
    return value


def normalize_email(value: str) -> str | None:
    """Trim and lowercase an email; ``None`` when it is not valid (§1.5)."""
    email = value.strip().lower()
    if len(email) > 254 or any(c.isspace() for c in email) or email.count("@") != 1:
        return None
    local, domain = email.split("@")
    if not local or "." not in domain or any(label == "" for label in domain.split(".")):
        return None
    return email


def normalize_phone(value: str) -> str | None:
    """Trim and strip separators from a phone; ``None`` when the result is not E.164 (§1.5)."""
    phone = value.strip().translate(_PHONE_STRIP)
    return phone if _PHONE_RE.fullmatch(phone) else None


def normalize_source(value: object, parameter: str = "source") -> str:
    """Identity source: trimmed, lowercased, ≤ 64 chars; blank (or ``None``) means ``""``."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid(parameter, f"{parameter} must be a string")
    source = value.strip().lower()
    if len(source) > 64:
        raise invalid(parameter, f"{parameter} must be at most 64 characters")
    return source


def normalize_user_id(value: object, parameter: str = "user_id") -> str | None:
    """Identity user id (§1.5, §6.2).

    Returns:
        The normalised id, or ``None`` when it is blank.

    Raises:
        ValidationFailed: wrong type or too long. Placeholders are reported by `is_placeholder_user_id`.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid(parameter, f"{parameter} must be a string or an integer")
    text = str(value) if isinstance(value, int) else value.strip()
    if not text:
        return None
    if len(text) > 256:
        raise invalid(parameter, f"{parameter} must be at most 256 characters")
    return text


def is_placeholder_user_id(user_id: str) -> bool:
    """Whether a normalised user id is a placeholder (``undefined``, ``null``, ``0`` ...), not an id."""
    return user_id.casefold() in PLACEHOLDER_USER_IDS


def client_event_id(value: object) -> str | None:
    """Optional idempotency key `id`: 1-64 printable ASCII characters."""
    if value is None:
        return None
    if not isinstance(value, str) or _CLIENT_ID_RE.fullmatch(value) is None:
        raise invalid("id", "id must be 1-64 printable ASCII characters")
    return value


def is_number(value: object) -> bool:
    """JSON number that is not a boolean."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_iso8601(text: str) -> float | None:
    """Epoch seconds of an ISO 8601 date-time (no offset = UTC), or ``None`` when unparseable."""
    candidate = text.strip()
    if len(candidate) < 10 or len(candidate) > 64:
        return None
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def tracked_at(value: object, now: float, parameter: str = "tracked_at") -> float:
    """Event time: epoch seconds or ISO 8601, between 2000-01-01 and now + 24 h."""
    if is_number(value):
        assert isinstance(value, int | float)
        if isinstance(value, float) and not math.isfinite(value):
            raise invalid(parameter, f"{parameter} must be a finite number")
        try:
            moment = float(value)
        except OverflowError:  # an integer beyond any float: far outside the window anyway
            raise invalid(parameter, f"{parameter} is out of range") from None
    elif isinstance(value, str):
        parsed = parse_iso8601(value)
        if parsed is None:
            raise invalid(parameter, f"{parameter} must be epoch seconds or an ISO 8601 date-time")
        moment = parsed
    else:
        raise invalid(parameter, f"{parameter} must be epoch seconds or an ISO 8601 date-time")
    if not _EPOCH_2000 <= moment <= now + 86400:
        raise invalid(parameter, f"{parameter} must fall between 2000-01-01 and 24 hours from now")
    return moment


def string_field(body: dict[str, Any], key: str, *, max_len: int, parameter: str | None = None) -> str | None:
    """An optional string of at most `max_len` characters; ``None`` when absent or null."""
    value = body.get(key)
    name = parameter or key
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(name, f"{name} must be a string")
    if len(value) > max_len:
        raise invalid(name, f"{name} must be at most {max_len} characters")
    return value


def find_nul(value: Any, path: str = "") -> str | None:
    """Dotted path of the first string containing U+0000 in a decoded JSON value, else ``None``.

    Keys count too: a key with U+0000 reports the path of its value.
    """
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return where or None
        elif isinstance(item, dict):
            for key, sub in item.items():
                sub_path = f"{where}.{key}" if where else str(key)
                if "\x00" in key:
                    return sub_path
                stack.append((sub, sub_path))
        elif isinstance(item, list):
            for index, sub in enumerate(item):
                stack.append((sub, f"{where}[{index}]"))
    return None
