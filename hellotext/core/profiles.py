"""Profiles from the private API (spec sessions-and-identity I10; http-api §6.1, §9.3).

Plain rules: validating the fields of ``POST``/``PATCH /profiles``, matching and merging on trusted
fields, and the profile object. Storage is reached through `ProfileStore`, so this module holds no SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hellotext.core.identity import Unverified
from hellotext.core.values import invalid, normalize_email, normalize_phone, optional_session
from hellotext.errors import IdentityConflict, Problem, ProblemError, ValidationFailed

NAME_MAX = 256
REFERENCE_MAX = 256
PROPERTY_KEY_MAX = 64
#: Trusted fields that belong to at most one profile in a business (unique indexes).
UNIQUE_FIELDS = ("email", "phone", "reference")
#: Scalar trusted fields, in the order the profile object shows them.
SCALAR_FIELDS = ("first_name", "last_name", "email", "phone", "reference")
_MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Profile:
    """A profile as stored, with its identities."""

    id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    reference: str | None
    properties: dict[str, Any]
    unverified: Unverified
    identities: list[tuple[str, str]]
    created_at: float
    updated_at: float

    def trusted(self, name: str) -> Any:
        """A trusted field by column name."""
        return getattr(self, name)

    def as_json(self) -> dict[str, Any]:
        """The API's profile object (§6.1)."""
        return {
            "id": self.id,
            "type": "profile",
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email,
            "phone": self.phone,
            "reference": self.reference,
            "properties": self.properties,
            "identities": [
                {"source": source or None, "user_id": user_id} for source, user_id in self.identities
            ],
            "unverified": {
                "email": self.unverified.email,
                "phone": self.unverified.phone,
                "name": self.unverified.name,
            },
            "traits": self.unverified.traits,
            "created_at": int(self.created_at),
            "updated_at": int(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class ProfileInput:
    """Validated trusted fields of a ``POST`` or ``PATCH`` body.

    Attributes:
        values: the fields given, by column name (``first_name``, ``last_name``, ``email``, ``phone``,
            ``reference``, ``properties``). On ``POST`` a ``null`` counts as absent; on ``PATCH`` it
            stays in `values` and clears the field (``properties: null`` clears every key, a property
            key set to ``null`` is removed).
        session: ``POST`` only: the session to attach.
    """

    values: dict[str, Any] = field(default_factory=dict)
    session: str | None = None


def _text(body: dict[str, Any], key: str, max_len: int) -> Any:
    value = body[key]
    if value is not None and not isinstance(value, str):
        raise invalid(key, f"{key} must be a string")
    if value is not None and len(value) > max_len:
        raise invalid(key, f"{key} must be at most {max_len} characters")
    return value


def _contact(
    body: dict[str, Any], key: str, sub: str, normalize: Callable[[str], str | None], what: str
) -> tuple[bool, str | None]:
    """Read `key` given as a string, as ``{sub: string}``, or as the literal key ``key[sub]``.

    Returns:
        ``(given, value)``: `given` is false when no form is present; `value` is normalised or ``None``
        for an explicit ``null``.
    """
    forms: list[tuple[str, Any]] = []
    if key in body:
        value = body[key]
        if isinstance(value, dict):
            if sub not in value:
                raise invalid(key, f'{key} must be a string or {{"{sub}": string}}')
            forms.append((f"{key}.{sub}", value[sub]))
        else:
            forms.append((key, value))
    literal = f"{key}[{sub}]"
    if literal in body:
        forms.append((literal, body[literal]))
    if not forms:
        return False, None
    values: list[str | None] = []
    for parameter, raw in forms:
        if raw is None:
            values.append(None)
            continue
        if not isinstance(raw, str):
            raise invalid(parameter, f"{parameter} must be a string")
        normalised = normalize(raw)
        if normalised is None:
            raise invalid(parameter, f"{parameter} must be {what}")
        values.append(normalised)
    if len(set(values)) > 1:
        raise ValidationFailed(
            Problem("ambiguous_parameter", key, f"{key} was given in two forms with different values")
        )
    return True, values[0]


def _properties(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid("properties", "properties must be an object")
    for key in value:
        if not 1 <= len(key) <= PROPERTY_KEY_MAX:
            raise invalid("properties", f"property keys must be 1-{PROPERTY_KEY_MAX} characters")
    return dict(value)


def parse_profile_input(body: dict[str, Any], *, patch: bool = False) -> ProfileInput:
    """Validate the fields of ``POST /profiles`` (§9.3.1) or ``PATCH /profiles/{id}`` (§9.3.4).

    Raises:
        ValidationFailed: a wrong type, length or format (``invalid``), or an email or phone given in
            two forms with different values (``ambiguous_parameter``).
    """
    values: dict[str, Any] = {}
    for key in ("first_name", "last_name"):
        if key in body:
            values[key] = _text(body, key, NAME_MAX)
    given, email = _contact(body, "email", "primary", normalize_email, "a valid email address")
    if given:
        values["email"] = email
    given, phone = _contact(body, "phone", "mobile", normalize_phone, "an E.164 phone number")
    if given:
        values["phone"] = phone
    if "reference" in body:
        values["reference"] = _text(body, "reference", REFERENCE_MAX)
    if "properties" in body:
        raw = body["properties"]
        values["properties"] = None if raw is None else _properties(raw)
    if patch:
        return ProfileInput(values=values)
    session = optional_session(body.get("session"))
    # On creation, null means "not given".
    return ProfileInput(values={k: v for k, v in values.items() if v is not None}, session=session)


def not_unique(parameter: str) -> ValidationFailed:
    """``422 parameter_not_unique``: the value belongs to another profile."""
    return ValidationFailed(
        Problem("parameter_not_unique", parameter, f"{parameter} already belongs to another profile")
    )


def identity_assigned(session: dict[str, Any] | None, parameter: str = "profile") -> IdentityConflict:
    """``409 identity_assigned`` carrying the current session object (§9.2.1)."""
    return IdentityConflict(
        Problem("identity_assigned", parameter, "the session is already attached to another profile"),
        session=session,
    )


@dataclass(frozen=True, slots=True)
class CreatePlan:
    """What ``POST /profiles`` will do: merge into `match` (with `changes`), or create from `values`."""

    match: Profile | None
    changes: dict[str, Any]


def plan_create(values: dict[str, Any], find: Callable[[str, str], Profile | None]) -> CreatePlan:
    """Match on trusted fields and merge (§9.3.1).

    Args:
        values: validated fields (`ProfileInput.values` of a ``POST``).
        find: ``find(column, value)``: the profile owning a trusted value, or ``None``.

    Returns:
        The plan: with a match, the fields to fill (``null`` on the match) and the property keys it
        lacks; without, the values to create with.

    Raises:
        ValidationFailed: ``parameter_not_unique`` on ``phone`` when email and phone belong to two
            profiles, on ``reference`` when the reference belongs to a profile other than the match.
    """
    by_email = find("email", values["email"]) if "email" in values else None
    by_phone = find("phone", values["phone"]) if "phone" in values else None
    if by_email is not None and by_phone is not None and by_email.id != by_phone.id:
        raise not_unique("phone")
    match = by_email or by_phone
    if "reference" in values:
        by_reference = find("reference", values["reference"])
        if by_reference is not None and (match is None or by_reference.id != match.id):
            raise not_unique("reference")
    if match is None:
        return CreatePlan(match=None, changes=dict(values))
    changes: dict[str, Any] = {}
    for name in SCALAR_FIELDS:
        if name in values and match.trusted(name) is None:
            changes[name] = values[name]
    if "properties" in values:
        added = {k: v for k, v in values["properties"].items() if k not in match.properties}
        if added:
            changes["properties"] = {**match.properties, **added}
    return CreatePlan(match=match, changes=changes)


def plan_patch(
    current: Profile, values: dict[str, Any], find: Callable[[str, str], Profile | None]
) -> dict[str, Any]:
    """The column changes of a ``PATCH`` (§9.3.4).

    ``null`` clears a field; `properties` merges shallowly and a key set to ``null`` is removed.

    Raises:
        ValidationFailed: ``parameter_not_unique`` when a new email, phone or reference belongs to
            another profile.
    """
    changes: dict[str, Any] = {}
    for name in SCALAR_FIELDS:
        if name not in values or values[name] == current.trusted(name):
            continue
        new = values[name]
        if new is not None and name in UNIQUE_FIELDS:
            owner = find(name, new)
            if owner is not None and owner.id != current.id:
                raise not_unique(name)
        changes[name] = new
    if "properties" in values:
        patch = values["properties"]
        if patch is None:
            merged: dict[str, Any] = {}
        else:
            merged = dict(current.properties)
            for key, value in patch.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
        if merged != current.properties:
            changes["properties"] = merged
    return changes


class ProfileStore(Protocol):
    """The storage ``POST``/``PATCH /profiles`` need, bound to one business and one transaction."""

    def find(self, column: str, value: str) -> Profile | None:
        """The profile whose trusted `column` (email, phone, reference) equals `value`."""

    def get(self, profile_id: str) -> Profile | None:
        """The profile, or ``None``."""

    def insert(self, values: dict[str, Any], now: float) -> str | None:
        """Create a profile; its id, or ``None`` when a unique value was taken meanwhile."""

    def update(self, profile_id: str, changes: dict[str, Any], now: float) -> bool:
        """Write changes; false (and nothing written) when a unique value was taken meanwhile."""

    def session_owner(self, session_id: str) -> str | None:
        """The session's profile, or ``None`` (unattached or unknown)."""

    def session_json(self, session_id: str) -> dict[str, Any] | None:
        """The session object, or ``None``."""

    def see_session(self, session_id: str, now: float) -> None:
        """Create the session if new (``last_seen_at`` untouched otherwise)."""

    def attach_session(
        self, session_id: str, profile_id: str, via: str, now: float
    ) -> tuple[str | None, bool]:
        """Attach if unattached (one conditional update); ``(owner after, whether this call set it)``."""


def _retry_exhausted() -> ProblemError:
    # Each retry sees the row that beat us (it is committed by then), so two attempts settle any race;
    # reaching this means the storage keeps changing under us.
    return ProblemError(Problem("server_error", None, "the profile kept changing; try again"), status=503)


@dataclass(frozen=True, slots=True)
class CreateResult:
    """The outcome of ``POST /profiles``: the profile, whether it is new, whether a session was attached."""

    profile: Profile
    created: bool
    session_attached: bool


def create_profile(store: ProfileStore, request: ProfileInput, now: float) -> CreateResult:
    """``POST /profiles`` (§9.3.1): find by email or phone, merge or create, attach the session.

    Runs inside one transaction; a raise leaves nothing written.

    Raises:
        ValidationFailed: ``parameter_not_unique`` (see `plan_create`).
        IdentityConflict: the session is attached to another profile.
    """
    for _ in range(_MAX_ATTEMPTS):
        plan = plan_create(request.values, store.find)
        if request.session is not None:
            owner = store.session_owner(request.session)
            if owner is not None and (plan.match is None or owner != plan.match.id):
                raise identity_assigned(store.session_json(request.session))
        if plan.match is None:
            inserted = store.insert(plan.changes, now)
            if inserted is None:
                continue
            profile_id, created = inserted, True
        else:
            if plan.changes and not store.update(plan.match.id, plan.changes, now):
                continue
            profile_id, created = plan.match.id, False
        won = False
        if request.session is not None:
            store.see_session(request.session, now)
            owner, won = store.attach_session(request.session, profile_id, "api", now)
            if owner != profile_id:
                # A concurrent attach won between our check and our update: undo everything.
                raise identity_assigned(store.session_json(request.session))
        profile = store.get(profile_id)
        assert profile is not None
        return CreateResult(profile=profile, created=created, session_attached=won)
    raise _retry_exhausted()


def patch_profile(store: ProfileStore, current: Profile, values: dict[str, Any], now: float) -> Profile:
    """``PATCH /profiles/{id}`` (§9.3.4) inside one transaction.

    Raises:
        ValidationFailed: ``parameter_not_unique`` on the field whose new value belongs to another profile.
    """
    for _ in range(_MAX_ATTEMPTS):
        changes = plan_patch(current, values, store.find)
        if changes and not store.update(current.id, changes, now):
            continue
        profile = store.get(current.id)
        assert profile is not None
        return profile
    raise _retry_exhausted()
