"""Events in storage: the API's event object (reading) and the ingest unit of work (writing).

Attribution is stored as decided at write time (spec §6.4, I9): `profile_id` holds the explicit profile or
the identity's profile; it is NULL when the event is attributed by its session or is anonymous. The
effective profile (§6.5) is then the session's owner, joined at read time: a session never moves (I3), so
this equals the owner at write time, and attaching later adopts earlier anonymous events without
rewriting them (I4).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite

from hellotext.core.events import EventInput, check_declared, check_object_type
from hellotext.core.ids import new_id
from hellotext.errors import HellotextError, IdentityConflict, NotFound, Problem, ProblemError
from hellotext.store import codec
from hellotext.store.actions import DeclaredActions
from hellotext.store.identities import resolve_identity
from hellotext.store.objects import find_or_create_object, object_json, object_types, objects_by_id
from hellotext.store.schema import events, profiles, sessions
from hellotext.store.sessions import attach_session

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


# --- Ingest -------------------------------------------------------------------------------------------


class DuplicateKeyRace(HellotextError):
    """An event's idempotency key was committed by a concurrent request after this unit checked it.

    Raised from the insert so the unit is rolled back (nothing it wrote survives); running the unit again
    finds the key and writes nothing, which is the answer the spec wants for a repeat.
    """


@dataclass(slots=True)
class IngestResult:
    """What an ingest unit did.

    Attributes:
        outcomes: per event, in order: ``None`` when received (stored, or a repeat of a stored key), or
            the `ProblemError` the event is answered with (nothing of it was written).
        stored: events inserted.
        attached: sessions newly attached (``POST /attribution/events``).
    """

    outcomes: list[ProblemError | None]
    stored: int = 0
    attached: int = 0


def _dialect_statements(dialect: Any) -> dict[str, Any]:
    session_insert = dialect.insert(sessions)
    excluded = session_insert.excluded
    return {
        # First sighting creates; later ones bump last_seen_at; UTM is first touch (coalesce keeps it).
        "see_sessions": session_insert.on_conflict_do_update(
            index_elements=["business_id", "id"],
            set_={
                "last_seen_at": excluded.last_seen_at,
                "utm": func.coalesce(sessions.c.utm, excluded.utm),
            },
        ),
        # Conflict-safe on the idempotency key; RETURNING counts the rows that went in (an INSERT's
        # rowcount reads -1 through SQLAlchemy on psycopg).
        "insert_events": dialect.insert(events)
        .on_conflict_do_nothing(
            index_elements=["business_id", "client_id"], index_where=events.c.client_id.isnot(None)
        )
        .returning(events.c.seq),
    }


_STATEMENTS = {"sqlite": _dialect_statements(sqlite), "postgresql": _dialect_statements(postgresql)}
_EXISTING_KEYS = select(events.c.client_id).where(
    events.c.business_id == bindparam("business_id"),
    events.c.client_id.isnot(None),
    events.c.client_id.in_(bindparam("keys", expanding=True)),
)
_EXISTING_PROFILES = select(profiles.c.id).where(
    profiles.c.business_id == bindparam("business_id"),
    profiles.c.id.in_(bindparam("ids", expanding=True)),
)


def _existing(conn: Connection, statement: Any, business_id: int, name: str, values: set[str]) -> set[str]:
    wanted = sorted(values)
    found: set[str] = set()
    for start in range(0, len(wanted), _IN_CHUNK):
        rows = conn.execute(statement, {"business_id": business_id, name: wanted[start : start + _IN_CHUNK]})
        found.update(row[0] for row in rows)
    return found


def _lookups(
    conn: Connection, business_id: int, items: Sequence[EventInput], actions: DeclaredActions
) -> list[ProblemError | None]:
    """§3.3 step 6 for every event: declared action, `object` id and type, explicit profile."""
    custom = {item.action for item in items if item.custom}
    declared = actions.resolve(conn, business_id, custom) if custom else set()
    object_refs = {item.obj.object_id for item in items if item.obj is not None and item.obj.object_id}
    types = object_types(conn, business_id, object_refs) if object_refs else {}
    named = {item.profile for item in items if item.profile is not None}
    known = _existing(conn, _EXISTING_PROFILES, business_id, "ids", named) if named else set()
    outcomes: list[ProblemError | None] = []
    for item in items:
        try:
            check_declared(item, declared.__contains__)
            if item.obj is not None and item.obj.object_id is not None:
                check_object_type(item.obj, types.get(item.obj.object_id))
            if item.profile is not None and item.profile not in known:
                raise NotFound(Problem("not_found", "profile", f"no profile with id {item.profile}"))
        except ProblemError as exc:
            outcomes.append(exc)
        else:
            outcomes.append(None)
    return outcomes


def _conflict() -> IdentityConflict:
    return IdentityConflict(
        Problem("identity_assigned", "session", "the session is already attached to another profile"),
        status=422,
    )


def ingest(
    conn: Connection,
    business_id: int,
    items: Sequence[EventInput],
    *,
    via: str,
    received_at: float,
    actions: DeclaredActions,
) -> IngestResult:
    """The ingest unit of work: store validated events, each attributed alone (§6.4, §8.3, §8.3b, §9.4).

    Run it inside `Database.write`. Per event, in the order of §3.3: lookups (undeclared action, unknown
    `object` or `profile` → 404; object of the wrong type → 422), then the idempotency key (a key already
    stored, or used by an earlier event of `items`, makes the event a repeat: received, and nothing at all
    written for it), then the session conflict of an explicit profile (422 ``identity_assigned``). A
    failing event writes nothing; the others are written together:

    - sessions are sighted (created race-safe, `last_seen_at`, first-touch UTM), once per distinct id;
    - an explicit profile (private endpoint) with a session attaches the session (``attached_via: api``);
    - attribution (I9): the explicit profile; else the identity in `user_parameters` (found or created
      with a new empty profile, the session not attached); else NULL, which reads as the session's owner
      (module docstring) or anonymous;
    - objects are found or created (race-safe on type, source, reference);
    - events are inserted with ``ON CONFLICT DO NOTHING`` on the key.

    Args:
        conn: the unit's connection.
        business_id: the credential's business.
        items: validated events (`hellotext.core.events.parse_event`).
        via: ``"track"`` or ``"attribution"``.
        received_at: receipt time, epoch seconds.
        actions: the cache of declared action names.

    Returns:
        Per-event outcomes and counts.

    Raises:
        DuplicateKeyRace: a concurrent request committed one of the keys after the check; the unit must be
            rolled back and run again.
        IdentityConflict: a concurrent attach won the session after the check (422); the unit must be
            rolled back.
    """
    outcomes = _lookups(conn, business_id, items, actions)
    keys = {
        item.client_id
        for item, outcome in zip(items, outcomes, strict=True)
        if outcome is None and item.client_id
    }
    seen_keys = _existing(conn, _EXISTING_KEYS, business_id, "keys", keys) if keys else set()
    to_attach = {
        item.session
        for item, outcome in zip(items, outcomes, strict=True)
        if outcome is None and item.profile is not None and item.session is not None
    }
    owners = session_owners(conn, business_id, to_attach) if to_attach else {}

    accepted: list[EventInput] = []
    for index, item in enumerate(items):
        if outcomes[index] is not None:
            continue
        if item.client_id is not None and item.client_id in seen_keys:
            continue  # a repeat: received, nothing written
        if item.profile is not None and item.session is not None:
            owner = owners.get(item.session)
            if owner is not None and owner != item.profile:
                outcomes[index] = _conflict()
                continue
        if item.client_id is not None:
            seen_keys.add(item.client_id)
        accepted.append(item)
    result = IngestResult(outcomes=outcomes)
    if not accepted:
        return result

    statements = _STATEMENTS[conn.dialect.name]
    sightings: dict[str, dict[str, Any] | None] = {}
    for item in accepted:
        if item.session is not None and sightings.get(item.session) is None:
            sightings[item.session] = item.utm  # the first event that carries UTM values sets them
    if sightings:
        conn.execute(
            statements["see_sessions"],
            [
                {
                    "business_id": business_id,
                    "id": session_id,
                    "created_at": received_at,
                    "last_seen_at": received_at,
                    "utm": codec.dumps_or_none(utm),
                }
                for session_id, utm in sightings.items()
            ],
        )

    for item in accepted:
        if item.profile is not None and item.session is not None:
            winner = attach_session(conn, business_id, item.session, item.profile, "api", received_at)
            if winner != item.profile:
                raise _conflict()  # a concurrent attach won after our check: roll back, write nothing
            if owners.get(item.session) is None:
                owners[item.session] = item.profile
                result.attached += 1

    identities: dict[tuple[str, str], str] = {}
    shared_objects: dict[tuple[str, str, str], str] = {}
    rows: list[dict[str, Any]] = []
    for item in accepted:
        profile_id = item.profile
        if profile_id is None and item.identity is not None:
            profile_id = identities.get(item.identity)
            if profile_id is None:
                source, user_id = item.identity
                profile_id, _ = resolve_identity(conn, business_id, source, user_id, received_at)
                identities[item.identity] = profile_id
        rows.append(_event_row(conn, business_id, item, profile_id, via, received_at, shared_objects))

    inserted = conn.execute(statements["insert_events"], rows).all()
    if len(inserted) != len(rows):
        raise DuplicateKeyRace("an idempotency key was stored concurrently")
    result.stored = len(rows)
    return result


def _event_row(
    conn: Connection,
    business_id: int,
    item: EventInput,
    profile_id: str | None,
    via: str,
    received_at: float,
    shared_objects: dict[tuple[str, str, str], str],
) -> dict[str, Any]:
    obj = item.obj
    object_id: str | None = None
    if obj is not None:
        if obj.object_id is not None:
            object_id = obj.object_id
        else:
            assert obj.object_type is not None and obj.data is not None
            natural = (
                (obj.object_type, obj.source, obj.reference)
                if obj.source is not None and obj.reference is not None
                else None
            )
            object_id = shared_objects.get(natural) if natural is not None else None
            if object_id is None:
                object_id = find_or_create_object(
                    conn, business_id, obj.object_type, obj.source, obj.reference, obj.data, received_at
                )
                if natural is not None:
                    shared_objects[natural] = object_id
    return {
        "business_id": business_id,
        "id": new_id(),
        "action": item.action,
        "profile_id": profile_id,
        "session_id": item.session,
        "tracked_at": item.tracked_at,
        "received_at": received_at,
        "amount": item.amount,
        "currency": item.currency,
        "url": item.url,
        "page": codec.dumps_or_none(item.page),
        "utm": codec.dumps_or_none(item.utm),
        "metadata": codec.dumps_or_none(item.metadata),
        "object_id": object_id,
        "client_id": item.client_id,
        "via": via,
        "raw": codec.dumps(item.raw),
    }
