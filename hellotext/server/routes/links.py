"""Routes: short links (spec http-api §9.5) and the public redirect ``GET /l/{code}`` (§10)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from hellotext.config import Settings
from hellotext.core.ids import new_session_id
from hellotext.core.links import (
    LinkSpec,
    ascii_url,
    is_code,
    is_preview_bot,
    parse_batch,
    parse_link,
    redirect_location,
)
from hellotext.core.pages import parse_page
from hellotext.errors import NotFound
from hellotext.server.auth import Ctx, private_route
from hellotext.server.bodies import BATCH_BODY_LIMIT, read_json
from hellotext.server.metrics import Metrics
from hellotext.server.responses import json_response
from hellotext.server.state import AppState
from hellotext.store.database import Database
from hellotext.store.links import (
    Click,
    ClickOutcome,
    Link,
    clash_errors,
    create_links,
    get_link,
    link_by_code,
    list_links,
    record_click,
    record_clicks,
)
from hellotext.store.pages import list_body

T = TypeVar("T")
CREATE_ATTEMPTS = 3

NOT_FOUND_PAGE = (
    b"<!doctype html>\n"
    b'<html lang="en"><head><meta charset="utf-8"><title>Link not found</title></head>\n'
    b"<body><h1>Link not found</h1><p>This link does not exist.</p></body></html>\n"
)
NOT_FOUND_HEADERS = {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    # The page needs nothing but its own markup: no scripts, styles, frames or fetches.
    "content-security-policy": (
        "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def request_origin(request: Request) -> str:
    """The origin the request was addressed to (scheme and host as the client sent them)."""
    return f"{request.url.scheme}://{request.url.netloc}"


def link_base(settings: Settings, request: Request) -> str:
    """Where links are served from: ``HELLOTEXT_LINK_BASE_URL``, else this request's origin."""
    return settings.link_base_url or request_origin(request)


def own_bases(settings: Settings, request: Request) -> list[str]:
    """Every base under which a ``/l/`` URL would come back to this server.

    The request's host counts under both schemes: behind a TLS-terminating proxy the server sees
    ``http`` while its public URLs are ``https``.
    """
    host = request.url.netloc
    bases = [f"http://{host}", f"https://{host}"]
    if settings.link_base_url:
        bases.append(settings.link_base_url)
    return bases


async def _create(db: Database, unit: Callable[[Connection], T]) -> T:
    # A drawn code may exist already (see `fresh_codes`): the insert fails, nothing stays, and running
    # the unit again, which draws new codes, is the retry.
    retryable = clash_errors(db)
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            return await db.write(unit)
        except retryable:
            if attempt == CREATE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


async def _create_specs(ctx: Ctx, specs: list[LinkSpec], *, batch: bool) -> list[Link]:
    business_id = ctx.business.pk
    now = time.time()

    def unit(conn: Connection) -> list[Link]:
        return create_links(conn, business_id, specs, now, batch=batch)

    return await _create(ctx.state.db, unit)


async def links_collection(request: Request, ctx: Ctx) -> Response:
    """``POST /v1/links`` (create one) and ``GET /v1/links`` (list, filters ``campaign``, ``profile``)."""
    settings = ctx.state.settings
    if request.method == "POST":
        body = await read_json(request)
        spec = parse_link(body, own_bases(settings, request))
        created = await _create_specs(ctx, [spec], batch=False)
        return json_response(created[0].as_json(link_base(settings, request)), 201)
    query = request.query_params
    page = parse_page(query)
    campaign = query.get("campaign")
    profile = query.get("profile")
    business_id = ctx.business.pk
    result = await ctx.state.db.read(
        lambda c: list_links(c, business_id, page, campaign=campaign, profile=profile)
    )
    base = link_base(settings, request)
    return json_response(list_body([link.as_json(base) for link in result.items], result.has_more))


async def links_batch(request: Request, ctx: Ctx) -> Response:
    """``POST /v1/links/batch``: up to 10,000 links, all or nothing."""
    settings = ctx.state.settings
    body = await read_json(request, limit=BATCH_BODY_LIMIT)
    specs = parse_batch(body, own_bases(settings, request))
    created = await _create_specs(ctx, specs, batch=True)
    base = link_base(settings, request)
    return json_response({"links": [link.as_json(base) for link in created]}, 201)


async def link_detail(request: Request, ctx: Ctx) -> Response:
    """``GET /v1/links/{id}``: one link with its click count."""
    link_id = request.path_params["id"]
    business_id = ctx.business.pk
    link = await ctx.state.db.read(lambda c: get_link(c, business_id, link_id))
    if link is None:
        raise NotFound.one("not_found", "id", "no link with this id")
    return json_response(link.as_json(link_base(ctx.state.settings, request)))


def not_found_page() -> Response:
    """The small HTML page for unknown codes (§10)."""
    return Response(NOT_FOUND_PAGE, status_code=404, media_type=None, headers=NOT_FOUND_HEADERS)


async def not_a_code(request: Request) -> Response:
    """``/l/`` followed by something that cannot be a code."""
    return not_found_page()


