"""Profiles in storage: reads with identities, race-safe insert and update, listing with filters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from hellotext.core.identity import Unverified
from hellotext.core.ids import new_id
from hellotext.core.pages import Page, PageRequest
from hellotext.core.profiles import Profile
from hellotext.store import codec
from hellotext.store import sessions as sessions_store
from hellotext.store.pages import page_by_seq
from hellotext.store.schema import identities, profiles
from hellotext.store.sql import insert_for

#: Columns holding JSON values (encoded with `codec`).
_JSON_COLUMNS = ("properties", "traits")


def _encode(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: codec.dumps(v or {}) if k in _JSON_COLUMNS else v for k, v in fields.items()}


def insert_profile(conn: Connection, business_id: int, now: float, **fields: Any) -> str:
    """Insert a profile with the given columns (JSON columns as Python values); returns its new id."""
    values: dict[str, Any] = {
        "business_id": business_id,
        "id": new_id(),
        "created_at": now,
        "updated_at": now,
        "properties": codec.dumps(fields.pop("properties", None) or {}),
        "traits": codec.dumps(fields.pop("traits", None) or {}),
    }
    values.update(fields)
    conn.execute(insert(profiles).values(**values))
    return str(values["id"])


def try_insert_profile(conn: Connection, business_id: int, now: float, fields: dict[str, Any]) -> str | None:
    """Insert a profile unless one of its unique values (email, phone, reference) is taken.

    ``ON CONFLICT DO NOTHING`` (no target: every unique index) makes a concurrent create with the same
    value wait for the other transaction and then do nothing, instead of failing the whole transaction.

    Returns:
        The new id, or ``None`` when a unique value already belongs to a profile.
    """
    profile_id = new_id()
    values = {
        "business_id": business_id,
        "id": profile_id,
        "created_at": now,
        "updated_at": now,
        "properties": "{}",
        "traits": "{}",
        **_encode(fields),
    }
    # RETURNING tells whether the row went in: SQLAlchemy reads an INSERT's rowcount as -1 on psycopg.
    inserted = conn.execute(
        insert_for(conn, profiles).values(**values).on_conflict_do_nothing().returning(profiles.c.id)
    ).first()
    return profile_id if inserted is not None else None


def try_update_profile(
    conn: Connection, business_id: int, profile_id: str, changes: dict[str, Any], now: float
) -> bool:
    """Write column changes and bump ``updated_at``.

    The update runs in a savepoint so that a unique value taken meanwhile undoes only this statement.

    Returns:
        False (nothing written) when a new email, phone or reference belongs to another profile.
    """
    values = {**_encode(changes), "updated_at": now}
    statement = (
        update(profiles)
        .where(profiles.c.business_id == business_id, profiles.c.id == profile_id)
        .values(**values)
    )
    try:
        with conn.begin_nested():
            conn.execute(statement)
    except IntegrityError:
        return False
    return True


def _identities_of(
    conn: Connection, business_id: int, ids: Sequence[str]
) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = conn.execute(
        select(identities.c.profile_id, identities.c.source, identities.c.user_id)
        .where(identities.c.business_id == business_id, identities.c.profile_id.in_(list(ids)))
        .order_by(identities.c.created_at, identities.c.source, identities.c.user_id)
    )
    for row in rows:
        found[row.profile_id].append((row.source, row.user_id))
    return found


def _to_profile(row: Any, ids: list[tuple[str, str]]) -> Profile:
    return Profile(
        id=row.id,
        first_name=row.first_name,
        last_name=row.last_name,
        email=row.email,
        phone=row.phone,
        reference=row.reference,
        properties=codec.loads(row.properties) or {},
        unverified=Unverified(
            email=row.unverified_email,
            phone=row.unverified_phone,
            name=row.unverified_name,
            traits=codec.loads(row.traits) or {},
        ),
        identities=ids,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def with_identities(conn: Connection, business_id: int, rows: Sequence[Any]) -> list[Profile]:
    """Profiles from rows of the profiles table, each with its identities (one query for all)."""
    found = _identities_of(conn, business_id, [row.id for row in rows])
    return [_to_profile(row, found[row.id]) for row in rows]


def get_profile(conn: Connection, business_id: int, profile_id: str) -> Profile | None:
    """The profile with its identities, or ``None``."""
    row = conn.execute(
        select(profiles).where(profiles.c.business_id == business_id, profiles.c.id == profile_id)
    ).first()
    return None if row is None else with_identities(conn, business_id, [row])[0]


def find_profile(conn: Connection, business_id: int, column: str, value: str) -> Profile | None:
    """The profile whose trusted `column` (``email``, ``phone`` or ``reference``) equals `value`."""
    row = conn.execute(
        select(profiles).where(profiles.c.business_id == business_id, profiles.c[column] == value)
    ).first()
    return None if row is None else with_identities(conn, business_id, [row])[0]


def profile_exists(conn: Connection, business_id: int, profile_id: str, *, lock: bool = False) -> bool:
    """Whether the profile exists.

    Args:
        lock: on PostgreSQL, hold a key-share lock on the row until the transaction ends, so that an
            erasure running at the same time cannot delete the profile under an attach (it waits, or
            the attach sees the profile gone). SQLite serialises writers anyway.
    """
    query = select(profiles.c.id).where(profiles.c.business_id == business_id, profiles.c.id == profile_id)
    if lock:
        query = query.with_for_update(read=True, key_share=True)
    return conn.execute(query).first() is not None


def unverified_of(conn: Connection, business_id: int, profile_id: str) -> Unverified:
    """The profile's unverified data (empty when the profile does not exist)."""
    row = conn.execute(
        select(
            profiles.c.unverified_email,
            profiles.c.unverified_phone,
            profiles.c.unverified_name,
            profiles.c.traits,
        ).where(profiles.c.business_id == business_id, profiles.c.id == profile_id)
    ).first()
    if row is None:
        return Unverified(None, None, None, {})
    return Unverified(row[0], row[1], row[2], codec.loads(row[3]) or {})


