"""Objects events are about (spec http-api §7.2): lookups, race-safe find-or-create, the representation.

Objects are never deleted (erasure removes events, sessions, identities and the profile, not objects), so an
object id once seen stays valid.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from hellotext.core.ids import new_id
from hellotext.store import codec
from hellotext.store.schema import objects

# Statements are built once: building a Core statement costs more than executing a cached one.
_BY_NATURAL_KEY = select(objects.c.id).where(
    objects.c.business_id == bindparam("business_id"),
    objects.c.object_type == bindparam("object_type"),
    objects.c.source == bindparam("source"),
    objects.c.reference == bindparam("reference"),
)
_BY_IDS = select(objects).where(
    objects.c.business_id == bindparam("business_id"), objects.c.id.in_(bindparam("ids", expanding=True))
)
_TYPES_BY_IDS = select(objects.c.id, objects.c.object_type).where(
    objects.c.business_id == bindparam("business_id"), objects.c.id.in_(bindparam("ids", expanding=True))
)
_NATURAL_WHERE = objects.c.source.isnot(None) & objects.c.reference.isnot(None)
# INSERT ... ON CONFLICT DO NOTHING on the partial natural-key index, per dialect. RETURNING tells whether
# the row went in: SQLAlchemy does not keep an INSERT's rowcount on psycopg (it reads -1).
_INSERT_SHARED = {
    "sqlite": sqlite.insert(objects)
    .on_conflict_do_nothing(
        index_elements=["business_id", "object_type", "source", "reference"], index_where=_NATURAL_WHERE
    )
    .returning(objects.c.seq),
    "postgresql": postgresql.insert(objects)
    .on_conflict_do_nothing(
        index_elements=["business_id", "object_type", "source", "reference"], index_where=_NATURAL_WHERE
    )
    .returning(objects.c.seq),
}
_INSERT_PLAIN = objects.insert()
_IN_CHUNK = 500


def object_json(row: Any) -> dict[str, Any]:
    """The object representation embedded in events (§7.2).

    Args:
        row: a row of the `objects` table.
    """
    return {
        "id": row.id,
        "type": "object",
        "object_type": row.object_type,
        "source": row.source,
        "reference": row.reference,
        "data": codec.loads(row.data),
        "created_at": int(row.created_at),
    }


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def objects_by_id(conn: Connection, business_id: int, ids: Iterable[str]) -> dict[str, Any]:
    """Rows of the business's objects with these ids, by id (unknown ids are absent)."""
    wanted = sorted(set(ids))
    found: dict[str, Any] = {}
    for chunk in _chunks(wanted):
        for row in conn.execute(_BY_IDS, {"business_id": business_id, "ids": chunk}):
            found[row.id] = row
    return found


def object_types(conn: Connection, business_id: int, ids: Iterable[str]) -> dict[str, str]:
    """The `object_type` of each known object id of the business (unknown ids are absent)."""
    wanted = sorted(set(ids))
    found: dict[str, str] = {}
    for chunk in _chunks(wanted):
        for row in conn.execute(_TYPES_BY_IDS, {"business_id": business_id, "ids": chunk}):
            found[row.id] = row.object_type
    return found


def find_or_create_object(
    conn: Connection,
    business_id: int,
    object_type: str,
    source: str | None,
    reference: str | None,
    data: dict[str, Any],
    now: float,
) -> str:
    """The id of the object named by inline parameters (§7.2 rule 6).

    With both `source` and `reference` set (callers pass ``None`` for blank ones), the object with that
    (type, source, reference) in the business is reused unchanged, or created; concurrent creators end up
    with one object (``ON CONFLICT DO NOTHING`` on the natural-key index, then the winner is read).
    Otherwise a new object is created.

    Returns:
        The object id.
    """
    if source is None or reference is None:
        object_id = new_id()
        conn.execute(
            _INSERT_PLAIN,
            {
                "business_id": business_id,
                "id": object_id,
                "object_type": object_type,
                "source": source,
                "reference": reference,
                "data": codec.dumps(data),
                "created_at": now,
            },
        )
        return object_id
    key = {"business_id": business_id, "object_type": object_type, "source": source, "reference": reference}
    existing: str | None = conn.execute(_BY_NATURAL_KEY, key).scalar()
    if existing is not None:
        return existing
    object_id = new_id()
    inserted = conn.execute(
        _INSERT_SHARED[conn.dialect.name],
        {**key, "id": object_id, "data": codec.dumps(data), "created_at": now},
    ).first()
    if inserted is not None:
        return object_id
    # Lost a race with a concurrent creator: its row is committed (or ours to see) by now.
    winner: str | None = conn.execute(_BY_NATURAL_KEY, key).scalar()
    assert winner is not None
    return winner
