"""Custom actions in storage (spec http-api §9.1) and a cache of declared names for the ingest path."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from hellotext.core.actions import ActionDeclaration
from hellotext.core.ids import new_id
from hellotext.core.pages import Page, PageRequest
from hellotext.errors import Problem, ValidationFailed
from hellotext.store.pages import page_by_seq
from hellotext.store.schema import actions

_DECLARED = select(actions.c.name).where(
    actions.c.business_id == bindparam("business_id"),
    actions.c.name.in_(bindparam("names", expanding=True)),
)
# RETURNING tells whether the row went in (SQLAlchemy reads an INSERT's rowcount as -1 on psycopg).
_INSERT = {
    "sqlite": sqlite.insert(actions)
    .on_conflict_do_nothing(index_elements=["business_id", "name"])
    .returning(actions.c.seq),
    "postgresql": postgresql.insert(actions)
    .on_conflict_do_nothing(index_elements=["business_id", "name"])
    .returning(actions.c.seq),
}


def action_json(row: Any) -> dict[str, Any]:
    """The action object (§9.1) of a row of `actions`."""
    return {
        "id": row.id,
        "type": "action",
        "name": row.name,
        "description": row.description,
        "created_at": int(row.created_at),
    }


def declare_action(
    conn: Connection, business_id: int, declaration: ActionDeclaration, now: float
) -> dict[str, Any]:
    """Insert a custom action; race-safe on the (business, name) unique key.

    Returns:
        The action object.

    Raises:
        ValidationFailed: the name is already declared (``parameter_not_unique``, parameter ``name``).
    """
    values = {
        "business_id": business_id,
        "id": new_id(),
        "name": declaration.name,
        "description": declaration.description,
        "created_at": now,
    }
    inserted = conn.execute(_INSERT[conn.dialect.name], values).first()
    if inserted is None:
        raise ValidationFailed(
            Problem("parameter_not_unique", "name", f"an action named {declaration.name} is already declared")
        )
    return {
        "id": values["id"],
        "type": "action",
        "name": declaration.name,
        "description": declaration.description,
        "created_at": int(now),
    }


def list_actions(conn: Connection, business_id: int, page: PageRequest) -> Page[dict[str, Any]]:
    """The business's custom actions, newest first, one page (§1.4)."""
    rows = page_by_seq(conn, actions, business_id, page)
    return Page(items=[action_json(row) for row in rows.items], has_more=rows.has_more)


def declared_names(conn: Connection, business_id: int, names: Iterable[str]) -> set[str]:
    """Which of `names` the business has declared."""
    wanted = sorted(set(names))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        rows = conn.execute(_DECLARED, {"business_id": business_id, "names": wanted[start : start + 500]})
        found.update(row.name for row in rows)
    return found


class DeclaredActions:
    """Positive, in-process cache of declared custom action names, per business.

    A declaration can never be deleted, so a name once seen declared stays declared: positive answers
    are cached for good. Negative answers are not cached (another process may declare the name at any
    moment); they are looked up every time. Safe to use from the event loop and writer threads.

    Args:
        max_names: when the cache holds more names than this, it starts over (a memory bound, not a TTL).
    """

    def __init__(self, max_names: int = 100_000) -> None:
        self._names: dict[int, set[str]] = {}
        self._size = 0
        self._max = max_names
        self._lock = threading.Lock()

    def known(self, business_id: int, name: str) -> bool:
        """Whether `name` is known to be declared by the business (``False`` means "look it up")."""
        names = self._names.get(business_id)
        return names is not None and name in names

    def add(self, business_id: int, names: Iterable[str]) -> None:
        """Remember names seen declared."""
        with self._lock:
            if self._size > self._max:
                self._names = {}
                self._size = 0
            known = self._names.setdefault(business_id, set())
            before = len(known)
            known.update(names)
            self._size += len(known) - before

    def resolve(self, conn: Connection, business_id: int, names: Iterable[str]) -> set[str]:
        """Which of `names` are declared: cached ones, plus one lookup for the rest (then cached).

        Args:
            conn: a connection; use the unit's own, so the answer is consistent with its transaction.
        """
        declared: set[str] = set()
        unknown: set[str] = set()
        for name in names:
            (declared if self.known(business_id, name) else unknown).add(name)
        if unknown:
            found = declared_names(conn, business_id, unknown)
            if found:
                self.add(business_id, found)
                declared |= found
        return declared