def page_profiles(
    conn: Connection,
    business_id: int,
    page: PageRequest,
    *,
    email: str | None = None,
    phone: str | None = None,
    reference: str | None = None,
) -> Page[Profile]:
    """One page of the business's profiles, newest first, filtered (AND) on trusted fields."""
    filters: list[ColumnElement[bool]] = []
    if email is not None:
        filters.append(profiles.c.email == email)
    if phone is not None:
        filters.append(profiles.c.phone == phone)
    if reference is not None:
        filters.append(profiles.c.reference == reference)
    rows = page_by_seq(conn, profiles, business_id, page, *filters)
    return Page(items=with_identities(conn, business_id, rows.items), has_more=rows.has_more)


class ProfileStorage:
    """`hellotext.core.profiles.ProfileStore` over one connection (one transaction) and one business."""

    def __init__(self, conn: Connection, business_id: int) -> None:
        self.conn = conn
        self.business_id = business_id

    def find(self, column: str, value: str) -> Profile | None:
        """The profile owning a trusted value."""
        return find_profile(self.conn, self.business_id, column, value)

    def get(self, profile_id: str) -> Profile | None:
        """The profile, or ``None``."""
        return get_profile(self.conn, self.business_id, profile_id)

    def insert(self, values: dict[str, Any], now: float) -> str | None:
        """Create; ``None`` when a unique value was taken meanwhile."""
        return try_insert_profile(self.conn, self.business_id, now, values)

    def update(self, profile_id: str, changes: dict[str, Any], now: float) -> bool:
        """Update; false when a unique value was taken meanwhile."""
        return try_update_profile(self.conn, self.business_id, profile_id, changes, now)

    def session_owner(self, session_id: str) -> str | None:
        """The session's profile, or ``None``."""
        return sessions_store.session_owner(self.conn, self.business_id, session_id)

    def session_json(self, session_id: str) -> dict[str, Any] | None:
        """The session object, or ``None``."""
        session = sessions_store.get_session(self.conn, self.business_id, session_id)
        return None if session is None else session.as_json()

    def see_session(self, session_id: str, now: float) -> None:
        """Create the session if new; an attach does not count as a sighting for ``last_seen_at``."""
        sessions_store.see_session(self.conn, self.business_id, session_id, now, touch=False)

    def attach_session(
        self, session_id: str, profile_id: str, via: str, now: float
    ) -> tuple[str | None, bool]:
        """Conditional attach; ``(owner after, won)``."""
        return sessions_store.attach_or_owner(self.conn, self.business_id, session_id, profile_id, via, now)
