"""What the ASGI, WSGI and Django middlewares share: a request-bound cookie jar and tracker.

For each request the middleware reads ``hello_session`` from the query string or the cookie (S1), mints
one when absent (configurable), binds a tracker to a `RequestCookieJar`, and after the app has run turns
the jar's writes into ``Set-Cookie`` headers on the site's root domain, with the browser SDK's attributes
(§5.2): a first-party cookie set by the server is not cut to seven days by Safari's tracking prevention,
and the page's ``hellotext.js`` reads the same value (so it is not ``HttpOnly``).

Everything read from the request is cleaned and length-capped: the host must look like a host name before
it can become a cookie ``Domain``, the query and cookie header are read up to a bound.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Generic, TypeVar

from hellotext.sdk.session import (
    decode_cookie_value,
    is_host,
    parse_cookie_header,
    root_domain,
    set_cookie_header,
)
from hellotext.sdk.tracker import AsyncHellotext, Hellotext

__all__ = ["CookieWrite", "RequestCookieJar", "WebTracking", "request_url"]

logger = logging.getLogger("hellotext")

#: Bounds on what is read from a request (cookie header, query string, path, host).
COOKIE_HEADER_MAX = 8192
QUERY_MAX = 8192
PATH_MAX = 2048

T = TypeVar("T", Hellotext, AsyncHellotext)


@dataclass(frozen=True, slots=True)
class CookieWrite:
    """One cookie change to send to the browser: `value` ``None`` deletes it."""

    name: str
    value: str | None


class RequestCookieJar:
    """The cookies of one request; what the SDK writes is kept to be sent back as ``Set-Cookie``.

    Args:
        cookie_header: the request's ``Cookie`` header (read up to 8 KiB).
    """

    def __init__(self, cookie_header: str | None) -> None:
        parsed = parse_cookie_header(cookie_header, limit=COOKIE_HEADER_MAX)
        # The first entry of a name is the one read, as the browser SDK does (§5.2).
        self.request_values = {name: decode_cookie_value(values[0]) for name, values in parsed.items()}
        #: Names the browser sent more than once (a host-only copy beside the root-domain one).
        self.duplicated = frozenset(name for name, values in parsed.items() if len(values) > 1)
        self._values = dict(self.request_values)
        self._writes: dict[str, str | None] = {}

    def get(self, name: str) -> str | None:
        """The current value of cookie `name`."""
        return self._values.get(name)

    def set(self, name: str, value: str) -> None:
        """Set cookie `name` (sent back with the response)."""
        self._values[name] = value
        self._writes[name] = value

    def delete(self, name: str) -> None:
        """Delete cookie `name` (sent back with the response when the browser had it)."""
        self._values.pop(name, None)
        self._writes[name] = None

    def writes(self, *, refresh: bool = True) -> list[CookieWrite]:
        """The changes to send, in the order they were first made.

        Args:
            refresh: also re-send a cookie set to the value the browser already has (renewing its
                lifetime); otherwise only real changes are sent.
        """
        changes = []
        for name, value in self._writes.items():
            before = self.request_values.get(name)
            if value is None and before is None:
                continue
            if not refresh and value == before:
                continue
            changes.append(CookieWrite(name, value))
        return changes

    def set_cookie_headers(self, *, host: str | None, secure: bool, refresh: bool = True) -> list[str]:
        """``Set-Cookie`` values for the writes, on the root domain of `host` (§5.4)."""
        domain = root_domain(host)
        headers = []
        for write in self.writes(refresh=refresh):
            if domain is not None and write.name in self.duplicated:
                # A host-only copy would shadow the root-domain cookie on this host: clear it (§5.2).
                headers.append(set_cookie_header(write.name, None, domain=None, secure=secure))
            headers.append(set_cookie_header(write.name, write.value, domain=domain, secure=secure))
        return headers


def request_url(scheme: str, host: str | None, path: str, query: str) -> str:
    """The page URL of a request, capped (the tracker reads ``hello_session`` and ``utm_*`` from it)."""
    clean_host = host if host and is_host(host) else "localhost"
    url = f"{scheme}://{clean_host}{path[:PATH_MAX] or '/'}"
    if query:
        url += "?" + query[:QUERY_MAX]
    return url


class WebTracking(Generic[T]):
    """One tracker per app, bound once per request.

    Args:
        tracker: the app-wide tracker (no session of its own); requests get ``tracker.bind(...)``.
        auto_generate_session: mint a session for requests that bring none.
        refresh_cookie: re-send ``hello_session`` on every response (renewing its lifetime), not only when
            it changes.
    """

    def __init__(self, tracker: T, *, auto_generate_session: bool, refresh_cookie: bool) -> None:
        self.tracker: T = tracker
        self.auto_generate_session = auto_generate_session
        self.refresh_cookie = refresh_cookie

    def bind(self, *, cookie_header: str | None, url: str) -> tuple[T, RequestCookieJar]:
        """A tracker for one request, and the jar whose writes become its ``Set-Cookie`` headers."""
        jar = RequestCookieJar(cookie_header)
        bound = self.tracker.bind(cookies=jar, url=url, auto_generate_session=self.auto_generate_session)
        return bound, jar

    def headers(self, jar: RequestCookieJar, *, host: str | None, secure: bool) -> list[str]:
        """The ``Set-Cookie`` values for a response; on any surprise, none (the response goes out as is)."""
        try:
            return jar.set_cookie_headers(host=host, secure=secure, refresh=self.refresh_cookie)
        except Exception:
            logger.exception("hellotext: could not build the session cookie; response left unchanged")
            return []
