"""Pagination parameters of every list endpoint (spec http-api §1.4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from hellotext.errors import Problem, ValidationFailed

T = TypeVar("T")
DEFAULT_LIMIT = 25
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class PageRequest:
    """`limit` items after (`starting_after`, older) or before (`ending_before`, newer) a cursor id."""

    limit: int = DEFAULT_LIMIT
    starting_after: str | None = None
    ending_before: str | None = None

    @property
    def cursor(self) -> str | None:
        """The cursor id, whichever direction."""
        return self.starting_after or self.ending_before

    @property
    def cursor_name(self) -> str:
        """The query parameter that held the cursor."""
        return "ending_before" if self.ending_before is not None else "starting_after"


def parse_page(query: Mapping[str, str]) -> PageRequest:
    """Read ``limit``, ``starting_after`` and ``ending_before`` from a query string.

    Raises:
        ValidationFailed: `limit` not an integer in 1-100; both cursors given.
    """
    raw = query.get("limit")
    limit = DEFAULT_LIMIT
    if raw is not None:
        text = raw.strip()
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            raise ValidationFailed(Problem("invalid", "limit", "limit must be an integer from 1 to 100"))
        limit = int(text)
    after = query.get("starting_after") or None
    before = query.get("ending_before") or None
    if after is not None and before is not None:
        raise ValidationFailed(
            Problem(
                "ambiguous_parameter",
                "ending_before",
                "starting_after and ending_before cannot be used together",
            )
        )
    return PageRequest(limit=limit, starting_after=after, ending_before=before)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results, newest first."""

    items: list[T]
    has_more: bool
