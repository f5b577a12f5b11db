"""Helpers shared by the ingest tests: what the ingest path wrote, read with fresh connections."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from hellotext.store.database import Database
from hellotext.store.events import event_objects
from hellotext.store.identities import identity_profile as store_identity_profile
from hellotext.store.schema import events, identities, objects, profiles, sessions
from tests.conftest import Tenant

PAGE = {"action": "page.viewed", "url": "https://shop.example.com/"}
# Every table the ingest path writes.
TABLES = {
    "events": events,
    "sessions": sessions,
    "objects": objects,
    "identities": identities,
    "profiles": profiles,
}


def counts(database: Database, tenant: Tenant) -> dict[str, int]:
    """Rows of every table the ingest path writes, for the tenant."""

    def read(conn: Connection) -> dict[str, int]:
        return {
            name: int(conn.execute(select(func.count()).where(table.c.business_id == tenant.pk)).scalar_one())
            for name, table in TABLES.items()
        }

    return database.read_sync(read)


def rendered(database: Database, tenant: Tenant) -> list[dict[str, Any]]:
    """The tenant's events as the API renders them, oldest first."""

    def read(conn: Connection) -> list[dict[str, Any]]:
        rows = list(
            conn.execute(select(events).where(events.c.business_id == tenant.pk).order_by(events.c.seq))
        )
        return event_objects(conn, tenant.pk, rows)

    return database.read_sync(read)


def identity_profile(database: Database, tenant: Tenant, source: str, user_id: str) -> str | None:
    """The profile an identity points at, read with a fresh connection."""
    return database.read_sync(lambda conn: store_identity_profile(conn, tenant.pk, source, user_id))
