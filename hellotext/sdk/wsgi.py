"""`HellotextWSGIMiddleware`: the WSGI twin of `HellotextMiddleware`.

::

    app.wsgi_app = HellotextWSGIMiddleware(app.wsgi_app, "D5GAnwf4", api_root="https://track.example.com/v1")

    # in a view
    request.environ["hellotext"].track("page.viewed")      # a Hellotext bound to this request
    request.environ["hellotext.session"]                  # the session id

Same rules as the ASGI middleware: the session from ``?hello_session=`` or the cookie (S1), or minted; the
SDK's cookie writes go out as ``Set-Cookie`` on the root domain; a failure of the SDK never changes the
response. The background delivery is shared by every request (and resets itself in forked workers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import httpx

from hellotext.sdk.delivery import DeliveryOptions
from hellotext.sdk.tracker import Hellotext
from hellotext.sdk.web import RequestCookieJar, WebTracking, request_url

__all__ = ["HellotextWSGIMiddleware", "environ_request"]

logger = logging.getLogger("hellotext")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def environ_request(environ: dict[str, Any]) -> tuple[str | None, bool, str]:
    """The host, https flag and page URL of a WSGI request (or a Django ``request.META``)."""
    host = environ.get("HTTP_HOST")
    if not host:
        name, port = environ.get("SERVER_NAME"), environ.get("SERVER_PORT")
        host = f"{name}:{port}" if name and port else name
    scheme = environ.get("wsgi.url_scheme") or "http"
    path = str(environ.get("SCRIPT_NAME") or "") + str(environ.get("PATH_INFO") or "/")
    query = str(environ.get("QUERY_STRING") or "")
    return host, scheme == "https", request_url(scheme, host, path, query)


class HellotextWSGIMiddleware:
    """Sessions and a request-bound `Hellotext` for a WSGI app.

    Args:
        app: the WSGI application.
        business_id: the business's public id.
        api_root: the API root, such as ``https://track.example.com/v1``.
        auto_generate_session: mint a session for requests that bring none.
        refresh_cookie: send ``hello_session`` with every response; when off, only when it changes.
        delivery: how tracked events travel (background batches by default).
        debug: raise tracking failures in the app instead of logging them.
        transport: an httpx transport for the SDK's requests.
    """

    def __init__(
        self,
        app: WSGIApp,
        business_id: str,
        *,
        api_root: str,
        auto_generate_session: bool = True,
        refresh_cookie: bool = True,
        delivery: DeliveryOptions | None = None,
        debug: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.app = app
        self.tracker = Hellotext(
            business_id,
            api_root=api_root,
            auto_generate_session=False,
            delivery=delivery,
            debug=debug,
            transport=transport,
        )
        self.web = WebTracking(
            self.tracker, auto_generate_session=auto_generate_session, refresh_cookie=refresh_cookie
        )

    def bind(self, environ: dict[str, Any]) -> tuple[Hellotext, RequestCookieJar, str | None, bool]:
        """Bind a tracker to a request and publish it in `environ`."""
        host, secure, url = environ_request(environ)
        tracker, jar = self.web.bind(cookie_header=environ.get("HTTP_COOKIE"), url=url)
        environ["hellotext"] = tracker
        environ["hellotext.session"] = tracker.session
        return tracker, jar, host, secure

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            _, jar, host, secure = self.bind(environ)
        except Exception:
            logger.exception("hellotext: could not prepare the request; passing it through")
            return self.app(environ, start_response)

        def start_with_cookies(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            cookies = self.web.headers(jar, host=host, secure=secure)
            if cookies:
                headers = [*headers, *(("Set-Cookie", value) for value in cookies)]
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        return self.app(environ, start_with_cookies)

    def close(self, timeout: float | None = None) -> bool:
        """Flush tracked events and close the SDK's connections (also done at interpreter exit)."""
        return self.tracker.close(timeout)
