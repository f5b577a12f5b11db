"""Public identification from the browser (spec http-api §8.5, §6.3; I5, I8)."""

from __future__ import annotations

import time

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hellotext.core.identity import IdentificationResult, identify, parse_identification
from hellotext.server.auth import Ctx, public_route
from hellotext.server.bodies import read_json
from hellotext.server.responses import json_response
from hellotext.store.identities import IdentityStorage


async def identifications(request: Request, ctx: Ctx) -> Response:
    """``POST /v1/public/identifications``: identity → profile, attach the session when it is free.

    A session owned by another profile stays there and the answer says ``session_conflict: true``
    (still ``200``: the official client then remembers the identity and later events are attributed by
    it, §6.4).
    """
    body = await read_json(request)
    ident = parse_identification(body)
    business_id = ctx.business.pk
    now = time.time()

    def unit(conn: Connection) -> IdentificationResult:
        return identify(IdentityStorage(conn, business_id), ident, now)

    result = await ctx.state.db.write(unit)
    ctx.state.metrics.identifications.labels(result.outcome).inc()
    if result.outcome == "attached":
        ctx.state.metrics.sessions_attached.labels("identify").inc()
    return json_response(result.as_json())


routes = [
    Route("/v1/public/identifications", public_route(identifications), methods=["POST", "OPTIONS"]),
]
