"""Short-link rules (spec sessions-and-identity S7, http-api §9.5 and §10).

Plain functions, no web framework and no SQL: what a destination may be, how a link body and a batch
are validated, who counts as a preview bot, and how the redirect's ``Location`` is built.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, unquote_plus

from hellotext.core.values import empty, invalid, missing
from hellotext.errors import Problem, ValidationFailed

DESTINATION_MAX = 2048
CAMPAIGN_MAX = 256
UTM_VALUE_MAX = 256
LINK_UTM_KEYS = ("source", "medium", "campaign")
BATCH_MAX = 10_000
BATCH_PROBLEMS_MAX = 100
CODE_LENGTH = 8
SESSION_PARAMETER = "hello_session"

# Substrings of the User-Agent (lowercased) of link-preview fetchers and crawlers (§10).
PREVIEW_BOTS = (
    "slack",
    "whatsapp",
    "facebookexternalhit",
    "twitterbot",
    "discordbot",
    "telegrambot",
    "linkedinbot",
    "googlebot",
    "bingbot",
)

_CODE_RE = re.compile(r"[0-9A-Za-z]{8}")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_REG_NAME_RE = re.compile(r"[A-Za-z0-9._\-]+")
_PORT_RE = re.compile(r"[0-9]{1,5}")
_ASCII_FORBIDDEN_RE = re.compile(r"[\x00-\x20\x7f\\]")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Destination:
    """A parsed, accepted destination (for comparisons; the stored value is the string as sent)."""

    scheme: str
    host: str
    port: int
    path: str


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """A validated link to create (spec §9.5.1); `profile` is checked against storage later."""

    destination: str
    profile: str | None
    campaign: str | None
    utm: dict[str, str | None] | None


def is_code(value: str) -> bool:
    """Whether `value` has the shape of a link code: 8 base62 characters."""
    return _CODE_RE.fullmatch(value) is not None


def is_preview_bot(user_agent: str | None) -> bool:
    """Whether a User-Agent names a link-preview fetcher or crawler (case-insensitive, §10)."""
    if not user_agent:
        return False
    agent = user_agent.lower()
    return any(bot in agent for bot in PREVIEW_BOTS)


def _has_forbidden_char(text: str) -> bool:
    # Whitespace (ASCII and Unicode), control characters (C0, DEL, C1), lone surrogates, and the
    # backslash: WHATWG parsers read "\" as "/" in http(s) URLs, which turns "https:\\evil" and
    # "https://good\@evil" into other hosts than the one we checked. Send %5C if you mean a backslash.
    if _ASCII_FORBIDDEN_RE.search(text) is not None:
        return True
    if text.isascii():
        return False
    return any(c.isspace() or unicodedata.category(c) in ("Cc", "Cs") for c in text if not c.isascii())


def _parse_host(authority: str) -> tuple[str, int] | None:
    """(host lowercased, port or -1) of an authority without user-info, or ``None`` when malformed."""
    if authority.startswith("["):
        end = authority.find("]")
        if end == -1:
            return None
        literal, rest = authority[1:end], authority[end + 1 :]
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            return None
        host = f"[{literal.lower()}]"
    else:
        host, sep, port_text = authority.partition(":")
        rest = sep + port_text
        if not host or _REG_NAME_RE.fullmatch(host) is None or host.strip(".") == "":
            return None
        # "example.test." names the same host as "example.test".
        host = host.lower().rstrip(".")
    if not rest:
        return host, -1
    if not rest.startswith(":"):
        return None
    port_text = rest[1:]
    if port_text == "":
        return host, -1
    if _PORT_RE.fullmatch(port_text) is None or int(port_text) > 65535:
        return None
    return host, int(port_text)


def parse_destination(value: str) -> Destination | None:
    """Parse an absolute http(s) URL with a host, or ``None`` when it is not one we accept.

    Accepted: ``http`` or ``https`` (any case), then exactly ``//``, an authority without user-info
    made of a host name or an IPv6 literal and an optional port, then an optional path, query and
    fragment. No whitespace, control characters or backslashes anywhere. Non-ASCII characters are
    allowed outside the host (they are percent-encoded in the redirect).
    """
    if _has_forbidden_char(value):
        return None
    match = _SCHEME_RE.match(value)
    if match is None:
        return None
    scheme = match.group(1).lower()
    if scheme not in _DEFAULT_PORTS:
        return None
    rest = value[match.end() :]
    # Exactly two slashes: "https:/x", "https:///evil" and relative "//evil" are refused.
    if not rest.startswith("//") or rest.startswith("///"):
        return None
    rest = rest[2:]
    cut = len(rest)
    for delimiter in "/?#":
        position = rest.find(delimiter)
        if position != -1:
            cut = min(cut, position)
    authority, tail = rest[:cut], rest[cut:]
    if "@" in authority or not authority.isascii():
        return None
    parsed = _parse_host(authority)
    if parsed is None:
        return None
    host, port = parsed
    path = tail
    for delimiter in "?#":
        path = path.split(delimiter, 1)[0]
    return Destination(scheme, host, _DEFAULT_PORTS[scheme] if port == -1 else port, path or "/")


def _remove_dot_segments(path: str) -> str:
    output: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if len(output) > 1:
                output.pop()
        elif segment != ".":
            output.append(segment)
    if path.endswith(("/.", "/..")):
        output.append("")
    return "/".join(output)


@functools.lru_cache(maxsize=64)
def _parse_base(base: str) -> Destination | None:
    # The same few bases are compared with every item of a batch of up to 10,000.
    return parse_destination(base)


def is_own_link(destination: Destination, link_bases: Iterable[str]) -> bool:
    """Whether a destination is a ``/l/`` URL of this server, under any of its link bases.

    The path is compared the way the server would route it: percent-decoded once, dot segments
    resolved, so ``/%6C/...`` and ``/x/../l/...`` are caught too.
    """
    path = _remove_dot_segments(unquote(destination.path))
    for base in link_bases:
        own = _parse_base(base)
        if own is None:
            continue
        if (own.scheme, own.host, own.port) != (destination.scheme, destination.host, destination.port):
            continue
        prefix = own.path.rstrip("/") + "/l/"
        if path.startswith(prefix):
            return True
    return False


def check_destination(value: object, link_bases: Sequence[str] = (), parameter: str = "destination") -> str:
    """Validate a link destination (§9.5.1) and return it unchanged.

    Args:
        value: the value sent.
        link_bases: this server's own link bases (configured base URL, request origin): a ``/l/`` URL
            under any of them would redirect to ourselves.
        parameter: the name to report.

    Raises:
        ValidationFailed: absent (``parameter_missing``), blank (``parameter_invalid_empty``), or not
            an acceptable URL (``invalid``).
    """
    if value is None:
        raise missing(parameter, f"{parameter} is required")
    if not isinstance(value, str):
        raise invalid(parameter, f"{parameter} must be a string")
    if not value.strip():
        raise empty(parameter, f"{parameter} must not be blank")
    if len(value) > DESTINATION_MAX:
        raise invalid(parameter, f"{parameter} must be at most {DESTINATION_MAX} characters")
    parsed = parse_destination(value)
    if parsed is None:
        raise invalid(
            parameter,
            f"{parameter} must be an absolute http or https URL with a host, without user name, "
            "password, whitespace or control characters",
        )
    if is_own_link(parsed, link_bases):
        raise invalid(parameter, f"{parameter} must not be a short link of this server")
    return value


def _optional_string(body: dict[str, Any], key: str, max_len: int, parameter: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(parameter, f"{parameter} must be a string")
    if len(value) > max_len:
        raise invalid(parameter, f"{parameter} must be at most {max_len} characters")
    return value


def _check_utm(value: object, parameter: str) -> tuple[dict[str, str | None] | None, list[Problem]]:
    if value is None:
        return None, []
    if not isinstance(value, dict):
        return None, [Problem("invalid", parameter, f"{parameter} must be an object")]
    problems: list[Problem] = []
    utm: dict[str, str | None] = dict.fromkeys(LINK_UTM_KEYS)
    for key, item in value.items():
        where = f"{parameter}.{key}"
        if key not in LINK_UTM_KEYS:
            problems.append(
                Problem("invalid", where, f"{parameter} only accepts source, medium and campaign")
            )
        elif item is not None and (not isinstance(item, str) or len(item) > UTM_VALUE_MAX):
            problems.append(
                Problem("invalid", where, f"{where} must be a string of at most {UTM_VALUE_MAX} characters")
            )
        else:
            utm[key] = item
    if problems:
        return None, problems
    # An object with no value set is the same as no utm at all.
    return (utm if any(v is not None for v in utm.values()) else None), []


def link_problems(
    body: object, link_bases: Sequence[str] = (), prefix: str = ""
) -> tuple[LinkSpec | None, list[Problem]]:
    """Validate one link body (§9.5.1), collecting every problem.

    Args:
        body: the decoded JSON value of the link.
        link_bases: this server's link bases (see `check_destination`).
        prefix: parameter prefix, e.g. ``links[3].`` inside a batch.

    Returns:
        The spec and no problems, or ``None`` and the problems found (parameters prefixed).
    """
    if not isinstance(body, dict):
        return None, [Problem("invalid", prefix.rstrip(".") or None, "each link must be an object")]
    problems: list[Problem] = []
    destination: str | None = None
    profile: str | None = None
    campaign: str | None = None
    try:
        destination = check_destination(body.get("destination"), link_bases, f"{prefix}destination")
    except ValidationFailed as exc:
        problems.extend(exc.problems)
    raw_profile = body.get("profile")
    if raw_profile is not None and not isinstance(raw_profile, str):
        problems.append(Problem("invalid", f"{prefix}profile", f"{prefix}profile must be a string"))
    else:
        profile = raw_profile
    try:
        campaign = _optional_string(body, "campaign", CAMPAIGN_MAX, f"{prefix}campaign")
    except ValidationFailed as exc:
        problems.extend(exc.problems)
    utm, utm_problems = _check_utm(body.get("utm"), f"{prefix}utm")
    problems.extend(utm_problems)
    if problems or destination is None:
        return None, problems
    return LinkSpec(destination=destination, profile=profile, campaign=campaign, utm=utm), []


def parse_link(body: dict[str, Any], link_bases: Sequence[str] = ()) -> LinkSpec:
    """Validate the body of ``POST /links``.

    Raises:
        ValidationFailed: with every problem found.
    """
    spec, problems = link_problems(body, link_bases)
    if spec is None:
        raise ValidationFailed(problems)
    return spec


def parse_batch(body: dict[str, Any], link_bases: Sequence[str] = ()) -> list[LinkSpec]:
    """Validate the body of ``POST /links/batch`` (§9.5.2): all items, or a 422 naming the bad ones.

    Raises:
        ValidationFailed: `links` absent, not an array, empty or too long; or any item invalid, with
            up to 100 entries such as ``links[3].destination``.
    """
    items = body.get("links")
    if items is None:
        raise missing("links", "links is required")
    if not isinstance(items, list):
        raise invalid("links", "links must be an array")
    if not items:
        raise empty("links", "links must not be empty")
    if len(items) > BATCH_MAX:
        raise invalid("links", f"links must hold at most {BATCH_MAX} items")
    specs: list[LinkSpec] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        spec, found = link_problems(item, link_bases, f"links[{index}].")
        if spec is not None:
            specs.append(spec)
        elif len(problems) < BATCH_PROBLEMS_MAX:
            problems.extend(found[: BATCH_PROBLEMS_MAX - len(problems)])
    if problems:
        raise ValidationFailed(problems)
    return specs


def iso_millis(moment: float) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``, as ``observed_at`` is shown (§5.4)."""
    stamp = datetime.fromtimestamp(moment, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def click_utm(utm: dict[str, Any] | None, now: float) -> dict[str, Any] | None:
    """The first-touch UTM a click gives its session (§5.2, §10): the link's utm, observed now.

    ``None`` when the link sets no non-blank value.
    """
    if not utm or not any(isinstance(utm.get(k), str) and utm[k].strip() for k in LINK_UTM_KEYS):
        return None
    return {
        "source": utm.get("source"),
        "medium": utm.get("medium"),
        "campaign": utm.get("campaign"),
        "term": None,
        "content": None,
        "observed_at": iso_millis(now),
    }


def ascii_url(url: str) -> str:
    """Percent-encode (UTF-8) every non-ASCII character, so the URL fits an HTTP header.

    Destinations are ASCII in their host and free of whitespace and control characters (checked at
    creation), so this only touches path, query and fragment; ASCII characters are left verbatim.
    """
    if url.isascii():
        return url
    return "".join(c if c.isascii() else quote(c, safe="") for c in url)


def _pair_name(pair: str) -> str:
    # Compare names as a browser's URLSearchParams would read them (decoded, "+" as space).
    return unquote_plus(pair.split("=", 1)[0])


def redirect_location(destination: str, session: str, utm: dict[str, Any] | None = None) -> str:
    """The ``Location`` of a click's redirect (§10).

    The query is split on ``&`` and its pairs kept verbatim and in order (empty pieces such as the one
    in ``?a=1&&b=2`` are not pairs and are dropped); the first ``hello_session`` pair is replaced in
    place by the new session and later ones are removed, or the pair is appended; ``utm_source``,
    ``utm_medium``, ``utm_campaign`` are appended, percent-encoded, when the link sets them and the
    query has no pair of that name; the fragment is kept.

    Args:
        destination: the stored destination.
        session: the freshly minted session id.
        utm: the link's ``utm`` (keys ``source``, ``medium``, ``campaign``), or ``None``.
    """
    before_fragment, hash_sign, fragment = destination.partition("#")
    base, _, query = before_fragment.partition("?")
    pairs = [pair for pair in query.split("&") if pair]
    session_pair = f"{SESSION_PARAMETER}={quote(session, safe='')}"
    kept: list[str] = []
    replaced = False
    for pair in pairs:
        if _pair_name(pair) == SESSION_PARAMETER:
            if not replaced:
                kept.append(session_pair)
                replaced = True
            continue
        kept.append(pair)
    if not replaced:
        kept.append(session_pair)
    names = {_pair_name(pair) for pair in pairs}
    for key in LINK_UTM_KEYS:
        value = (utm or {}).get(key)
        name = f"utm_{key}"
        if isinstance(value, str) and value and name not in names:
            kept.append(f"{name}={quote(value, safe='')}")
    location = f"{base}?{'&'.join(kept)}"
    if hash_sign:
        location += "#" + fragment
    return ascii_url(location)
