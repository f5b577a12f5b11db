"""Event validation (spec http-api §7, §8.3, §9.4): a request body in, a typed, normalised event out.

`parse_event` does every check that needs no lookup (§3.3 step 5) and reports all the problems it finds
in one `ValidationFailed`. The lookups come after, in the storage unit of work: whether a custom action
is declared (`check_declared`, the lookup passed in), whether an `object` id exists and has an accepted
type (`check_object_type`), whether an explicit `profile` exists.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hellotext.core.actions import (
    BUILTIN_ACTIONS,
    LEGACY_OBJECT_KEYS,
    PAGE_VIEWED,
    REQUIRED_OBJECT_KEYS,
    is_object_type,
    parse_action,
)
from hellotext.core.sessions import parse_utm
from hellotext.core.values import (
    client_event_id,
    is_placeholder_user_id,
    normalize_source,
    normalize_user_id,
    optional_session,
    tracked_at,
)
from hellotext.errors import NotFound, Problem, ValidationFailed

URL_MAX = 2048
TITLE_MAX = 1024
PATH_MAX = 2048
OBJECT_FIELD_MAX = 256
AMOUNT_MAX = 1e15
_CURRENCY_RE = re.compile(r"[A-Z]{3}")
# Every key that can name the event's object (§7.2), in the order they are reported.
OBJECT_KEYS = ("object", "object_parameters", *LEGACY_OBJECT_KEYS)


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """The event's object, as the body names it (§7.2).

    Either `object_id` (an existing object, looked up later) or inline parameters (`data`, find-or-create).

    Attributes:
        object_id: the `object` value, or ``None`` for inline parameters.
        object_type: the resolved type of inline parameters; for `object`, the explicit `object_type`
            the stored object must have (``None``: no explicit type).
        accepted: for `object`, the types the built-in action accepts (``None``: any type).
        data: inline parameters as sent.
        source: inline `source` when non-blank, else ``None``.
        reference: inline `reference` when non-blank, else ``None``.
    """

    object_id: str | None = None
    object_type: str | None = None
    accepted: frozenset[str] | None = None
    data: dict[str, Any] | None = None
    source: str | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class EventInput:
    """A validated, normalised event.

    Attributes:
        action: the action name.
        custom: whether the action is custom (must be declared, checked by lookup).
        session: the session id, or ``None``.
        profile: the explicit profile (private endpoint only), or ``None``.
        identity: ``(source, user_id)`` from `user_parameters`, or ``None`` (absent, blank, placeholder).
        tracked_at: epoch seconds.
        amount: finite, 0 to 10^15, or ``None``.
        currency: ``[A-Z]{3}`` or ``None``.
        url: the `url` field.
        page: ``{url, title, path}`` (missing keys ``None``), or ``None``.
        utm: first-touch UTM value (``parse_utm``), or ``None`` when it carries no UTM value.
        metadata: the `metadata` object, or ``None``.
        obj: the object reference, or ``None``.
        client_id: the idempotency key `id`, or ``None``.
        raw: the body as received.
    """

    action: str
    custom: bool
    session: str | None
    profile: str | None
    identity: tuple[str, str] | None
    tracked_at: float
    amount: float | None
    currency: str | None
    url: str | None
    page: dict[str, Any] | None
    utm: dict[str, Any] | None
    metadata: dict[str, Any] | None
    obj: ObjectRef | None
    client_id: str | None
    raw: dict[str, Any]


def _invalid(parameter: str, description: str) -> Problem:
    return Problem("invalid", parameter, description)


def _string(
    container: dict[str, Any], key: str, max_len: int, parameter: str, problems: list[Problem]
) -> str | None:
    value = container.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        problems.append(_invalid(parameter, f"{parameter} must be a string of at most {max_len} characters"))
        return None
    return value


def _page(value: object, problems: list[Problem]) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(_invalid("page", "page must be an object"))
        return None
    page = {
        "url": _string(value, "url", URL_MAX, "page.url", problems),
        "title": _string(value, "title", TITLE_MAX, "page.title", problems),
        "path": _string(value, "path", PATH_MAX, "page.path", problems),
    }
    return page if any(v is not None for v in page.values()) else None


def _identity(value: object, problems: list[Problem]) -> tuple[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(_invalid("user_parameters", "user_parameters must be an object"))
        return None
    user_id: str | None = None
    source = ""
    try:
        raw_id = value.get("id")
        if raw_id is not None:
            user_id = normalize_user_id(raw_id, "user_parameters.id")
    except ValidationFailed as exc:
        problems.extend(exc.problems)
    try:
        source = normalize_source(value.get("source"), "user_parameters.source")
    except ValidationFailed as exc:
        problems.extend(exc.problems)
    # Blank and placeholder ids ("undefined", "null", 0 ...) are ignored, as if absent (§6.2).
    if user_id is None or is_placeholder_user_id(user_id):
        return None
    return source, user_id


def _amount(body: dict[str, Any], problems: list[Problem]) -> tuple[float | None, str | None]:
    amount = body.get("amount")
    value: float | None = None
    if amount is not None:
        # Range before finiteness: a huge integer is valid JSON but does not convert to a float.
        if (
            isinstance(amount, bool)
            or not isinstance(amount, int | float)
            or not 0 <= amount <= AMOUNT_MAX
            or not math.isfinite(amount)
        ):
            problems.append(_invalid("amount", "amount must be a number from 0 to 10^15"))
        else:
            value = float(amount)
    currency = body.get("currency")
    if currency is None:
        return value, None
    if not isinstance(currency, str) or _CURRENCY_RE.fullmatch(currency) is None:
        problems.append(_invalid("currency", "currency must be three capital letters (ISO 4217)"))
        return value, None
    if amount is None:
        problems.append(Problem("parameter_missing", "amount", "currency needs an amount"))
    return value, currency


def _inline_object(
    key: str, params: object, object_type: str | None, problems: list[Problem]
) -> ObjectRef | None:
    if not isinstance(params, dict):
        problems.append(_invalid(key, f"{key} must be an object"))
        return None
    if not params:
        problems.append(Problem("parameter_invalid_empty", key, f"{key} must not be empty"))
        return None
    count = len(problems)
    required = REQUIRED_OBJECT_KEYS.get(object_type or "")
    if required is not None:
        parameter = f"{key}.{required}"
        if required not in params:
            problems.append(Problem("parameter_missing", parameter, f"{parameter} is required"))
        else:
            value = params[required]
            if value is None or (isinstance(value, str) and not value.strip()):
                problems.append(
                    Problem("parameter_invalid_empty", parameter, f"{parameter} must not be blank")
                )
            elif not isinstance(value, str):
                problems.append(_invalid(parameter, f"{parameter} must be a string"))
    source = _string(params, "source", OBJECT_FIELD_MAX, f"{key}.source", problems)
    reference = _string(params, "reference", OBJECT_FIELD_MAX, f"{key}.reference", problems)
    if len(problems) > count or object_type is None:
        return None
    return ObjectRef(
        object_type=object_type,
        data=params,
        # Blank values do not name anything: stored as NULL, so the object is never shared (rule 6).
        source=source if source is not None and source.strip() else None,
        reference=reference if reference is not None and reference.strip() else None,
    )


def _object(
    body: dict[str, Any], action: str | None, custom: bool, problems: list[Problem]
) -> ObjectRef | None:
    """Object selection, §7.2 rules 1-5 (the lookups of rule 4 come later)."""
    accepted = BUILTIN_ACTIONS.get(action or "") if not custom else None
    requires = bool(accepted)
    explicit = body.get("object_type")
    type_ok = True
    if explicit is not None and (not isinstance(explicit, str) or not is_object_type(explicit)):
        problems.append(
            _invalid("object_type", "object_type must be a built-in type or match [a-z][a-z0-9_]{0,63}")
        )
        type_ok = False
    given = [key for key in OBJECT_KEYS if body.get(key) is not None]
    if len(given) > 1:
        problems.append(
            Problem(
                "ambiguous_parameter", "object", f"name the object one way only, not {' and '.join(given)}"
            )
        )
        return None
    if not given:
        if requires and action is not None:
            problems.append(Problem("object_invalid", "object", f"{action} needs an object"))
        return None
    if action is None or not type_ok:
        return None  # the action or the type is wrong: the type rules cannot be judged
    key = given[0]
    legacy = LEGACY_OBJECT_KEYS.get(key)
    if explicit is not None and legacy is not None and explicit != legacy:
        problems.append(_invalid("object_type", f"{key} holds an object of type {legacy}, not {explicit}"))
        return None
    resolved: str | None = explicit or legacy or (accepted[0] if requires and accepted else None)
    if requires and accepted and resolved is not None and resolved not in accepted:
        problems.append(_invalid("object_type", f"{action} accepts objects of type {', '.join(accepted)}"))
        return None
    if key == "object":
        value = body["object"]
        if not isinstance(value, str):
            problems.append(_invalid("object", "object must be an object id (a string)"))
            return None
        if not value.strip():
            problems.append(Problem("parameter_invalid_empty", "object", "object must not be blank"))
            return None
        return ObjectRef(
            object_id=value,
            object_type=explicit,
            accepted=frozenset(accepted) if requires and accepted else None,
        )
    if resolved is None:
        problems.append(
            Problem("parameter_missing", "object_type", f"object_type is required with {key} on {action}")
        )
    return _inline_object(key, body[key], resolved, problems)


def parse_event(body: dict[str, Any], now: float, *, private: bool = False) -> EventInput:
    """Validate an event body (§8.3; with `private`, §9.4's `profile` too), every check without lookups.

    Args:
        body: the decoded JSON object.
        now: receipt time (epoch seconds): the default `tracked_at` and the window's end.
        private: the body came to ``POST /attribution/events``: `profile` is honoured, and a profile or a
            session is required. On public endpoints a `profile` key is only raw payload.

    Returns:
        The normalised event. Whether a custom action is declared is left to `check_declared`.

    Raises:
        ValidationFailed: every problem found (422), parameters as dotted paths from the body root.
    """
    problems: list[Problem] = []
    action: str | None = None
    try:
        action = parse_action(body.get("action"))
    except ValidationFailed as exc:
        problems.extend(exc.problems)
    custom = action is not None and action not in BUILTIN_ACTIONS

    session: str | None = None
    try:
        session = optional_session(body.get("session"))
    except ValidationFailed as exc:
        problems.extend(exc.problems)

    profile: str | None = None
    if private:
        value = body.get("profile")
        if value is not None and not isinstance(value, str):
            problems.append(_invalid("profile", "profile must be a profile id (a string)"))
        elif isinstance(value, str) and not value.strip():
            problems.append(Problem("parameter_invalid_empty", "profile", "profile must not be blank"))
        else:
            profile = value
        if value is None and session is None and "session" not in {p.parameter for p in problems}:
            problems.append(Problem("parameter_missing", "profile", "profile or session is required"))

    identity = _identity(body.get("user_parameters"), problems)
    url = _string(body, "url", URL_MAX, "url", problems)
    page = _page(body.get("page"), problems)
    utm: dict[str, Any] | None = None
    try:
        utm = parse_utm(body.get("utm_params"))
    except ValidationFailed as exc:
        problems.extend(exc.problems)
    amount, currency = _amount(body, problems)
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        problems.append(_invalid("metadata", "metadata must be an object"))
    moment = now
    raw_moment = body.get("tracked_at")
    if isinstance(raw_moment, int) and not isinstance(raw_moment, bool) and abs(raw_moment) > 2**53:
        # Out of any window, and too large for `float()` inside `tracked_at`.
        problems.append(
            _invalid("tracked_at", "tracked_at must fall between 2000-01-01 and 24 hours from now")
        )
    elif raw_moment is not None:
        try:
            moment = tracked_at(raw_moment, now)
        except ValidationFailed as exc:
            problems.extend(exc.problems)
    client_id: str | None = None
    try:
        client_id = client_event_id(body.get("id"))
    except ValidationFailed as exc:
        problems.extend(exc.problems)

    obj = _object(body, action, custom, problems)
    if action == PAGE_VIEWED and not _has_url(url, page) and not _url_problem(problems):
        problems.append(Problem("parameter_missing", "url", "page.viewed needs a url or page.url"))

    if problems:
        raise ValidationFailed(problems)
    assert action is not None
    return EventInput(
        action=action,
        custom=custom,
        session=session,
        profile=profile,
        identity=identity,
        tracked_at=moment,
        amount=amount,
        currency=currency,
        url=url,
        page=page,
        utm=utm,
        metadata=metadata,
        obj=obj,
        client_id=client_id,
        raw=body,
    )


def _has_url(url: str | None, page: dict[str, Any] | None) -> bool:
    if url is not None and url.strip():
        return True
    page_url = None if page is None else page["url"]
    return page_url is not None and bool(page_url.strip())


def _url_problem(problems: list[Problem]) -> bool:
    return any(p.parameter in ("url", "page", "page.url") for p in problems)


def check_declared(event: EventInput, is_declared: Callable[[str], bool]) -> None:
    """Lookup step for the action (§7.1): a custom action must be declared by the business.

    Args:
        event: a validated event.
        is_declared: answers whether the business declared a custom action name.

    Raises:
        NotFound: the action is custom and not declared (parameter ``action``).
    """
    if event.custom and not is_declared(event.action):
        raise NotFound(Problem("not_found", "action", f"no action named {event.action} is declared"))


def check_object_type(ref: ObjectRef, stored_type: str | None) -> None:
    """Lookup step for an `object` id (§7.2 rule 4).

    Args:
        ref: the event's object reference (with `object_id`).
        stored_type: the object's type, or ``None`` when no such object exists in the business.

    Raises:
        NotFound: unknown object (parameter ``object``).
        ValidationFailed: its type is not the explicit `object_type`, or not accepted by the action.
    """
    if stored_type is None:
        raise NotFound(Problem("not_found", "object", "no object with this id"))
    if (ref.object_type is not None and stored_type != ref.object_type) or (
        ref.accepted is not None and stored_type not in ref.accepted
    ):
        raise ValidationFailed(
            _invalid("object", f"the object has type {stored_type}, which this event does not accept")
        )
