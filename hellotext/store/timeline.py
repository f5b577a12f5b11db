"""A profile's timeline (spec http-api §6.5, §9.3.6; I4 retroactive history).

The timeline of profile P is every event whose effective profile is P: the events stored with
``profile_id = P`` plus the anonymous events (``profile_id IS NULL``) of every session attached to P.
Attaching never rewrites events, so the second half is joined through `sessions` at read time.
Order: ``tracked_at`` descending, ties by ``seq`` descending (newest received first).

Every part walks an index newest first and stops after one page, so a page costs the same whatever the
size of the table or of the timeline:

- P's own events: ``ix_events_profile_time``;
- the anonymous events of each attached session: ``ix_events_session_time``, one walk per session
  (on PostgreSQL one statement, a LATERAL join over P's sessions; on SQLite, which has no LATERAL, one
  cheap in-process query per session);

and the walks are merged here. Statements are built once per shape and reused with bound parameters:
building SQLAlchemy constructs per request would cost more than running them.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
    true,
)

from hellotext.core.pages import Page, PageRequest
from hellotext.errors import NotFound, Problem
from hellotext.store.events import event_objects
from hellotext.store.schema import events, sessions

_CURSOR = select(events.c.tracked_at, events.c.seq).where(
    events.c.business_id == bindparam("business_id"), events.c.id == bindparam("cursor")
)
_ATTACHED = select(sessions.c.id, sessions.c.attached_at).where(
    sessions.c.business_id == bindparam("business_id"), sessions.c.profile_id == bindparam("profile_id")
)


#: What the index walks read: the sort key, and `received_at` to tell anonymous events (see `TimelineRow`).
_KEYS = (events.c.tracked_at, events.c.seq, events.c.received_at)
_ROWS = select(events).where(
    events.c.business_id == bindparam("business_id"), events.c.seq.in_(bindparam("seqs", expanding=True))
)

# A hit of a walk: (tracked_at, seq, anonymous). Walks read keys only; whole rows are read for the page.
Hit = tuple[float, int, bool]


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One timeline event row, and whether it was anonymous when it happened.

    An event is stored with a NULL profile both when it was anonymous and when it was attributed by its
    session's owner at write time (`hellotext.store.events`). Since a session never moves (I3), the two
    are told apart by time: it was anonymous iff it was received before its session was attached.
    """

    row: Any
    anonymous: bool


@dataclass(frozen=True, slots=True)
class Shape:
    """What varies between timeline statements: the action filter, the cursor, the direction, a floor."""

    action: bool
    cursor: bool
    newer: bool
    #: Older-first walks only: keep rows newer than ``(:floor_tracked_at, :floor_seq)``.
    floor: bool = False


def _before(t: Any, s: Any) -> ColumnElement[bool]:
    """``(tracked_at, seq) < (t, s)``, spelled so that both planners bound the index range on
    ``tracked_at`` (a bare OR of the two cases is a filter to PostgreSQL: it walks from the newest)."""
    tracked, seq = events.c.tracked_at, events.c.seq
    return and_(tracked <= t, or_(tracked < t, seq < s))


def _after(t: Any, s: Any) -> ColumnElement[bool]:
    """``(tracked_at, seq) > (t, s)``, index-friendly as `_before`."""
    tracked, seq = events.c.tracked_at, events.c.seq
    return and_(tracked >= t, or_(tracked > t, seq > s))


def _window(query: Select[Any], shape: Shape) -> Select[Any]:
    """Filter by action and cursor, order in the page's direction, limit to ``:want`` rows."""
    tracked, seq = events.c.tracked_at, events.c.seq
    if shape.action:
        query = query.where(events.c.action == bindparam("action"))
    if shape.cursor:
        t: Any = bindparam("cursor_tracked_at")
        s: Any = bindparam("cursor_seq")
        query = query.where(_after(t, s) if shape.newer else _before(t, s))
    if shape.floor:
        query = query.where(_after(bindparam("floor_tracked_at"), bindparam("floor_seq")))
    order = (tracked.asc(), seq.asc()) if shape.newer else (tracked.desc(), seq.desc())
    return query.order_by(*order).limit(bindparam("want", type_=Integer))


def _no_stored_profile() -> ColumnElement[bool]:
    # "No stored profile", spelled so that only `ix_events_session_time` matches: SQLite's planner can
    # serve ``profile_id IS NULL`` from `ix_events_profile_time` (profile NULL, ordered by time), which
    # holds every anonymous event of the business, and rates it as good as the session index.
    # Profile ids are never empty.
    return func.coalesce(events.c.profile_id, "") == ""


@cache
def own_events_statement(shape: Shape) -> Select[Any]:
    """P's own events: stored with ``profile_id = :profile_id`` (attributed at write time)."""
    query = select(*_KEYS).where(
        events.c.business_id == bindparam("business_id"), events.c.profile_id == bindparam("profile_id")
    )
    return _window(query, shape)


@cache
def session_events_statement(shape: Shape) -> Select[Any]:
    """The anonymous events of one session (``:session_id``), newest first (SQLite's per-session walk)."""
    query = select(*_KEYS).where(
        events.c.business_id == bindparam("business_id"),
        events.c.session_id == bindparam("session_id"),
        _no_stored_profile(),
    )
    return _window(query, shape)


