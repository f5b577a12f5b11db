"""The API's resource objects as typed dicts (spec http-api §5.4, §6.1, §7.2, §8.3, §9.1, §9.5).

The client returns the decoded JSON unchanged; these types tell an editor and mypy what is in it.
Timestamps are integer Unix seconds; optional values are ``None``.
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = ["Action", "Event", "Identity", "Link", "Object", "Page", "Profile", "Session", "Unverified"]


class Session(TypedDict):
    """A session (§5.4)."""

    id: str
    type: str
    profile: str | None
    created_at: int
    last_seen_at: int
    attached_at: int | None
    attached_via: str | None
    utm_params: dict[str, Any] | None


class Identity(TypedDict):
    """One (source, user_id) pair of a profile."""

    source: str | None
    user_id: str


class Unverified(TypedDict):
    """Values a browser identification reported, never trusted."""

    email: str | None
    phone: str | None
    name: str | None


class Profile(TypedDict):
    """A profile (§6.1)."""

    id: str
    type: str
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    reference: str | None
    properties: dict[str, Any]
    identities: list[Identity]
    unverified: Unverified
    traits: dict[str, Any]
    created_at: int
    updated_at: int


class Object(TypedDict):
    """The object an event is about (§7.2)."""

    id: str
    type: str
    object_type: str
    source: str | None
    reference: str | None
    data: dict[str, Any]
    created_at: int


class Page(TypedDict, total=False):
    """The page an event happened on."""

    url: str | None
    title: str | None
    path: str | None


class Event(TypedDict):
    """A stored event, as a timeline lists it (§8.3)."""

    id: str
    type: str
    action: str
    profile: str | None
    session: str | None
    tracked_at: int
    received_at: int
    amount: float | None
    currency: str | None
    url: str | None
    page: Page | None
    utm_params: dict[str, Any] | None
    metadata: dict[str, Any] | None
    object: Object | None
    client_id: str | None
    via: str
    raw: dict[str, Any]


class Link(TypedDict):
    """A short link (§9.5)."""

    id: str
    type: str
    code: str
    url: str
    destination: str
    profile: str | None
    campaign: str | None
    utm: dict[str, str] | None
    clicks: int
    created_at: int


class Action(TypedDict):
    """A custom action (§9.1)."""

    id: str
    type: str
    name: str
    description: str | None
    created_at: int
