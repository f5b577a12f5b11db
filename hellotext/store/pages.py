"""Keyset pagination over tables ordered by `seq` (spec http-api §1.4)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, select

from hellotext.core.pages import Page, PageRequest
from hellotext.errors import NotFound, Problem


def cursor_seq(conn: Connection, table: Table, business_id: int, page: PageRequest) -> int | None:
    """The `seq` of the page's cursor item; ``None`` without a cursor.

    Raises:
        NotFound: the cursor is not an item of this kind in the business (parameter: the cursor's name).
    """
    cursor = page.cursor
    if cursor is None:
        return None
    seq: int | None = conn.execute(
        select(table.c.seq).where(table.c.business_id == business_id, table.c.id == cursor)
    ).scalar()
    if seq is None:
        raise NotFound(Problem("not_found", page.cursor_name, f"no item with id {cursor}"))
    return seq


def page_by_seq(
    conn: Connection,
    table: Table,
    business_id: int,
    page: PageRequest,
    *filters: ColumnElement[bool],
) -> Page[Any]:
    """Rows of `table` in the business, newest first, one page in the direction of the cursor."""
    seq = cursor_seq(conn, table, business_id, page)
    query = select(table).where(table.c.business_id == business_id, *filters)
    if page.ending_before is not None and seq is not None:
        # The `limit` items closest to the cursor on the newer side, shown newest first.
        rows = list(
            conn.execute(query.where(table.c.seq > seq).order_by(table.c.seq.asc()).limit(page.limit + 1))
        )
        has_more = len(rows) > page.limit
        return Page(items=list(reversed(rows[: page.limit])), has_more=has_more)
    if seq is not None:
        query = query.where(table.c.seq < seq)
    rows = list(conn.execute(query.order_by(table.c.seq.desc()).limit(page.limit + 1)))
    return Page(items=rows[: page.limit], has_more=len(rows) > page.limit)


def list_body(items: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """The list envelope: ``{"type": "list", "data": [...], "has_more": ...}``."""
    return {"type": "list", "data": items, "has_more": has_more}
