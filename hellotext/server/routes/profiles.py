"""Private profile endpoints: create or match, list, read, patch, erase, timeline, sessions (§9.3)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hellotext.core.pages import parse_page
from hellotext.core.profiles import (
    CreateResult,
    Profile,
    create_profile,
    parse_profile_input,
    patch_profile,
)
from hellotext.core.values import invalid, normalize_email, normalize_phone
from hellotext.errors import NotFound, Problem
from hellotext.server.auth import Ctx, private_route
from hellotext.server.bodies import read_json
from hellotext.server.responses import json_response
from hellotext.server.routes.sessions import sessions_of
from hellotext.store.erasure import erase_profile
from hellotext.store.pages import list_body
from hellotext.store.profiles import ProfileStorage, get_profile, page_profiles, profile_exists
from hellotext.store.timeline import timeline_json, timeline_page


def _no_profile(profile_id: str, parameter: str = "id") -> NotFound:
    return NotFound(Problem("not_found", parameter, f"no profile with id {profile_id}"))


async def create(request: Request, ctx: Ctx) -> Response:
    """``POST /v1/profiles``: match by email or phone, else create; optionally attach a session (§9.3.1)."""
    body = await read_json(request)
    values = parse_profile_input(body)
    business_id = ctx.business.pk
    now = time.time()

    def unit(conn: Connection) -> CreateResult:
        return create_profile(ProfileStorage(conn, business_id), values, now)

    result = await ctx.state.db.write(unit)
    if result.session_attached:
        ctx.state.metrics.sessions_attached.labels("api").inc()
    return json_response(result.profile.as_json(), 201 if result.created else 200)


def _filter(query: Any, name: str, normalize: Any, what: str) -> str | None:
    raw = query.get(name)
    if raw is None:
        return None
    value: str | None = normalize(raw)
    if value is None:
        raise invalid(name, f"{name} must be {what}")
    return value


async def index(request: Request, ctx: Ctx) -> Response:
    """``GET /v1/profiles`` with filters ``email=``, ``phone=``, ``reference=`` (§9.3.2)."""
    query = request.query_params
    page = parse_page(query)
    email = _filter(query, "email", normalize_email, "a valid email address")
    phone = _filter(query, "phone", normalize_phone, "an E.164 phone number")
    reference = query.get("reference")
    business_id = ctx.business.pk

    def read(conn: Connection) -> dict[str, Any]:
        found = page_profiles(conn, business_id, page, email=email, phone=phone, reference=reference)
        return list_body([p.as_json() for p in found.items], found.has_more)

    return json_response(await ctx.state.db.read(read))


async def show(request: Request, ctx: Ctx) -> Response:
    """``GET /v1/profiles/{id}`` (§9.3.3)."""
    profile_id = request.path_params["id"]
    business_id = ctx.business.pk
    profile = await ctx.state.db.read(lambda c: get_profile(c, business_id, profile_id))
    if profile is None:
        raise _no_profile(profile_id)
    return json_response(profile.as_json())


async def patch(request: Request, ctx: Ctx) -> Response:
    """``PATCH /v1/profiles/{id}``: null clears, properties merge shallowly (§9.3.4)."""
    body = await read_json(request)
    values = parse_profile_input(body, patch=True).values
    profile_id = request.path_params["id"]
    business_id = ctx.business.pk
    now = time.time()

    def unit(conn: Connection) -> Profile:
        storage = ProfileStorage(conn, business_id)
        current = storage.get(profile_id)
        if current is None:
            raise _no_profile(profile_id)
        return patch_profile(storage, current, values, now)

    profile = await ctx.state.db.write(unit)
    return json_response(profile.as_json())


async def erase(request: Request, ctx: Ctx) -> Response:
    """``DELETE /v1/profiles/{id}``: erasure (§6.6, I11)."""
    profile_id = request.path_params["id"]
    business_id = ctx.business.pk
    erased = await ctx.state.db.write(lambda c: erase_profile(c, business_id, profile_id))
    if erased is None:
        raise _no_profile(profile_id)
    return Response(status_code=204, headers={"cache-control": "no-store"})


async def one(request: Request, ctx: Ctx) -> Response:
    """``/v1/profiles/{id}``: ``GET``, ``PATCH``, ``DELETE``."""
    if request.method == "PATCH":
        return await patch(request, ctx)
    if request.method == "DELETE":
        return await erase(request, ctx)
    return await show(request, ctx)


async def timeline(request: Request, ctx: Ctx) -> Response:
    """``GET /v1/profiles/{id}/events``: the timeline, newest first, optional ``action=`` (§9.3.6)."""
    query = request.query_params
    page = parse_page(query)
    action = query.get("action") or None
    profile_id = request.path_params["id"]
    business_id = ctx.business.pk

    def read(conn: Connection) -> dict[str, Any]:
        if not profile_exists(conn, business_id, profile_id):
            raise _no_profile(profile_id)
        found = timeline_page(conn, business_id, profile_id, page, action=action)
        return list_body(timeline_json(conn, business_id, profile_id, found.items), found.has_more)

    return json_response(await ctx.state.db.read(read))


async def sessions(request: Request, ctx: Ctx) -> Response:
    """``GET /v1/profiles/{id}/sessions``: as ``GET /v1/sessions?profile={id}`` (§9.3.7)."""
    return await sessions_of(ctx, request.query_params, request.path_params["id"], "id")


async def collection(request: Request, ctx: Ctx) -> Response:
    """``/v1/profiles``: ``POST`` creates or matches, ``GET`` lists."""
    if request.method == "POST":
        return await create(request, ctx)
    return await index(request, ctx)


routes = [
    Route("/v1/profiles", private_route(collection), methods=["GET", "POST"]),
    Route("/v1/profiles/{id}", private_route(one), methods=["GET", "PATCH", "DELETE"]),
    Route("/v1/profiles/{id}/events", private_route(timeline), methods=["GET"]),
    Route("/v1/profiles/{id}/sessions", private_route(sessions), methods=["GET"]),
]
