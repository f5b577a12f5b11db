"""Session rules (spec sessions-and-identity S6, http-api §5): first-touch UTM and the session object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hellotext.core.values import invalid

UTM_KEYS = ("source", "medium", "campaign", "term", "content")
UTM_FIELDS = (*UTM_KEYS, "observed_at")


def parse_utm(value: object, parameter: str = "utm_params") -> dict[str, Any] | None:
    """Validate a ``utm_params`` object (§8.2).

    Returns:
        The first-touch value to store (``{source, medium, campaign, term, content, observed_at}``,
        missing keys ``None``) when it carries a non-blank UTM value, else ``None``.

    Raises:
        ValidationFailed: not an object, or a known key that is not a string of at most 256 chars.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid(parameter, f"{parameter} must be an object")
    stored: dict[str, Any] = {}
    for key in UTM_FIELDS:
        item = value.get(key)
        if item is not None and (not isinstance(item, str) or len(item) > 256):
            raise invalid(
                f"{parameter}.{key}", f"{parameter}.{key} must be a string of at most 256 characters"
            )
        stored[key] = item
    if not any(isinstance(stored[k], str) and stored[k].strip() for k in UTM_KEYS):
        return None
    return stored


@dataclass(frozen=True, slots=True)
class Session:
    """A session as stored (ids are per business)."""

    id: str
    profile: str | None
    created_at: float
    last_seen_at: float
    attached_at: float | None
    attached_via: str | None
    utm_params: dict[str, Any] | None

    def as_json(self) -> dict[str, Any]:
        """The API's session object (§5.4)."""
        return {
            "id": self.id,
            "type": "session",
            "profile": self.profile,
            "created_at": int(self.created_at),
            "last_seen_at": int(self.last_seen_at),
            "attached_at": None if self.attached_at is None else int(self.attached_at),
            "attached_via": self.attached_via,
            "utm_params": self.utm_params,
        }