class Clicks:
    """Per-application click machinery: a cache of links by code, and click group commit.

    Links never change once created (their profile may be erased, which the click unit checks inside
    its transaction), so the redirect keeps them in memory instead of reading them on every click.

    Clicks that arrive while a click unit is being committed wait and then go together in the next
    unit, written with one statement per table (`record_clicks`): under load, many clicks share one
    transaction and one fsync, and each click costs a few rows of an executemany instead of several
    statements. Alone, a click is committed at once. Every click is committed before its 302.
    """

    CACHE_MAX = 50_000

    def __init__(self, db: Database, metrics: Metrics) -> None:
        self.db = db
        # Labelled children looked up once: `labels()` takes a lock and hashes on every call.
        self.bot_clicks = metrics.link_clicks.labels("bot")
        self.human_clicks = metrics.link_clicks.labels("human")
        self.events_stored = metrics.events_stored.labels("link")
        self.sessions_attached = metrics.sessions_attached.labels("link")
        self._links: dict[str, Link] = {}
        self._pending: list[tuple[Click, asyncio.Future[ClickOutcome]]] = []
        self._draining = False
        self._task: asyncio.Task[None] | None = None  # held so the running drain is not collected

    async def link(self, code: str) -> Link | None:
        """The link with this code (cached), or ``None``."""
        link = self._links.get(code)
        if link is None:
            link = await self.db.read(lambda c: link_by_code(c, code))
            if link is not None:
                if len(self._links) >= self.CACHE_MAX:
                    self._links.clear()
                self._links[code] = link
        return link

    async def record(self, link: Link) -> ClickOutcome:
        """Record a human click on `link` with a fresh session; returns after the commit."""
        future: asyncio.Future[ClickOutcome] = asyncio.get_running_loop().create_future()
        self._pending.append((Click(link, new_session_id(), time.time()), future))
        if not self._draining:
            self._draining = True
            # Started on the next turn of the loop, so clicks that arrive meanwhile join the batch.
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._commit(batch)
        finally:
            self._draining = False

    async def _commit(self, batch: list[tuple[Click, asyncio.Future[ClickOutcome]]]) -> None:
        clicks = [click for click, _ in batch]
        try:
            outcomes = await self.db.write(lambda c: record_clicks(c, clicks))
        except Exception:
            # Nothing of the batch was written. Give each click a unit of its own on the general path,
            # with a new session id (in case the failure was an id that exists after all).
            for click, future in batch:
                await self._commit_alone(click, future)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    async def _commit_alone(self, click: Click, future: asyncio.Future[ClickOutcome]) -> None:
        session = new_session_id()
        try:
            outcome = await self.db.write(lambda c: record_click(c, click.link, session, click.at))
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(outcome)


def clicks_of(app: Any) -> Clicks:
    """The application's `Clicks`, made on first use (one per application and database)."""
    state: AppState = app.state.hellotext
    clicks: Clicks | None = getattr(app.state, "hellotext_clicks", None)
    if clicks is None or clicks.db is not state.db:
        clicks = Clicks(state.db, state.metrics)
        app.state.hellotext_clicks = clicks
    return clicks


def _user_agent(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"user-agent":
            return str(value.decode("latin-1"))
    return None


async def _send_redirect(send: Send, location: str) -> None:
    # ascii_url/redirect_location give ASCII without control characters: safe as a header value.
    headers = [
        (b"location", location.encode("ascii")),
        (b"cache-control", b"no-store"),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": 302, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


class Follow:
    """``GET``/``HEAD /l/{code}`` (no credential): count a human click and redirect (§10, S7).

    Previews and ``HEAD`` get the destination as stored, with no session, click or event.

    A plain ASGI app rather than a request handler (Starlette calls an instance like this directly): the
    redirect is the hottest public path, and it needs neither a `Request` nor a `Response` object.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        code = scope["path_params"]["code"]
        if not is_code(code):
            await not_found_page()(scope, receive, send)
            return
        clicks = clicks_of(scope["app"])
        link = await clicks.link(code)
        if link is None:
            await not_found_page()(scope, receive, send)
            return
        if scope["method"] == "HEAD" or is_preview_bot(_user_agent(scope)):
            clicks.bot_clicks.inc()
            await _send_redirect(send, ascii_url(link.destination))
            return
        outcome = await clicks.record(link)
        clicks.human_clicks.inc()
        clicks.events_stored.inc()
        if outcome.profile is not None:
            clicks.sessions_attached.inc()
        await _send_redirect(send, redirect_location(link.destination, outcome.session, link.utm))


routes: list[BaseRoute] = [
    Route("/v1/links", private_route(links_collection), methods=["GET", "POST"]),
    Route("/v1/links/batch", private_route(links_batch), methods=["POST"]),
    Route("/v1/links/{id}", private_route(link_detail), methods=["GET"]),
    Route("/l/{code}", Follow(), methods=["GET", "HEAD"]),
    # Any other path under /l/ (with a slash, e.g. a decoded %2F, or empty) is a would-be code too:
    # it gets the HTML page, not the JSON 404 of unknown API paths.
    Route("/l/{rest:path}", not_a_code, methods=["GET", "HEAD"]),
]
