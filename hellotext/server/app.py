"""The ASGI application: routes, error handling, lifecycle."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hellotext.config import Settings
from hellotext.server.metrics import Metrics, MetricsMiddleware
from hellotext.server.responses import problem
from hellotext.server.routes import all_routes
from hellotext.server.state import AppState
from hellotext.server.timeouts import TimeoutMiddleware
from hellotext.store.database import Database

log = logging.getLogger("hellotext.server")


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        response = problem("not_allowed", None, f"{request.method} is not supported on this path", 405)
        if exc.headers and "Allow" in exc.headers:
            response.headers["allow"] = exc.headers["Allow"]
        return response
    if exc.status_code == 404:
        return problem("not_found", None, "no such path", 404)
    return problem("server_error", None, exc.detail or "error", exc.status_code)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return problem("server_error", None, "the server failed to answer this request", 500)


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> Starlette:
    """Build the server.

    Args:
        settings: configuration; default `Settings.from_env()`.
        database: an already opened database (tests); default: migrate and open one from `settings`.

    Returns:
        The ASGI application. The database opens on start-up and closes on shutdown.
    """
    settings = settings or Settings.from_env()
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owns = database is None
        db = database if database is not None else Database.open(settings)
        state = AppState(settings=settings, db=db, metrics=metrics)
        app.state.hellotext = state
        try:
            yield
        finally:
            await state.limits.close()
            if owns:
                db.close()

    routes: list[BaseRoute] = all_routes()
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(MetricsMiddleware, metrics=metrics),
            Middleware(TimeoutMiddleware, seconds=settings.request_timeout),
        ],
        exception_handlers={HTTPException: _http_exception, Exception: _server_error},
    )
    # Paths match exactly (spec §1.1): a trailing slash is another, unknown path.
    app.router.redirect_slashes = False
    return app
