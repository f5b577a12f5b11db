"""A profile's timeline (spec http-api §6.5, §9.3.6; I4 retroactive history).

The timeline of profile P is every event whose effective profile is P: the events stored with
``profile_id = P`` plus the anonymous events (``profile_id IS NULL``) of every session attached to P.
Attaching never rewrites events, so the second half is joined through `sessions` at read time.

Each half is one keyset query that walks its index newest first (``ix_events_profile_time`` and, per
attached session, ``ix_events_session_time``) and stops after one page; the two halves are merged here.
Order: ``tracked_at`` descending, ties by ``seq`` descending (newest received first).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, and_, literal, or_, select

from hellotext.core.pages import Page, PageRequest
from hellotext.errors import NotFound, Problem
from hellotext.store.events import event_objects
from hellotext.store.schema import events, sessions


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One timeline event row, and whether it was anonymous when it happened.

    An event is stored with a NULL profile both when it was anonymous and when it was attributed by its
    session's owner at write time (`hellotext.store.events`). Since a session never moves (I3), the two
    are told apart by time: it was anonymous iff it was received before its session was attached.
    """

    row: Any
    anonymous: bool

    @property
    def key(self) -> tuple[float, int]:
        """The sort key: (`tracked_at`, `seq`)."""
        return (self.row.tracked_at, self.row.seq)


def _cursor_key(conn: Connection, business_id: int, page: PageRequest) -> tuple[float, int] | None:
    cursor = page.cursor
    if cursor is None:
        return None
    row = conn.execute(
        select(events.c.tracked_at, events.c.seq).where(
            events.c.business_id == business_id, events.c.id == cursor
        )
    ).first()
    if row is None:
        raise NotFound(Problem("not_found", page.cursor_name, f"no event with id {cursor}"))
    return (row.tracked_at, row.seq)


def _window(query: Select[Any], key: tuple[float, int] | None, newer: bool, limit: int) -> Select[Any]:
    tracked, seq = events.c.tracked_at, events.c.seq
    if key is not None:
        # Spelled out rather than as a row-value comparison so both planners keep the index range.
        if newer:
            query = query.where(or_(tracked > key[0], and_(tracked == key[0], seq > key[1])))
        else:
            query = query.where(or_(tracked < key[0], and_(tracked == key[0], seq < key[1])))
    order = (tracked.asc(), seq.asc()) if newer else (tracked.desc(), seq.desc())
    return query.order_by(*order).limit(limit)


def own_events_query(business_id: int, profile_id: str, action: str | None) -> Select[Any]:
    """Events stored with the profile (attributed at write time)."""
    query = select(events).where(events.c.business_id == business_id, events.c.profile_id == profile_id)
    return query if action is None else query.where(events.c.action == action)


def session_events_query(business_id: int, profile_id: str, action: str | None) -> Select[Any]:
    """Anonymous events of the sessions attached to the profile (their effective profile is it)."""
    query = (
        select(
            events,
            literal(profile_id).label("session_owner"),
            sessions.c.attached_at.label("session_attached_at"),
        )
        .select_from(
            sessions.join(
                events,
                and_(events.c.business_id == sessions.c.business_id, events.c.session_id == sessions.c.id),
            )
        )
        .where(
            sessions.c.business_id == business_id,
            sessions.c.profile_id == profile_id,
            events.c.profile_id.is_(None),
        )
    )
    return query if action is None else query.where(events.c.action == action)


def timeline_page(
    conn: Connection, business_id: int, profile_id: str, page: PageRequest, *, action: str | None = None
) -> Page[TimelineRow]:
    """One page of the profile's timeline, newest first.

    Raises:
        NotFound: the cursor is not an event of the business (parameter: the cursor's name).
    """
    key = _cursor_key(conn, business_id, page)
    newer = page.ending_before is not None
    want = page.limit + 1
    own = [
        TimelineRow(row, False)
        for row in conn.execute(_window(own_events_query(business_id, profile_id, action), key, newer, want))
    ]
    anon = [
        TimelineRow(row, row.session_attached_at is None or row.received_at < row.session_attached_at)
        for row in conn.execute(
            _window(session_events_query(business_id, profile_id, action), key, newer, want)
        )
    ]
    merged = list(heapq.merge(own, anon, key=lambda r: r.key, reverse=not newer))[:want]
    has_more = len(merged) > page.limit
    items = merged[: page.limit]
    if newer:
        items.reverse()
    return Page(items=items, has_more=has_more)


def timeline_json(conn: Connection, business_id: int, rows: list[TimelineRow]) -> list[dict[str, Any]]:
    """Event objects (§8.3) for timeline rows, each with ``anonymous``: no profile when it happened."""
    rendered = event_objects(conn, business_id, [r.row for r in rows])
    for item, row in zip(rendered, rows, strict=True):
        item["anonymous"] = row.anonymous
    return rendered
