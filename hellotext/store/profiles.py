"""Profiles in storage."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert

from hellotext.core.ids import new_id
from hellotext.store import codec
from hellotext.store.schema import profiles


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
