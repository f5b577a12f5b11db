"""Sessions in storage: race-safe first sighting, last seen, first-touch UTM, conditional attach."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from hellotext.core.pages import Page, PageRequest
from hellotext.core.sessions import Session
from hellotext.store import codec
from hellotext.store.pages import page_by_seq
from hellotext.store.schema import sessions
from hellotext.store.sql import insert_for


def _row_to_session(row: Any) -> Session:
    return Session(
        id=row.id,
        profile=row.profile_id,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        attached_at=row.attached_at,
        attached_via=row.attached_via,
        utm_params=codec.loads(row.utm),
    )


def see_session(
    conn: Connection,
    business_id: int,
    session_id: str,
    now: float,
    utm: dict[str, Any] | None = None,
    *,
    touch: bool = True,
) -> None:
    """Record a sighting: create the session if new (race-safe), bump `last_seen_at`, set first-touch UTM.

    Args:
        touch: update `last_seen_at` of an existing session (acks, events, identifications do; attach
            and profile creation only create).
    """
    stmt = insert_for(conn, sessions).values(
        business_id=business_id,
        id=session_id,
        created_at=now,
        last_seen_at=now,
        utm=codec.dumps_or_none(utm),
    )
    excluded = stmt.excluded
    changes: dict[str, Any] = {}
    if touch:
        changes["last_seen_at"] = excluded.last_seen_at
    if utm is not None:
        # First touch: an existing value is never overwritten.
        changes["utm"] = func.coalesce(sessions.c.utm, excluded.utm)
    if changes:
        stmt = stmt.on_conflict_do_update(index_elements=["business_id", "id"], set_=changes)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=["business_id", "id"])
    conn.execute(stmt)


def get_session(conn: Connection, business_id: int, session_id: str) -> Session | None:
    """The session, or ``None``."""
    row = conn.execute(
        select(sessions).where(sessions.c.business_id == business_id, sessions.c.id == session_id)
    ).first()
    return None if row is None else _row_to_session(row)


def session_owner(conn: Connection, business_id: int, session_id: str) -> str | None:
    """The profile a session is attached to, or ``None`` (unattached or unknown)."""
    owner: str | None = conn.execute(
        select(sessions.c.profile_id).where(
            sessions.c.business_id == business_id, sessions.c.id == session_id
        )
    ).scalar()
    return owner


def attach_session(
    conn: Connection, business_id: int, session_id: str, profile_id: str, via: str, now: float
) -> str | None:
    """Attach a session that exists, if it is unattached: one conditional update (I3).

    Returns:
        The owner after the update: `profile_id` when this call won or it was already attached to it,
        another profile id on conflict, ``None`` if the session does not exist.
    """
    return attach_or_owner(conn, business_id, session_id, profile_id, via, now)[0]


def attach_or_owner(
    conn: Connection, business_id: int, session_id: str, profile_id: str, via: str, now: float
) -> tuple[str | None, bool]:
    """Like `attach_session`, also saying whether this call is the one that attached the session.

    Returns:
        ``(owner, won)``: the owner after the update, and whether this update set it (false when it was
        already attached, to this profile or another, or does not exist).
    """
    result = conn.execute(
        update(sessions)
        .where(
            and_(
                sessions.c.business_id == business_id,
                sessions.c.id == session_id,
                sessions.c.profile_id.is_(None),
            )
        )
        .values(profile_id=profile_id, attached_at=now, attached_via=via)
    )
    if result.rowcount == 1:
        return profile_id, True
    return session_owner(conn, business_id, session_id), False


def page_sessions(
    conn: Connection, business_id: int, page: PageRequest, *, profile_id: str | None = None
) -> Page[Session]:
    """One page of the business's sessions, newest first; only those attached to `profile_id` if given."""
    filters = [] if profile_id is None else [sessions.c.profile_id == profile_id]
    rows = page_by_seq(conn, sessions, business_id, page, *filters)
    return Page(items=[_row_to_session(row) for row in rows.items], has_more=rows.has_more)
