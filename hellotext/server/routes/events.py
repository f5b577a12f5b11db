"""Routes: event ingest (spec http-api §8.3, §8.3b, §9.4), the server's hot path.

Each request is validated in the handler (no lookups), then handed to the writer as ONE unit of work
(`hellotext.store.events.ingest`), which does the lookups and the writes in one group-committed
transaction. The answer is sent only after the commit.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hellotext.core.events import EventInput, parse_event
from hellotext.core.values import empty, invalid, missing
from hellotext.errors import Problem, ValidationFailed
from hellotext.server.auth import Ctx, private_route, public_route
from hellotext.server.bodies import BATCH_BODY_LIMIT, read_json
from hellotext.server.responses import json_response, received
from hellotext.server.routes.actions import declared_actions
from hellotext.store.events import DuplicateKeyRace, IngestResult, ingest

BATCH_MAX = 500
# A unit that lost a key race is run again; the rerun sees the key. More than a few losses in a row
# would mean something else is wrong.
_RACE_RETRIES = 5
_RECEIVED_ENTRY = {"status": "received"}


async def store_events(
    request: Request, ctx: Ctx, items: Sequence[EventInput], *, via: str, received_at: float
) -> IngestResult:
    """Run the ingest unit for `items` and count what it stored.

    Returns:
        The unit's result, after its transaction committed.
    """
    business_id = ctx.business.pk
    cache = declared_actions(request)

    def unit(conn: Connection) -> IngestResult:
        return ingest(conn, business_id, items, via=via, received_at=received_at, actions=cache)

    for attempt in range(_RACE_RETRIES):
        try:
            result = await ctx.state.db.write(unit)
        except DuplicateKeyRace:
            if attempt == _RACE_RETRIES - 1:
                raise
            continue
        break
    metrics = ctx.state.metrics
    if result.stored:
        metrics.stored(via).inc(result.stored)
    if result.attached:
        metrics.sessions_attached.labels("api").inc(result.attached)
    return result


async def track_event(request: Request, ctx: Ctx) -> Response:
    """``POST /v1/track/events``: one event; ``200 {"status":"received"}`` after the commit."""
    body = await read_json(request)
    now = time.time()
    event = parse_event(body, now)
    result = await store_events(request, ctx, (event,), via="track", received_at=now)
    outcome = result.outcomes[0]
    if outcome is not None:
        raise outcome
    return received()


async def attribute_event(request: Request, ctx: Ctx) -> Response:
    """``POST /v1/attribution/events``: server-side tracking with an explicit profile and/or session."""
    body = await read_json(request)
    now = time.time()
    event = parse_event(body, now, private=True)
    result = await store_events(request, ctx, (event,), via="attribution", received_at=now)
    outcome = result.outcomes[0]
    if outcome is not None:
        raise outcome
    return received()


def _batch_items(body: dict[str, Any]) -> list[Any]:
    items = body.get("events")
    if items is None:
        raise missing("events", "events is required")
    if not isinstance(items, list):
        raise invalid("events", "events must be an array")
    if not items:
        raise empty("events", "events must hold at least one event")
    if len(items) > BATCH_MAX:
        raise invalid("events", f"events must hold at most {BATCH_MAX} events")
    return items


async def track_batch(request: Request, ctx: Ctx) -> Response:
    """``POST /v1/track/events/batch``: 1-500 events, each validated and attributed alone.

    Valid events are committed together, in one unit, before the answer; the answer lists one result
    per event, in request order.
    """
    body = await read_json(request, limit=BATCH_BODY_LIMIT)
    items = _batch_items(body)
    now = time.time()
    entries: list[dict[str, Any] | None] = []
    valid: list[EventInput] = []
    positions: list[int] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            problems = [Problem("invalid", None, "each event must be a JSON object")]
            entries.append({"errors": [p.as_dict() for p in problems]})
            continue
        try:
            valid.append(parse_event(item, now))
        except ValidationFailed as exc:
            entries.append({"errors": [p.as_dict() for p in exc.problems]})
            continue
        positions.append(index)
        entries.append(None)
    if valid:
        result = await store_events(request, ctx, valid, via="track", received_at=now)
        for index, outcome in zip(positions, result.outcomes, strict=True):
            entries[index] = (
                _RECEIVED_ENTRY if outcome is None else {"errors": [p.as_dict() for p in outcome.problems]}
            )
    return json_response({"results": entries})


routes = [
    Route("/v1/track/events", public_route(track_event), methods=["POST", "OPTIONS"]),
    Route("/v1/track/events/batch", public_route(track_batch), methods=["POST", "OPTIONS"]),
    Route("/v1/attribution/events", private_route(attribute_event), methods=["POST"]),
]
