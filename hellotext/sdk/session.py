"""Session rules shared by the SDK's tracker and the web middleware (spec S1-S4, browser-sdk §4, §5).

Pure functions: no I/O, no clock, no global state. The tracker and both middlewares use the same ones, so a
session resolved in a Python web app is the one the page's ``hellotext.js`` resolves, and the cookie written
by the server is the cookie the browser SDK would have written.
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from hellotext.core.values import is_session_id

__all__ = [
    "COOKIE_MAX_AGE",
    "IDENTITY_COOKIES",
    "PLATFORM_SUFFIXES",
    "SESSION_COOKIE",
    "UTM_COOKIE",
    "decode_cookie_value",
    "encode_cookie_value",
    "is_host",
    "mint_session",
    "parse_cookie_header",
    "query_param",
    "read_utm",
    "resolve_session",
    "root_domain",
    "set_cookie_header",
    "usable_session",
    "utm_from_url",
]

SESSION_COOKIE = "hello_session"
UTM_COOKIE = "hello_utm"
USER_ID_COOKIE = "hello_user_id"
USER_SOURCE_COOKIE = "hello_user_source"
HASH_COOKIE = "hello_user_identification_hash"
IDENTITY_COOKIES = (USER_ID_COOKIE, USER_SOURCE_COOKIE, HASH_COOKIE)
#: Ten years, as the browser SDK writes it (§5.2).
COOKIE_MAX_AGE = 315_360_000
PLATFORM_SUFFIXES = ("myshopify.com", "vtexcommercestable.com.br", "myvtex.com", "wixsite.com")
_ABSENT = frozenset({"", "undefined", "null"})
_HOST_RE = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
# A session id is at most 256 characters; a longer raw value (even percent-encoded) is not worth decoding.
_RAW_SESSION_MAX = 3 * 256
_UTM_PARAMS = (
    ("source", "utm_source"),
    ("medium", "utm_medium"),
    ("campaign", "utm_campaign"),
    ("term", "utm_term"),
    ("content", "utm_content"),
)


def usable_session(value: object) -> str | None:
    """The value when it is a usable session (§4.1), else ``None``.

    Unusable: not a string, ``""``, ``"undefined"``, ``"null"``, or a value that breaks the session id rule
    (1-256 printable ASCII characters, no whitespace, ``,`` or ``;``).
    """
    if not isinstance(value, str) or value in _ABSENT or not is_session_id(value):
        return None
    return value


def mint_session() -> str:
    """A new session id: lowercase hyphenated UUID v4 (§4.2)."""
    return str(uuid.uuid4())


def resolve_session(
    *,
    query: object = None,
    configured: object = None,
    cookie: object = None,
    auto_generate: bool = True,
) -> tuple[str | None, bool]:
    """Resolve the session by S1: the URL parameter, the configured one, the cookie, a new one.

    Args:
        query: the ``hello_session`` URL parameter (wins even over `configured`).
        configured: the session chosen by the program.
        cookie: the ``hello_session`` cookie's value.
        auto_generate: mint a new session when none of the others is usable.

    Returns:
        ``(session, minted)``; ``(None, False)`` when nothing was found and generation is off (S3).
    """
    for candidate in (query, configured, cookie):
        session = usable_session(candidate)
        if session is not None:
            return session, False
    if auto_generate:
        return mint_session(), True
    return None, False


def root_domain(host: str | None) -> str | None:
    """The cookie ``domain`` for a host (§5.4), or ``None`` for a host-only cookie.

    Args:
        host: a host name, optionally with a port (``shop.example.com:8000``) or brackets (``[::1]``).
    """
    try:
        if not host or not is_host(host):
            return None  # not a host name: never let request text into a Set-Cookie attribute
        name = host.strip().lower()
        if name.startswith("["):
            return None  # IPv6 literal
        if name.count(":") == 1:
            name = name.split(":", 1)[0]
        elif ":" in name:
            return None  # bare IPv6
        name = name.rstrip(".")
        labels = name.split(".")
        if len(labels) < 2 or any(not label for label in labels):
            return None
        # WHATWG URL parsing treats a host whose last label is numeric as IPv4, so the browser does too.
        if labels[-1].isdigit() or _is_ip(name):
            return None
        for suffix in PLATFORM_SUFFIXES:
            if name.endswith("." + suffix):
                head = name[: -len(suffix) - 1]
                return "." + head.rsplit(".", 1)[-1] + "." + suffix
        if len(labels) > 2 and len(labels[-1]) == 2 and len(labels[-2]) <= 3:
            return "." + ".".join(labels[-3:])
        return "." + ".".join(labels[-2:])
    except Exception:  # rule 5: any surprise gives a host-only cookie, never an error
        return None


def is_host(value: str) -> bool:
    """Whether a ``Host`` value looks like a host name or IP literal with an optional port (≤ 260 chars)."""
    return len(value) <= 260 and _HOST_RE.fullmatch(value) is not None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def encode_cookie_value(value: str) -> str:
    """Percent-encode a cookie value so ``decodeURIComponent`` in the page gives it back.

    Stricter than ``encodeURIComponent`` (``(`` and ``)`` are escaped too), so the value is also a token
    that every server-side cookie library writes unquoted.
    """
    return quote(value, safe="-_.!~*'")


def decode_cookie_value(raw: str) -> str:
    """``decodeURIComponent``, falling back to the raw text when it would throw (§5.2)."""
    if "%" not in raw:
        return raw
    out = bytearray()
    index = 0
    length = len(raw)
    while index < length:
        char = raw[index]
        if char == "%":
            pair = raw[index + 1 : index + 3]
            if len(pair) != 2 or not all(c in "0123456789abcdefABCDEF" for c in pair):
                return raw
            out.append(int(pair, 16))
            index += 3
        else:
            out.extend(char.encode("utf-8"))
            index += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def parse_cookie_header(header: str | None, *, limit: int = 8192) -> dict[str, list[str]]:
    """Parse a ``Cookie`` request header into raw values per name, in order (the first one is read).

    Args:
        header: the header value; ``None`` gives ``{}``.
        limit: header bytes considered; the rest is ignored (no unbounded work on hostile input).
    """
    cookies: dict[str, list[str]] = {}
    if not header:
        return cookies
    for part in header[:limit].split(";"):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        cookies.setdefault(name.strip(), []).append(value.strip())
    return cookies


def query_param(query: str, name: str) -> str | None:
    """The first value of a query-string parameter, percent-decoded (``+`` is a space), or ``None``."""
    prefix = name + "="
    for pair in query.split("&"):
        if pair == name:
            return ""
        if pair.startswith(prefix):
            raw = pair[len(prefix) :]
            if len(raw) > _RAW_SESSION_MAX:
                return None
            return decode_cookie_value(raw.replace("+", " "))
    return None


def utm_from_url(url: str, now: datetime | None = None) -> dict[str, str] | None:
    """The ``hello_utm`` value for a page URL (§5.3), or ``None`` when it lacks source or medium."""
    query = urlsplit(url).query
    found: dict[str, str] = {}
    for key, param in _UTM_PARAMS:
        value = query_param(query, param)
        if value is not None and value.strip():
            found[key] = value.strip()
    if "source" not in found or "medium" not in found:
        return None
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    found["observed_at"] = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return found


def read_utm(raw: str | None) -> dict[str, Any]:
    """The parsed ``hello_utm`` cookie; ``{}`` when absent or not a JSON object (§5.3)."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def set_cookie_header(
    name: str,
    value: str | None,
    *,
    domain: str | None,
    secure: bool,
) -> str:
    """A ``Set-Cookie`` value with the browser SDK's attributes (§5.2); `value` ``None`` deletes.

    ``path=/``, the root `domain` (left out when ``None``), ten years, ``SameSite=Lax``, ``Secure`` on https,
    and deliberately not ``HttpOnly``: the page's SDK must read the same cookie.
    """
    parts = [f"{name}={'' if value is None else encode_cookie_value(value)}", "Path=/"]
    if domain:
        parts.append(f"Domain={domain}")
    if value is None:
        parts.append("Max-Age=0")
        parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    else:
        parts.append(f"Max-Age={COOKIE_MAX_AGE}")
    parts.append("SameSite=Lax")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
