"""Browser identification (spec sessions-and-identity I5, I8; http-api §6.2, §6.3, §8.5).

Plain rules: reading an identification body, merging its unverified data into a profile, and reading the
outcome of the attach. Storage is reached through `IdentityStore`, so this module holds no SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from hellotext.core.values import (
    empty,
    invalid,
    is_placeholder_user_id,
    missing,
    normalize_source,
    normalize_user_id,
    optional_session,
)

#: Keys an identification reads itself; every other key is a trait.
IDENTIFICATION_KEYS = frozenset({"session", "user_id", "source", "email", "phone", "name"})
EMAIL_MAX = 254
PHONE_MAX = 32
NAME_MAX = 256

Outcome = Literal["attached", "already_attached", "conflict", "no_session"]


@dataclass(frozen=True, slots=True)
class Identification:
    """A validated identification request.

    Attributes:
        session: the session to attach, or ``None``.
        source: normalised identity source (``""`` for none).
        user_id: normalised external id.
        email, phone, name: unverified values, trimmed (email lowercased); ``None`` when absent or blank.
        traits: every other key of the body, as sent.
    """

    session: str | None
    source: str
    user_id: str
    email: str | None = None
    phone: str | None = None
    name: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Unverified:
    """A profile's unverified data (§6.1): never unique, never matched, never copied into trusted fields."""

    email: str | None
    phone: str | None
    name: str | None
    traits: dict[str, Any]


def _unverified_text(body: dict[str, Any], key: str, max_len: int, *, lower: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(key, f"{key} must be a string")
    text = value.strip()
    if lower:
        # Before the length check: lowercasing can lengthen a string ("İ" becomes two characters).
        text = text.lower()
    if len(text) > max_len:
        raise invalid(key, f"{key} must be at most {max_len} characters")
    return text or None


def parse_identification(body: dict[str, Any]) -> Identification:
    """Validate an identification body (§8.5).

    Raises:
        ValidationFailed: `user_id` absent (``parameter_missing``), blank (``parameter_invalid_empty``),
            of another type, too long or a placeholder (``invalid``); `session`, `source`, `email`,
            `phone`, `name` of the wrong type or too long (``invalid``).
    """
    session = optional_session(body.get("session"))
    raw_user_id = body.get("user_id")
    if raw_user_id is None:
        raise missing("user_id", "user_id is required")
    user_id = normalize_user_id(raw_user_id)
    if user_id is None:
        raise empty("user_id", "user_id must not be blank")
    if is_placeholder_user_id(user_id):
        raise invalid("user_id", f"user_id {user_id!r} is a placeholder, not an id")
    source = normalize_source(body.get("source"))
    email = _unverified_text(body, "email", EMAIL_MAX, lower=True)
    phone = _unverified_text(body, "phone", PHONE_MAX)
    name = _unverified_text(body, "name", NAME_MAX)
    traits = {k: v for k, v in body.items() if k not in IDENTIFICATION_KEYS}
    return Identification(
        session=session, source=source, user_id=user_id, email=email, phone=phone, name=name, traits=traits
    )


def merge_unverified(current: Unverified, ident: Identification) -> dict[str, Any]:
    """The changes an identification makes to its profile's unverified data (§6.3 step 1).

    Non-blank supplied values replace the stored ones; traits merge shallowly (supplied keys replace).

    Returns:
        Column changes (``unverified_email``, ``unverified_phone``, ``unverified_name``, ``traits``);
        empty when the identification changes nothing, so that repeating it writes nothing.
    """
    changes: dict[str, Any] = {}
    for column, new, old in (
        ("unverified_email", ident.email, current.email),
        ("unverified_phone", ident.phone, current.phone),
        ("unverified_name", ident.name, current.name),
    ):
        if new is not None and new != old:
            changes[column] = new
    if ident.traits:
        merged = {**current.traits, **ident.traits}
        if merged != current.traits:
            changes["traits"] = merged
    return changes


@dataclass(frozen=True, slots=True)
class IdentificationResult:
    """What an identification did.

    Attributes:
        profile_id: the identity's profile.
        profile_created: whether this call created the identity and its profile.
        session: the session named, or ``None``.
        outcome: ``attached`` (by this call), ``already_attached`` (to this profile, earlier),
            ``conflict`` (attached to another profile; left there) or ``no_session``.
    """

    profile_id: str
    profile_created: bool
    session: str | None
    outcome: Outcome

    @property
    def session_attached(self) -> bool:
        """True iff the session is now attached to the identity's profile (§6.3 step 3)."""
        return self.outcome in ("attached", "already_attached")

    @property
    def session_conflict(self) -> bool:
        """True iff the session is attached to another profile."""
        return self.outcome == "conflict"

    def as_json(self) -> dict[str, Any]:
        """The body of the ``200`` answer (§8.5)."""
        return {
            "status": "identified",
            "session": self.session,
            "session_attached": self.session_attached,
            "session_conflict": self.session_conflict,
        }


def attach_outcome(profile_id: str, owner: str | None, won: bool) -> Outcome:
    """Read the result of a conditional attach.

    Args:
        profile_id: the profile the call tried to attach the session to.
        owner: the session's owner after the attempt.
        won: whether this attempt set the owner.
    """
    if owner == profile_id:
        return "attached" if won else "already_attached"
    return "conflict"


class IdentityStore(Protocol):
    """The storage an identification needs, bound to one business and one transaction."""

    def resolve_identity(self, source: str, user_id: str, now: float) -> tuple[str, bool]:
        """``(profile_id, created)`` for the identity, creating it with an empty profile if unknown."""

    def unverified(self, profile_id: str) -> Unverified:
        """The profile's unverified data."""

    def update_profile(self, profile_id: str, changes: dict[str, Any], now: float) -> None:
        """Write column changes to the profile (and bump ``updated_at``)."""

    def see_session(self, session_id: str, now: float) -> None:
        """Create the session if new and bump its ``last_seen_at``."""

    def attach_session(
        self, session_id: str, profile_id: str, via: str, now: float
    ) -> tuple[str | None, bool]:
        """Attach if unattached (one conditional update); ``(owner after, whether this call set it)``."""


def identify(store: IdentityStore, ident: Identification, now: float) -> IdentificationResult:
    """Run an identification (§6.3) inside one transaction.

    Finds or creates the identity's profile (never by email or phone, I5), records the unverified data,
    and attaches the session when it is free; a session owned by another profile stays there (I8).
    """
    profile_id, created = store.resolve_identity(ident.source, ident.user_id, now)
    changes = merge_unverified(store.unverified(profile_id), ident)
    if changes:
        store.update_profile(profile_id, changes, now)
    if ident.session is None:
        return IdentificationResult(profile_id, created, None, "no_session")
    store.see_session(ident.session, now)
    owner, won = store.attach_session(ident.session, profile_id, "identify", now)
    return IdentificationResult(profile_id, created, ident.session, attach_outcome(profile_id, owner, won))
