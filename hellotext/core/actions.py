"""Actions and object types (spec http-api §7.1, §7.2, §9.1): built-ins, the reserved name, declarations."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hellotext.core.values import empty, invalid, missing
from hellotext.errors import Problem, ValidationFailed

PAGE_VIEWED = "page.viewed"
SHORT_LINK_CLICKED = "short_link.clicked"
RESERVED_ACTIONS = frozenset({SHORT_LINK_CLICKED})

# Built-in action → the object types it accepts, the default (first listed) first. An empty tuple means
# no object is required and any type is accepted (page.viewed).
BUILTIN_ACTIONS: dict[str, tuple[str, ...]] = {
    "app.installed": ("app",),
    "app.removed": ("app",),
    "app.spent": ("app",),
    "cart.added": ("cart", "product"),
    "cart.removed": ("cart", "product"),
    "cart.abandoned": ("cart", "product"),
    "coupon.redeemed": ("coupon",),
    "form.completed": ("form",),
    "order.placed": ("order",),
    "order.confirmed": ("order",),
    "order.cancelled": ("order",),
    "order.shipped": ("order",),
    "order.delivered": ("order",),
    PAGE_VIEWED: (),
    "product.viewed": ("product",),
    "product.purchased": ("product",),
    "refund.requested": ("refund",),
    "refund.received": ("refund",),
}
BUILTIN_OBJECT_TYPES = frozenset({"app", "cart", "coupon", "form", "location", "order", "product", "refund"})
# Legacy ways to send inline object parameters, each with its type.
LEGACY_OBJECT_KEYS: dict[str, str] = {
    "app_parameters": "app",
    "cart_parameters": "cart",
    "coupon_parameters": "coupon",
    "form_parameters": "form",
    "order_parameters": "order",
    "order_attributes": "order",
    "product_parameters": "product",
    "refund_parameters": "refund",
}
# Keys an inline object of the type must carry (non-blank).
REQUIRED_OBJECT_KEYS: dict[str, str] = {"product": "name", "app": "name", "coupon": "code"}

ACTION_NAME_RE = re.compile(r"[a-z0-9_.]{1,64}")
CUSTOM_TYPE_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
DESCRIPTION_MAX = 1024


def is_object_type(value: str) -> bool:
    """Whether `value` is a built-in object type or a well-formed custom type name."""
    return value in BUILTIN_OBJECT_TYPES or CUSTOM_TYPE_RE.fullmatch(value) is not None


def is_builtin_or_reserved(name: str) -> bool:
    """Whether `name` is fixed by the spec (built-in or reserved), so it can never be declared."""
    return name in BUILTIN_ACTIONS or name in RESERVED_ACTIONS


@dataclass(frozen=True, slots=True)
class ActionDeclaration:
    """A validated ``POST /actions`` body."""

    name: str
    description: str | None


def parse_action_declaration(body: dict[str, Any]) -> ActionDeclaration:
    """Validate a custom action declaration (§9.1).

    Raises:
        ValidationFailed: `name` absent (``parameter_missing``), blank (``parameter_invalid_empty``,
            listed together with ``invalid`` since a blank name also breaks the pattern), not a string or
            not matching ``[a-z0-9_.]{1,64}`` (``invalid``), built-in or reserved (``not_allowed``);
            `description` not a string of at most 1024 characters (``invalid``).
    """
    problems: list[Problem] = []
    name = body.get("name")
    if name is None:
        problems.extend(missing("name", "name is required").problems)
    elif isinstance(name, str) and not name.strip():
        problems.append(Problem("parameter_invalid_empty", "name", "name must not be blank"))
        problems.append(Problem("invalid", "name", "name must match [a-z0-9_.]{1,64}"))
    elif not isinstance(name, str) or ACTION_NAME_RE.fullmatch(name) is None:
        problems.append(Problem("invalid", "name", "name must be a string matching [a-z0-9_.]{1,64}"))
    elif is_builtin_or_reserved(name):
        problems.append(Problem("not_allowed", "name", f"{name} is a built-in or reserved action"))
    description = body.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > DESCRIPTION_MAX):
        problems.append(
            Problem(
                "invalid",
                "description",
                f"description must be a string of at most {DESCRIPTION_MAX} characters",
            )
        )
    if problems:
        raise ValidationFailed(problems)
    assert isinstance(name, str)
    return ActionDeclaration(name=name, description=description)


def parse_action(value: object) -> str:
    """The `action` of an event, checked for shape only (§7.1).

    Whether a custom action is declared is a lookup, made later (`hellotext.core.events.check_declared`).

    Raises:
        ValidationFailed: absent or null (``parameter_missing``), blank (``parameter_invalid_empty``), not
            a string (``invalid``), reserved (``not_allowed``).
    """
    if value is None:
        raise missing("action", "action is required")
    if not isinstance(value, str):
        raise invalid("action", "action must be a string")
    if not value.strip():
        raise empty("action", "action must not be blank")
    if value in RESERVED_ACTIONS:
        raise ValidationFailed(
            Problem("not_allowed", "action", f"{value} is recorded by the server and cannot be tracked")
        )
    return value
