"""`HellotextMiddleware`: pure ASGI middleware that gives every request a session and a tracker.

::

    app = HellotextMiddleware(app, "D5GAnwf4", api_root="https://track.example.com/v1")

    # in a Starlette / FastAPI endpoint
    await request.state.hellotext.track("page.viewed", url=str(request.url))
    request.state.hello_session      # the session id, as the page's hellotext.js will see it

Per HTTP request: the session comes from ``?hello_session=`` or the ``hello_session`` cookie (S1), or is
minted; ``scope["state"]["hellotext"]`` holds an `AsyncHellotext` bound to the request and
``scope["state"]["hello_session"]`` the session; the response gets the ``Set-Cookie`` headers for what the
SDK wrote (the session on the root domain, and the identity after an ``identify``). Other scopes
(``websocket``, ``lifespan``) pass straight through; on ``lifespan.shutdown`` the SDK flushes its events
and closes its connections before the app sees the message. A failure of the SDK never changes the
response.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx

from hellotext.sdk.delivery import DeliveryOptions
from hellotext.sdk.tracker import AsyncHellotext
from hellotext.sdk.web import COOKIE_HEADER_MAX, WebTracking, request_url

__all__ = ["HellotextMiddleware"]

logger = logging.getLogger("hellotext")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _header(scope: Scope, name: bytes) -> str | None:
    """The first request header `name` (lowercase), decoded as latin-1, or ``None``."""
    for key, value in scope.get("headers") or ():
        if key == name:
            text: str = value[: COOKIE_HEADER_MAX * 2].decode("latin-1")
            return text
    return None


class HellotextMiddleware:
    """Sessions and a request-bound `AsyncHellotext` for an ASGI app.

    Args:
        app: the ASGI application.
        business_id: the business's public id.
        api_root: the API root, such as ``https://track.example.com/v1``.
        auto_generate_session: mint a session for requests that bring none.
        refresh_cookie: send ``hello_session`` with every response (renewing its lifetime); when off,
            only when it changes.
        delivery: how tracked events travel (background batches by default).
        debug: raise tracking failures in the app instead of logging them.
        transport: an httpx transport for the SDK's requests.
        async_transport: an httpx async transport for ``identify``.
    """

    def __init__(
        self,
        app: ASGIApp,
        business_id: str,
        *,
        api_root: str,
        auto_generate_session: bool = True,
        refresh_cookie: bool = True,
        delivery: DeliveryOptions | None = None,
        debug: bool = False,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.app = app
        self.tracker = AsyncHellotext(
            business_id,
            api_root=api_root,
            auto_generate_session=False,
            delivery=delivery,
            debug=debug,
            transport=transport,
            async_transport=async_transport,
        )
        self._web = WebTracking(
            self.tracker, auto_generate_session=auto_generate_session, refresh_cookie=refresh_cookie
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._watch_shutdown(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            host = _header(scope, b"host")
            secure = scope.get("scheme") == "https"
            query = scope.get("query_string", b"")[:8192].decode("latin-1")
            url = request_url(scope.get("scheme", "http"), host, scope.get("path", "/"), query)
            tracker, jar = self._web.bind(cookie_header=_header(scope, b"cookie"), url=url)
            state = scope.setdefault("state", {})
            state["hellotext"] = tracker
            state["hello_session"] = tracker.session
        except Exception:
            logger.exception("hellotext: could not prepare the request; passing it through")
            await self.app(scope, receive, send)
            return

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookies = self._web.headers(jar, host=host, secure=secure)
                if cookies:
                    headers = list(message.get("headers") or [])
                    headers.extend((b"set-cookie", value.encode("latin-1")) for value in cookies)
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookies)

    def _watch_shutdown(self, receive: Receive) -> Receive:
        # The lifespan messages reach the app unchanged; on shutdown the SDK first flushes its events and
        # closes its connections while the event loop is still running.
        async def receive_and_watch() -> Message:
            message = await receive()
            if message.get("type") == "lifespan.shutdown":
                try:
                    await self.tracker.aclose()
                except Exception:
                    logger.exception("hellotext: error while closing at shutdown")
            return message

        return receive_and_watch

    async def aclose(self, timeout: float | None = None) -> bool:
        """Flush tracked events and close the SDK's connections (also done at interpreter exit)."""
        return await self.tracker.aclose(timeout)
