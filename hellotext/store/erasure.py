"""Erasure: the right to be forgotten (spec sessions-and-identity I11; http-api §6.6).

One unit of work, so one transaction: every event whose effective profile is the profile (its own events
and the anonymous events of its sessions), its sessions, its identities and the profile. Links that named
it keep working with no profile. Idempotency keys live on the event rows, so they go with them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, select, update

from hellotext.store.schema import events, identities, links, profiles, sessions


@dataclass(frozen=True, slots=True)
class Erasure:
    """How many rows an erasure removed."""

    profile: str
    events: int
    sessions: int
    identities: int
    links_unlinked: int

    def as_json(self) -> dict[str, object]:
        """A summary for the CLI's ``--json``."""
        return {
            "erased": True,
            "profile": self.profile,
            "events": self.events,
            "sessions": self.sessions,
            "identities": self.identities,
            "links_unlinked": self.links_unlinked,
        }


def erase_profile(conn: Connection, business_id: int, profile_id: str) -> Erasure | None:
    """Erase a profile and everything attributed to it, inside the caller's transaction.

    Returns:
        What was removed, or ``None`` when the profile does not exist in the business.
    """
    # Lock the profile row first (PostgreSQL): an attach holds a key-share lock on it while it attaches,
    # so either it committed before (and its session is erased below) or it sees the profile gone.
    found = conn.execute(
        select(profiles.c.id)
        .where(profiles.c.business_id == business_id, profiles.c.id == profile_id)
        .with_for_update()
    ).first()
    if found is None:
        return None
    # Sessions go first: deleting them waits for any ingest still writing on them (it holds their rows), so
    # the events deleted next include that ingest's, and nothing is left behind on an erased session id.
    attached = [
        row[0]
        for row in conn.execute(
            delete(sessions)
            .where(sessions.c.business_id == business_id, sessions.c.profile_id == profile_id)
            .returning(sessions.c.id)
        )
    ]
    erased_sessions = len(attached)
    anonymous = 0
    for start in range(0, len(attached), 500):
        anonymous += conn.execute(
            delete(events).where(
                events.c.business_id == business_id,
                events.c.profile_id.is_(None),
                events.c.session_id.in_(attached[start : start + 500]),
            )
        ).rowcount
    own = conn.execute(
        delete(events).where(events.c.business_id == business_id, events.c.profile_id == profile_id)
    ).rowcount
    erased_identities = conn.execute(
        delete(identities).where(
            identities.c.business_id == business_id, identities.c.profile_id == profile_id
        )
    ).rowcount
    unlinked = conn.execute(
        update(links)
        .where(links.c.business_id == business_id, links.c.profile_id == profile_id)
        .values(profile_id=None)
    ).rowcount
    conn.execute(delete(profiles).where(profiles.c.business_id == business_id, profiles.c.id == profile_id))
    return Erasure(
        profile=profile_id,
        events=anonymous + own,
        sessions=erased_sessions,
        identities=erased_identities,
        links_unlinked=unlinked,
    )
