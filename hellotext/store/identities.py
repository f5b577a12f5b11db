"""Identities (source, user_id) → profile, created race-safe with a new profile (spec §6.2)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select

from hellotext.core.identity import Unverified
from hellotext.store.profiles import insert_profile, try_update_profile, unverified_of
from hellotext.store.schema import identities, profiles
from hellotext.store.sessions import attach_or_owner, see_session
from hellotext.store.sql import insert_for


def identity_profile(conn: Connection, business_id: int, source: str, user_id: str) -> str | None:
    """The profile an identity points at, or ``None`` when the identity is unknown."""
    profile_id: str | None = conn.execute(
        select(identities.c.profile_id).where(
            identities.c.business_id == business_id,
            identities.c.source == source,
            identities.c.user_id == user_id,
        )
    ).scalar()
    return profile_id


def resolve_identity(
    conn: Connection, business_id: int, source: str, user_id: str, now: float
) -> tuple[str, bool]:
    """Find the identity's profile, or create the identity with a new empty profile.

    Race-safe across processes: the identity insert is ``ON CONFLICT DO NOTHING``; the loser of a race
    removes the profile it made and takes the winner's.

    Returns:
        ``(profile_id, created)``; `created` is true when this call created the identity and profile.
    """
    existing = identity_profile(conn, business_id, source, user_id)
    if existing is not None:
        return existing, False
    profile_id = insert_profile(conn, business_id, now)
    # RETURNING tells whether the row went in: SQLAlchemy reads an INSERT's rowcount as -1 on psycopg.
    inserted = conn.execute(
        insert_for(conn, identities)
        .values(
            business_id=business_id, source=source, user_id=user_id, profile_id=profile_id, created_at=now
        )
        .on_conflict_do_nothing(index_elements=["business_id", "source", "user_id"])
        .returning(identities.c.profile_id)
    ).first()
    if inserted is not None:
        return profile_id, True
    conn.execute(delete(profiles).where(profiles.c.business_id == business_id, profiles.c.id == profile_id))
    winner = identity_profile(conn, business_id, source, user_id)
    assert winner is not None  # the conflicting row is committed or ours to see
    return winner, False


class IdentityStorage:
    """`hellotext.core.identity.IdentityStore` over one connection (one transaction) and one business."""

    def __init__(self, conn: Connection, business_id: int) -> None:
        self.conn = conn
        self.business_id = business_id

    def resolve_identity(self, source: str, user_id: str, now: float) -> tuple[str, bool]:
        """``(profile_id, created)``, creating the identity with an empty profile if unknown."""
        return resolve_identity(self.conn, self.business_id, source, user_id, now)

    def unverified(self, profile_id: str) -> Unverified:
        """The profile's unverified data."""
        return unverified_of(self.conn, self.business_id, profile_id)

    def update_profile(self, profile_id: str, changes: dict[str, Any], now: float) -> None:
        """Write unverified data (never unique, so this cannot conflict)."""
        try_update_profile(self.conn, self.business_id, profile_id, changes, now)

    def see_session(self, session_id: str, now: float) -> None:
        """Create the session if new and bump ``last_seen_at``."""
        see_session(self.conn, self.business_id, session_id, now)

    def attach_session(
        self, session_id: str, profile_id: str, via: str, now: float
    ) -> tuple[str | None, bool]:
        """Conditional attach; ``(owner after, won)``."""
        return attach_or_owner(self.conn, self.business_id, session_id, profile_id, via, now)
