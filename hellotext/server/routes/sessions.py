"""Private session endpoints: attach, read, list (spec http-api §9.2; I2, I3)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hellotext.core.pages import parse_page
from hellotext.core.profiles import identity_assigned
from hellotext.core.sessions import Session
from hellotext.core.values import ABSENT_SESSIONS, empty, invalid, is_session_id, missing
from hellotext.errors import NotFound, Problem, ValidationFailed
from hellotext.server.auth import Ctx, private_route
from hellotext.server.bodies import read_json
from hellotext.server.responses import json_response
from hellotext.store.pages import list_body
from hellotext.store.profiles import profile_exists
from hellotext.store.sessions import attach_or_owner, get_session, page_sessions, see_session


def attach_target(body: dict[str, Any]) -> str:
    """The profile id of an attach body: ``profile``, or its alias ``profile_id`` (§9.2.1 step 2)."""
    given = [(key, body[key]) for key in ("profile", "profile_id") if body.get(key) is not None]
    if not given:
        raise missing("profile", "profile is required")
    if len(given) == 2 and given[0][1] != given[1][1]:
        raise ValidationFailed(
            Problem("ambiguous_parameter", "profile", "profile and profile_id name different profiles")
        )
    key, value = given[0]
    if not isinstance(value, str):
        raise invalid(key, f"{key} must be a string")
    if not value.strip():
        raise empty(key, f"{key} must not be blank")
    return value


def path_session(value: str) -> str:
    """The session id of an attach path (§9.2.1 step 1)."""
    if value in ABSENT_SESSIONS:
        raise missing("session", "session is required")
    if not is_session_id(value):
        raise invalid("session", "session must be 1-256 printable ASCII characters without , or ;")
    return value


@dataclass(frozen=True, slots=True)
class AttachResult:
    """The outcome of an attach unit: the session after it, and whether this call attached it."""

    session: Session | None
    won: bool
    profile_found: bool = True


def attach_unit(business_id: int, session_id: str, profile_id: str, via: str, now: float) -> Any:
    """A unit of work that attaches a session (created if new) to an existing profile (I3).

    It never raises for an expected refusal (unknown profile, conflict) so that it does not roll back the
    neighbours of its group commit; the handler reads the result and answers.
    """

    def unit(conn: Connection) -> AttachResult:
        if not profile_exists(conn, business_id, profile_id, lock=True):
            return AttachResult(session=None, won=False, profile_found=False)
        see_session(conn, business_id, session_id, now, touch=False)
        _, won = attach_or_owner(conn, business_id, session_id, profile_id, via, now)
        return AttachResult(session=get_session(conn, business_id, session_id), won=won)

    return unit


async def attach(request: Request, ctx: Ctx) -> Response:
    """``PATCH``/``POST /v1/sessions/{id}``: attach the session to a profile (§9.2.1)."""
    body = await read_json(request)
    session_id = path_session(request.path_params["id"])
    if body.get("session") is not None and body["session"] != session_id:
        raise invalid("session", "session in the body must equal the session of the path")
    profile_id = attach_target(body)
    result: AttachResult = await ctx.state.db.write(
        attach_unit(ctx.business.pk, session_id, profile_id, "api", time.time())
    )
    if not result.profile_found:
        raise NotFound(Problem("not_found", "profile", f"no profile with id {profile_id}"))
    assert result.session is not None
    if result.session.profile != profile_id:
        raise identity_assigned(result.session.as_json())
    if result.won:
        ctx.state.metrics.sessions_attached.labels("api").inc()
    return json_response(result.session.as_json())


async def show(request: Request, ctx: Ctx) -> Response:
    """``GET /v1/sessions/{id}`` (§9.2.2)."""
    session_id = request.path_params["id"]
    business_id = ctx.business.pk
    session = None
    if is_session_id(session_id):
        session = await ctx.state.db.read(lambda c: get_session(c, business_id, session_id))
    if session is None:
        raise NotFound(Problem("not_found", "id", "no session with this id"))
    return json_response(session.as_json())


async def sessions_of(ctx: Ctx, query: Any, profile_id: str | None, parameter: str) -> Response:
    """A page of sessions, only those attached to `profile_id` when given (unknown → 404 `parameter`)."""
    page = parse_page(query)
    business_id = ctx.business.pk

    def read(conn: Connection) -> dict[str, Any]:
        if profile_id is not None and not profile_exists(conn, business_id, profile_id):
            raise NotFound(Problem("not_found", parameter, f"no profile with id {profile_id}"))
        found = page_sessions(conn, business_id, page, profile_id=profile_id)
        return list_body([s.as_json() for s in found.items], found.has_more)

    return json_response(await ctx.state.db.read(read))


async def index(request: Request, ctx: Ctx) -> Response:
    """``GET /v1/sessions`` with optional ``profile=`` (§9.2.3)."""
    return await sessions_of(
        ctx, request.query_params, request.query_params.get("profile") or None, "profile"
    )


async def one(request: Request, ctx: Ctx) -> Response:
    """``/v1/sessions/{id}``: ``GET`` reads, ``PATCH`` and ``POST`` attach."""
    if request.method == "GET":
        return await show(request, ctx)
    return await attach(request, ctx)


routes = [
    Route("/v1/sessions", private_route(index), methods=["GET"]),
    Route("/v1/sessions/{id}", private_route(one), methods=["GET", "PATCH", "POST"]),
]
