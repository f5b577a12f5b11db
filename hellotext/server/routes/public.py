"""Public endpoints that are not event ingest (spec http-api §8.1, §8.2, §8.4, §8.6)."""

from __future__ import annotations

import time

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hellotext.core.ids import new_session_id
from hellotext.core.sessions import parse_utm
from hellotext.core.values import invalid, optional_session, parse_iso8601
from hellotext.errors import NotFound
from hellotext.server.auth import Ctx, public_route
from hellotext.server.bodies import read_json
from hellotext.server.responses import json_response, received
from hellotext.store.sessions import see_session


async def business_settings(request: Request, ctx: Ctx) -> Response:
    """``GET /v1/public/businesses/{id}``: only the credential's own business is visible."""
    if request.path_params["id"] != ctx.business.public_id:
        raise NotFound.one("not_found", "id", "no business with this id")
    return json_response(ctx.business.public_settings())


async def acks(request: Request, ctx: Ctx) -> Response:
    """``POST /v1/public/acks``: announce a session (create, last seen, first-touch UTM)."""
    body = await read_json(request)
    session = optional_session(body.get("session"))
    at = body.get("at")
    if at is not None and (not isinstance(at, str) or parse_iso8601(at) is None):
        raise invalid("at", "at must be an ISO 8601 date-time")
    utm = parse_utm(body.get("utm_params"))
    if session is not None:
        business_id = ctx.business.pk

        def unit(conn: Connection) -> None:
            see_session(conn, business_id, session, time.time(), utm)

        await ctx.state.db.write(unit)
    return received()


async def mint_session(request: Request, ctx: Ctx) -> Response:
    """``POST /v1/track/sessions`` (legacy): mint and create a session."""
    await read_json(request)
    session = new_session_id()
    business_id = ctx.business.pk

    def unit(conn: Connection) -> None:
        see_session(conn, business_id, session, time.time())

    await ctx.state.db.write(unit)
    return json_response({"id": session})


routes = [
    Route("/v1/public/businesses/{id}", public_route(business_settings), methods=["GET", "OPTIONS"]),
    Route("/v1/public/acks", public_route(acks), methods=["POST", "OPTIONS"]),
    Route("/v1/track/sessions", public_route(mint_session), methods=["POST", "OPTIONS"]),
]
