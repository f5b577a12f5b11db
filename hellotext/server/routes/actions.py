"""Routes: custom actions (spec http-api §9.1), private."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hellotext.core.actions import parse_action_declaration
from hellotext.core.pages import parse_page
from hellotext.server.auth import Ctx, private_route
from hellotext.server.bodies import read_json
from hellotext.server.responses import json_response
from hellotext.store.actions import DeclaredActions, declare_action, list_actions
from hellotext.store.pages import list_body


def declared_actions(request: Request) -> DeclaredActions:
    """The application's cache of declared action names (created on first use)."""
    cache: DeclaredActions | None = getattr(request.app.state, "declared_actions", None)
    if cache is None:
        cache = DeclaredActions()
        request.app.state.declared_actions = cache
    return cache


async def create_action(request: Request, ctx: Ctx) -> Response:
    """``POST /v1/actions``: declare a custom action; ``201`` with the action object."""
    declaration = parse_action_declaration(await read_json(request))
    business_id = ctx.business.pk
    now = time.time()

    def unit(conn: Connection) -> dict[str, Any]:
        return declare_action(conn, business_id, declaration, now)

    action = await ctx.state.db.write(unit)
    declared_actions(request).add(business_id, [declaration.name])
    return json_response(action, 201)


async def get_actions(request: Request, ctx: Ctx) -> Response:
    """``GET /v1/actions``: the business's custom actions, paginated (built-ins are not listed)."""
    page = parse_page(request.query_params)
    business_id = ctx.business.pk
    result = await ctx.state.db.read(lambda conn: list_actions(conn, business_id, page))
    return json_response(list_body(result.items, result.has_more))


async def actions_endpoint(request: Request, ctx: Ctx) -> Response:
    """One path, two methods."""
    if request.method == "POST":
        return await create_action(request, ctx)
    return await get_actions(request, ctx)


routes = [Route("/v1/actions", private_route(actions_endpoint), methods=["GET", "POST"])]