@cache
def attached_events_statement(shape: Shape) -> Select[Any]:
    """The anonymous events of every session attached to ``:profile_id``, in one statement (PostgreSQL).

    For each session, a LATERAL subquery walks `ix_events_session_time` and stops after ``:want`` rows;
    the outer query keeps the ``:want`` first of those.
    """
    per_session = _window(
        select(*_KEYS).where(
            events.c.business_id == sessions.c.business_id,
            events.c.session_id == sessions.c.id,
            _no_stored_profile(),
        ),
        shape,
    ).lateral("walk")
    tracked, seq = per_session.c.tracked_at, per_session.c.seq
    order = (tracked.asc(), seq.asc()) if shape.newer else (tracked.desc(), seq.desc())
    return (
        select(per_session, sessions.c.attached_at.label("session_attached_at"))
        .select_from(sessions.join(per_session, true()))
        .where(
            sessions.c.business_id == bindparam("business_id"),
            sessions.c.profile_id == bindparam("profile_id"),
        )
        .order_by(*order)
        .limit(bindparam("want", type_=Integer))
    )


def _cursor_key(conn: Connection, business_id: int, page: PageRequest) -> tuple[float, int] | None:
    cursor = page.cursor
    if cursor is None:
        return None
    row = conn.execute(_CURSOR, {"business_id": business_id, "cursor": cursor}).first()
    if row is None:
        raise NotFound(Problem("not_found", page.cursor_name, f"no event with id {cursor}"))
    return (row.tracked_at, row.seq)


def _anonymous(received_at: float, attached_at: float | None) -> bool:
    return attached_at is None or received_at < attached_at


def _bounded(shape: Shape, params: dict[str, Any], best: list[Hit]) -> tuple[Shape, dict[str, Any]]:
    """Narrow a walk to rows that would enter `best`, once it holds a full page.

    Only for older-first walks (the usual direction): with ``want`` hits in hand, a row older than the
    oldest of them cannot make the page, so that hit becomes the walk's floor and the walk stops there.
    """
    if shape.newer or len(best) < params["want"]:
        return shape, params
    worst = best[params["want"] - 1]
    narrowed = {**params, "floor_tracked_at": worst[0], "floor_seq": worst[1]}
    return Shape(action=shape.action, cursor=shape.cursor, newer=False, floor=True), narrowed


def _merge(best: list[Hit], more: list[Hit], shape: Shape, want: int) -> list[Hit]:
    return list(heapq.merge(best, more, reverse=not shape.newer))[:want]


def _attached_hits(conn: Connection, shape: Shape, params: dict[str, Any], best: list[Hit]) -> list[Hit]:
    """Merge into `best` (P's own hits) the anonymous events of P's sessions; the first ``want``."""
    want = params["want"]
    if conn.dialect.name == "postgresql":
        walk_shape, walk_params = _bounded(shape, params, best)
        rows = conn.execute(attached_events_statement(walk_shape), walk_params)
        more = [(r.tracked_at, r.seq, _anonymous(r.received_at, r.session_attached_at)) for r in rows]
        return _merge(best, more, shape, want)
    attached = {row.id: row.attached_at for row in conn.execute(_ATTACHED, params)}
    for session_id, attached_at in attached.items():
        walk_shape, walk_params = _bounded(shape, params, best)
        walk_params = {**walk_params, "session_id": session_id}
        rows = conn.execute(session_events_statement(walk_shape), walk_params)
        more = [(r.tracked_at, r.seq, _anonymous(r.received_at, attached_at)) for r in rows]
        best = _merge(best, more, shape, want)
    return best


def timeline_page(
    conn: Connection, business_id: int, profile_id: str, page: PageRequest, *, action: str | None = None
) -> Page[TimelineRow]:
    """One page of the profile's timeline, newest first.

    Raises:
        NotFound: the cursor is not an event of the business (parameter: the cursor's name).
    """
    key = _cursor_key(conn, business_id, page)
    shape = Shape(action=action is not None, cursor=key is not None, newer=page.ending_before is not None)
    params: dict[str, Any] = {"business_id": business_id, "profile_id": profile_id, "want": page.limit + 1}
    if action is not None:
        params["action"] = action
    if key is not None:
        params["cursor_tracked_at"], params["cursor_seq"] = key
    own: list[Hit] = [(r.tracked_at, r.seq, False) for r in conn.execute(own_events_statement(shape), params)]
    merged = _attached_hits(conn, shape, params, own)
    has_more = len(merged) > page.limit
    hits = merged[: page.limit]
    if shape.newer:
        hits.reverse()
    found = {
        row.seq: row
        for row in conn.execute(_ROWS, {"business_id": business_id, "seqs": [h[1] for h in hits]})
    }
    return Page(items=[TimelineRow(found[seq], anonymous) for _, seq, anonymous in hits], has_more=has_more)


def timeline_json(
    conn: Connection, business_id: int, profile_id: str, rows: list[TimelineRow]
) -> list[dict[str, Any]]:
    """Event objects (§8.3) for timeline rows, each with ``anonymous``: no profile when it happened."""
    rendered = event_objects(conn, business_id, [_with_owner(r.row, profile_id) for r in rows])
    for item, row in zip(rendered, rows, strict=True):
        item["anonymous"] = row.anonymous
    return rendered


class _Owned:
    """A row that also names its session's owner, so rendering need not look it up (§6.5)."""

    __slots__ = ("_row", "session_owner")

    def __init__(self, row: Any, owner: str) -> None:
        self._row = row
        self.session_owner = owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


def _with_owner(row: Any, profile_id: str) -> Any:
    return row if row.profile_id is not None else _Owned(row, profile_id)
