"""Events in storage: the API's event object (reading) and the ingest unit of work (writing).

Attribution is stored as decided at write time (spec §6.4, I9): `profile_id` holds the explicit profile or
the identity's profile; it is NULL when the event is attributed by its session or is anonymous. The
effective profile (§6.5) is then the session's owner, joined at read time: a session never moves (I3), so
this equals the owner at write time, and attaching later adopts earlier anonymous events without
rewriting them (I4).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, select

from hellotext.store import codec
from hellotext.store.objects import object_json, objects_by_id
from hellotext.store.schema import sessions

_UNSET: Any = object()
_IN_CHUNK = 500
_OWNERS = select(sessions.c.id, sessions.c.profile_id).where(
    sessions.c.business_id == bindparam("business_id"),
    sessions.c.id.in_(bindparam("ids", expanding=True)),
)


def _number(value: float | None) -> float | int | None:
    """Integral floats as integers: an amount sent as ``20`` reads back as ``20``."""
    if value is None:
        return None
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def session_owners(conn: Connection, business_id: int, session_ids: Iterable[str]) -> dict[str, str | None]:
    """The current owner (profile id or ``None``) of each known session of the business."""
    wanted = sorted(set(session_ids))
    owners: dict[str, str | None] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        for row in conn.execute(_OWNERS, {"business_id": business_id, "ids": chunk}):
            owners[row.id] = row.profile_id
    return owners


def event_objects(conn: Connection, business_id: int, rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Render stored event rows as the API's event object (§8.3), in the order given.

    Each row must carry the columns of the `events` table (e.g. rows of ``select(events)``). The
    effective profile (§6.5) is the stored `profile_id`, or, when that is NULL, the current owner of the
    event's session. A row may already carry that owner in a column labelled ``session_owner`` (e.g. from
    a join with `sessions`); otherwise owners are looked up here, in one query for all rows. Embedded
    objects (§7.2 representation) are likewise fetched in one query. Timestamps are integer epoch
    seconds; ``raw`` is the request body as received.

    Args:
        conn: a connection (read or write).
        business_id: the business the rows belong to (every lookup is scoped to it).
        rows: event rows.

    Returns:
        One event object per row.
    """
    need_owner = {
        row.session_id
        for row in rows
        if row.profile_id is None
        and row.session_id is not None
        and getattr(row, "session_owner", _UNSET) is _UNSET
    }
    owners = session_owners(conn, business_id, need_owner) if need_owner else {}
    object_ids = {row.object_id for row in rows if row.object_id is not None}
    found = objects_by_id(conn, business_id, object_ids) if object_ids else {}
    rendered: list[dict[str, Any]] = []
    for row in rows:
        profile = row.profile_id
        if profile is None and row.session_id is not None:
            owner = getattr(row, "session_owner", _UNSET)
            profile = owners.get(row.session_id) if owner is _UNSET else owner
        obj = found.get(row.object_id) if row.object_id is not None else None
        rendered.append(
            {
                "id": row.id,
                "type": "event",
                "action": row.action,
                "profile": profile,
                "session": row.session_id,
                "tracked_at": int(row.tracked_at),
                "received_at": int(row.received_at),
                "amount": _number(row.amount),
                "currency": row.currency,
                "url": row.url,
                "page": codec.loads(row.page),
                "utm_params": codec.loads(row.utm),
                "metadata": codec.loads(row.metadata),
                "object": None if obj is None else object_json(obj),
                "client_id": row.client_id,
                "via": row.via,
                "raw": codec.loads(row.raw),
            }
        )
    return rendered
