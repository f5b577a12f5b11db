"""Events in storage: the API's event object (reading) and the ingest unit of work (writing).

Attribution is stored as decided at write time (spec §6.4, I9): `profile_id` holds the explicit profile or
the identity's profile; it is NULL when the event is attributed by its session or is anonymous. The
effective profile (§6.5) is then the session's owner, joined at read time: a session never moves (I3), so
this equals the owner at write time, and attaching later adopts earlier anonymous events without
rewriting them (I4).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg

from hellotext.core.events import EventInput, ObjectRef, check_declared, check_object_type
from hellotext.core.ids import new_id
from hellotext.errors import IdentityConflict, NotFound, Problem, ProblemError
from hellotext.store import codec
from hellotext.store.actions import DeclaredActions
from hellotext.store.identities import resolve_identity
from hellotext.store.objects import object_json, object_types, objects_by_id
from hellotext.store.profiles import profile_exists
from hellotext.store.schema import events, identities, objects, profiles, sessions
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


class DriverStatement:
    """A Core statement compiled once per dialect to the driver's SQL, run on the DBAPI cursor.

    The ingest path runs a handful of statements per event; SQLAlchemy's per-execution work (context,
    parameter processing, result setup) costs several times what SQLite spends inserting the row. The
    statements stay defined in Core (one schema, both dialects); only their execution skips the layer.
    Parameters are positional on both drivers, plain values (str, int, float, None), given as a mapping
    or, cheaper, as a sequence in `order`. The cursor's `rowcount` is the driver's own, which is reliable
    for INSERT on both drivers (SQLAlchemy reads it as -1 on psycopg).

    Args:
        build: makes the statement from a dialect module (`sqlalchemy.dialects.sqlite` or `.postgresql`),
            for constructs such as ``insert(...).on_conflict_do_nothing`` that differ per dialect.
        keys: for an INSERT, the columns its parameters provide, in table order (checked).

    Attributes:
        order: the parameter names in positional order (the same on both dialects).
    """

    def __init__(self, build: Callable[[Any], Any], keys: Sequence[str] | None = None) -> None:
        self._sql: dict[str, str] = {}
        orders: set[tuple[str, ...]] = set()
        pg_dialect = pg_psycopg.dialect(paramstyle="format")  # type: ignore[no-untyped-call]
        targets = (("sqlite", sqlite, sqlite.dialect()), ("postgresql", postgresql, pg_dialect))
        for name, module, dialect in targets:
            compiled = build(module).compile(dialect=dialect, column_keys=list(keys) if keys else None)
            self._sql[name] = str(compiled)
            orders.add(tuple(compiled.positiontup or ()))
        (self.order,) = orders  # one positional order for both dialects
        if keys is not None and self.order != tuple(keys):
            raise ValueError(f"keys must follow the table's column order: {self.order}")

    def _params(self, values: Mapping[str, Any] | Sequence[Any]) -> Sequence[Any]:
        if isinstance(values, Mapping):
            return [values[key] for key in self.order]
        return values

    def execute(self, cursor: Any, dialect: str, values: Mapping[str, Any] | Sequence[Any]) -> Any:
        """Execute once; returns the cursor (fetch from it, or read its `rowcount`)."""
        cursor.execute(self._sql[dialect], self._params(values))
        return cursor

    def executemany(
        self, cursor: Any, dialect: str, rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]]
    ) -> int:
        """Execute for every row (one driver call); returns the number of rows changed."""
        if rows and isinstance(rows[0], Mapping):
            rows = [[row[key] for key in self.order] for row in rows]  # type: ignore[call-overload]
        cursor.executemany(self._sql[dialect], rows)
        count: int = cursor.rowcount
        return count


# Every column but `seq`, in table order: what an event insert provides (also used by store/links.py).
EVENT_KEYS = tuple(column.name for column in events.columns if column.name != "seq")
_OBJECT_KEYS = ("business_id", "id", "object_type", "source", "reference", "data", "created_at")
_NATURAL_WHERE = objects.c.source.isnot(None) & objects.c.reference.isnot(None)


def _see_sessions(dialect: Any) -> Any:
    stmt = dialect.insert(sessions).inline()
    # First sighting creates; later ones bump last_seen_at; UTM is first touch (coalesce keeps it).
    return stmt.on_conflict_do_update(
        index_elements=["business_id", "id"],
        set_={
            "last_seen_at": stmt.excluded.last_seen_at,
            "utm": func.coalesce(sessions.c.utm, stmt.excluded.utm),
        },
    )


_SEE_SESSIONS = DriverStatement(_see_sessions, ("business_id", "id", "created_at", "last_seen_at", "utm"))
# Conflict-safe on the idempotency key: a concurrent repeat that committed first makes rowcount fall short.
_INSERT_EVENTS = DriverStatement(
    lambda d: (
        d.insert(events)
        .inline()
        .on_conflict_do_nothing(
            index_elements=["business_id", "client_id"], index_where=events.c.client_id.isnot(None)
        )
    ),
    EVENT_KEYS,
)
_KEY_EXISTS = DriverStatement(
    lambda d: select(events.c.seq).where(
        events.c.business_id == bindparam("business_id"),
        events.c.client_id.isnot(None),
        events.c.client_id == bindparam("client_id"),
    )
)
_IDENTITY = DriverStatement(
    lambda d: select(identities.c.profile_id).where(
        identities.c.business_id == bindparam("business_id"),
        identities.c.source == bindparam("source"),
        identities.c.user_id == bindparam("user_id"),
    )
)
_OBJECT_BY_KEY = DriverStatement(
    lambda d: select(objects.c.id).where(
        objects.c.business_id == bindparam("business_id"),
        objects.c.object_type == bindparam("object_type"),
        objects.c.source == bindparam("source"),
        objects.c.reference == bindparam("reference"),
    )
)
_INSERT_OBJECT = DriverStatement(lambda d: d.insert(objects).inline(), _OBJECT_KEYS)
_INSERT_SHARED_OBJECT = DriverStatement(
    lambda d: (
        d.insert(objects)
        .inline()
        .on_conflict_do_nothing(
            index_elements=["business_id", "object_type", "source", "reference"], index_where=_NATURAL_WHERE
        )
    ),
    _OBJECT_KEYS,
)
_EXISTING_KEYS = select(events.c.client_id).where(
    events.c.business_id == bindparam("business_id"),
    events.c.client_id.isnot(None),
    events.c.client_id.in_(bindparam("keys", expanding=True)),
)
_EXISTING_PROFILES = select(profiles.c.id).where(
    profiles.c.business_id == bindparam("business_id"),
    profiles.c.id.in_(bindparam("ids", expanding=True)),
)


class DuplicateKeyRace(ProblemError):
    """An event's idempotency key was committed by a concurrent request after this unit checked it.

    Raised from the insert so the unit is rolled back (nothing it wrote survives); running the unit again
    finds the key and writes nothing, which is the answer the spec wants for a repeat. It is a
    `ProblemError` (503, "try again") so that the writer treats it as an expected refusal, not a fault,
    and so that, should it ever escape the retries, the client is told to retry.
    """

    status = 503

    def __init__(self) -> None:
        super().__init__(Problem("server_error", None, "a concurrent request stored this event; try again"))


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
                raise NotFound(Problem("not_found", "profile", "no profile with this id"))
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


def _stored_keys(conn: Connection, cursor: Any, business_id: int, keys: set[str]) -> set[str]:
    if len(keys) == 1:
        (key,) = keys
        row = _KEY_EXISTS.execute(cursor, conn.dialect.name, {"business_id": business_id, "client_id": key})
        return {key} if row.fetchone() is not None else set()
    return _existing(conn, _EXISTING_KEYS, business_id, "keys", keys)


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
    cursor = conn.connection.cursor()
    try:
        return _ingest(conn, cursor, business_id, items, via, received_at, actions)
    finally:
        cursor.close()


def _ingest(
    conn: Connection,
    cursor: Any,
    business_id: int,
    items: Sequence[EventInput],
    via: str,
    received_at: float,
    actions: DeclaredActions,
) -> IngestResult:
    dialect = conn.dialect.name
    outcomes = _lookups(conn, business_id, items, actions)
    keys = {
        item.client_id
        for item, outcome in zip(items, outcomes, strict=True)
        if outcome is None and item.client_id
    }
    seen_keys = _stored_keys(conn, cursor, business_id, keys) if keys else set()
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

    sightings: dict[str, dict[str, Any] | None] = {}
    for item in accepted:
        if item.session is not None and sightings.get(item.session) is None:
            sightings[item.session] = item.utm  # the first event that carries UTM values sets them
    if sightings:
        # In _SEE_SESSIONS.order: business_id, id, created_at, last_seen_at, utm.
        session_rows = [
            (business_id, session_id, received_at, received_at, codec.dumps_or_none(utm))
            for session_id, utm in sightings.items()
        ]
        if len(session_rows) == 1:
            _SEE_SESSIONS.execute(cursor, dialect, session_rows[0])
        else:
            _SEE_SESSIONS.executemany(cursor, dialect, session_rows)

    for item in accepted:
        if item.profile is not None and item.session is not None:
            winner = attach_session(conn, business_id, item.session, item.profile, "api", received_at)
            if winner != item.profile:
                raise _conflict()  # a concurrent attach won after our check: roll back, write nothing
            if owners.get(item.session) is None:
                owners[item.session] = item.profile
                result.attached += 1

    writer = _Rows(conn, cursor, business_id, received_at)
    rows = [writer.event_row(item, via) for item in accepted]
    if len(rows) == 1:
        stored = _INSERT_EVENTS.execute(cursor, dialect, rows[0]).rowcount
    else:
        stored = _INSERT_EVENTS.executemany(cursor, dialect, rows)
    if stored != len(rows):
        raise DuplicateKeyRace()
    result.stored = len(rows)
    return result


class _Rows:
    """Builds event rows, resolving identities and objects once per distinct value within a unit."""

    def __init__(self, conn: Connection, cursor: Any, business_id: int, now: float) -> None:
        self.conn = conn
        self.cursor = cursor
        self.dialect = conn.dialect.name
        self.business_id = business_id
        self.now = now
        self.identities: dict[tuple[str, str], str] = {}
        self.objects: dict[tuple[str, str, str], str] = {}

    def profile(self, identity: tuple[str, str]) -> str:
        """The identity's profile; an unknown identity is created with a new empty profile (§6.2)."""
        profile_id = self.identities.get(identity)
        if profile_id is None:
            source, user_id = identity
            key = {"business_id": self.business_id, "source": source, "user_id": user_id}
            row = _IDENTITY.execute(self.cursor, self.dialect, key).fetchone()
            found = None if row is None else str(row[0])
            if (
                found is not None
                and self.dialect == "postgresql"
                and not profile_exists(self.conn, self.business_id, found, lock=True)
            ):
                # An erasure of that profile committed while we waited for the key-share lock (which
                # makes an erasure running now wait for this event instead): the identity is gone with it.
                found = None
            if found is not None:
                profile_id = found
            else:
                profile_id, _ = resolve_identity(self.conn, self.business_id, source, user_id, self.now)
            self.identities[identity] = profile_id
        return profile_id

    def object_id(self, obj: ObjectRef) -> str:
        """The object an event names (§7.2 rule 6): the given id, or found or created from parameters."""
        if obj.object_id is not None:
            return obj.object_id
        assert obj.object_type is not None and obj.data is not None
        row = {
            "business_id": self.business_id,
            "id": new_id(),
            "object_type": obj.object_type,
            "source": obj.source,
            "reference": obj.reference,
            "data": codec.dumps(obj.data),
            "created_at": self.now,
        }
        if obj.source is None or obj.reference is None:
            _INSERT_OBJECT.execute(self.cursor, self.dialect, row)
            return str(row["id"])
        natural = (obj.object_type, obj.source, obj.reference)
        known = self.objects.get(natural)
        if known is not None:
            return known
        key = {k: row[k] for k in ("business_id", "object_type", "source", "reference")}
        found = _OBJECT_BY_KEY.execute(self.cursor, self.dialect, key).fetchone()
        if found is None and _INSERT_SHARED_OBJECT.execute(self.cursor, self.dialect, row).rowcount == 1:
            object_id = str(row["id"])
        else:
            if found is None:
                # Lost a race with a concurrent creator: its row is committed (or ours to see) by now.
                found = _OBJECT_BY_KEY.execute(self.cursor, self.dialect, key).fetchone()
                assert found is not None
            object_id = str(found[0])
        self.objects[natural] = object_id
        return object_id

    def event_row(self, item: EventInput, via: str) -> tuple[Any, ...]:
        """The `events` row of an accepted event, in `EVENT_KEYS` (table) order."""
        profile_id = item.profile
        if profile_id is None and item.identity is not None:
            profile_id = self.profile(item.identity)
        return (
            self.business_id,
            new_id(),
            item.action,
            profile_id,
            item.session,
            item.tracked_at,
            self.now,
            item.amount,
            item.currency,
            item.url,
            codec.dumps_or_none(item.page),
            codec.dumps_or_none(item.utm),
            codec.dumps_or_none(item.metadata),
            None if item.obj is None else self.object_id(item.obj),
            item.client_id,
            via,
            codec.dumps(item.raw),
        )
