"""Identities (source, user_id) → profile, created race-safe with a new profile (spec §6.2)."""

from __future__ import annotations

from sqlalchemy import Connection, delete, select

from hellotext.store.profiles import insert_profile
from hellotext.store.schema import identities, profiles
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
    inserted = conn.execute(
        insert_for(conn, identities)
        .values(
            business_id=business_id, source=source, user_id=user_id, profile_id=profile_id, created_at=now
        )
        .on_conflict_do_nothing(index_elements=["business_id", "source", "user_id"])
    )
    if inserted.rowcount == 1:
        return profile_id, True
    conn.execute(delete(profiles).where(profiles.c.business_id == business_id, profiles.c.id == profile_id))
    winner = identity_profile(conn, business_id, source, user_id)
    assert winner is not None  # the conflicting row is committed or ours to see
    return winner, False
