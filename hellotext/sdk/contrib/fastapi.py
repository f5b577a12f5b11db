"""FastAPI (and Starlette): dependencies that read what `HellotextMiddleware` put on the request.

::

    from fastapi import Depends, FastAPI
    from hellotext import AsyncHellotext, HellotextMiddleware
    from hellotext.sdk.contrib.fastapi import get_hellotext

    app = FastAPI()
    app.add_middleware(HellotextMiddleware, business_id="D5GAnwf4", api_root="https://track.example.com/v1")

    @app.get("/")
    async def index(hellotext: AsyncHellotext = Depends(get_hellotext)):
        await hellotext.track("page.viewed")
        return {"session": hellotext.session}
"""

from __future__ import annotations

from typing import Any

from hellotext.sdk.tracker import AsyncHellotext

__all__ = ["get_hellotext", "get_session"]


def get_hellotext(request: Any) -> AsyncHellotext:
    """The `AsyncHellotext` bound to the request (a ``starlette.requests.Request``)."""
    tracker: AsyncHellotext = request.state.hellotext
    return tracker


def get_session(request: Any) -> str | None:
    """The request's session id."""
    session: str | None = request.state.hello_session
    return session
