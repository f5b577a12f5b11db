"""A deadline for every HTTP request: a slow body or a stuck handler is answered 503, not held forever."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hellotext.server.responses import problem


class TimeoutMiddleware:
    """Answer ``503 server_error`` when a request takes longer than `seconds`.

    If the response had already started when the deadline passed, the connection is cut instead (there is
    no way to take back a status line).
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, send_wrapper)
        except TimeoutError:
            if started:
                raise
            response = problem("server_error", None, "the request took too long", 503)
            await response(scope, receive, send)
