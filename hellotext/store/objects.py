"""Objects events are about (spec http-api §7.2): lookups and the representation.

Find-or-create lives with the ingest unit (`hellotext.store.events`), on its fast path.

Objects are never deleted (erasure removes events, sessions, identities and the profile, not objects), so an
object id once seen stays valid.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, select

from hellotext.store import codec
from hellotext.store.schema import objects

# Statements are built once: building a Core statement costs more than executing a cached one.
_BY_IDS = select(objects).where(
    objects.c.business_id == bindparam("business_id"), objects.c.id.in_(bindparam("ids", expanding=True))
)
_TYPES_BY_IDS = select(objects.c.id, objects.c.object_type).where(
    objects.c.business_id == bindparam("business_id"), objects.c.id.in_(bindparam("ids", expanding=True))
)
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
