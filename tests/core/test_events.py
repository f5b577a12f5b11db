"""The event validator, pure (spec http-api §7.1, §7.2, §8.3, §9.4, §3.3): no database, no HTTP."""

from __future__ import annotations

import math
from typing import Any

import pytest

from hellotext.core.actions import (
    BUILTIN_ACTIONS,
    LEGACY_OBJECT_KEYS,
    is_object_type,
    parse_action_declaration,
)
from hellotext.core.events import EventInput, ObjectRef, check_declared, check_object_type, parse_event
from hellotext.errors import NotFound, ValidationFailed

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
PAGE = {"action": "page.viewed", "url": "https://shop.example.com/"}


def problems(body: dict[str, Any], *, private: bool = False) -> list[tuple[str, str | None]]:
    with pytest.raises(ValidationFailed) as caught:
        parse_event(body, NOW, private=private)
    return [(p.type, p.parameter) for p in caught.value.problems]


def ok(body: dict[str, Any], *, private: bool = False) -> EventInput:
    return parse_event(body, NOW, private=private)


# --- §7.1 action -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (None, ("parameter_missing", "action")),
        ("", ("parameter_invalid_empty", "action")),
        ("   ", ("parameter_invalid_empty", "action")),
        (5, ("invalid", "action")),
        (["page.viewed"], ("invalid", "action")),
        ("short_link.clicked", ("not_allowed", "action")),
    ],
)
def test_action_rules_7_1(action: Any, expected: tuple[str, str]) -> None:
    body: dict[str, Any] = {"url": "u"} if action is None else {"action": action, "url": "u"}
    assert expected in problems(body)


def test_absent_action_key_is_missing_7_1() -> None:
    assert problems({}) == [("parameter_missing", "action")]


def test_builtin_is_not_custom_and_others_are_7_1() -> None:
    assert ok(PAGE).custom is False
    assert ok({"action": "loyalty.joined"}).custom is True
    # Anything not built-in is custom, whatever its shape: only a lookup can tell it is undeclared.
    assert ok({"action": "Not A Declarable Name"}).custom is True


def test_check_declared_is_a_lookup_passed_in_7_1() -> None:
    event = ok({"action": "loyalty.joined"})
    check_declared(event, {"loyalty.joined"}.__contains__)
    with pytest.raises(NotFound) as caught:
        check_declared(event, set().__contains__)
    assert [(p.type, p.parameter) for p in caught.value.problems] == [("not_found", "action")]
    # Built-ins never consult the lookup.
    check_declared(ok(PAGE), lambda name: pytest.fail("looked up a built-in"))


def test_page_viewed_needs_a_url_7_1() -> None:
    assert ("parameter_missing", "url") in problems({"action": "page.viewed"})
    assert ("parameter_missing", "url") in problems({"action": "page.viewed", "url": "  "})
    assert ("parameter_missing", "url") in problems({"action": "page.viewed", "page": {"title": "t"}})
    assert ok({"action": "page.viewed", "page": {"url": "https://x.example/"}}).url is None
    # A url that is itself invalid is reported as such, not also as missing.
    assert problems({"action": "page.viewed", "url": 5}) == [("invalid", "url")]


# --- §7.2 objects ----------------------------------------------------------------------------------


def test_every_builtin_requiring_an_object_refuses_none_7_2() -> None:
    for action, types in BUILTIN_ACTIONS.items():
        if types:
            assert problems({"action": action}) == [("object_invalid", "object")], action


def test_default_type_is_the_first_listed_7_2() -> None:
    event = ok({"action": "cart.added", "object_parameters": {"id": 1}})
    assert event.obj is not None and event.obj.object_type == "cart"
    event = ok({"action": "cart.added", "object_type": "product", "object_parameters": {"name": "n"}})
    assert event.obj is not None and event.obj.object_type == "product"


def test_legacy_keys_carry_their_type_7_2() -> None:
    for key, object_type in LEGACY_OBJECT_KEYS.items():
        params = {"name": "n", "code": "c"}
        event = ok({"action": "loyalty.joined", key: params})
        assert event.obj is not None
        assert event.obj.object_type == object_type, key
        assert event.obj.data == params
    event = ok({"action": "order.placed", "order_attributes": {"total": 3}})
    assert event.obj is not None and event.obj.object_type == "order"


def test_ambiguous_object_7_2_rule_1() -> None:
    assert ("ambiguous_parameter", "object") in problems(
        {"action": "product.viewed", "object": "x", "object_parameters": {"name": "n"}}
    )
    assert ("ambiguous_parameter", "object") in problems(
        {"action": "product.viewed", "product_parameters": {"name": "n"}, "object_parameters": {"name": "n"}}
    )
    assert ("ambiguous_parameter", "object") in problems(
        {"action": "order.placed", "order_parameters": {"a": 1}, "order_attributes": {"a": 1}}
    )


def test_type_rules_7_2_rule_3() -> None:
    # Legacy key against an explicit, different type.
    assert problems(
        {"action": "loyalty.joined", "object_type": "cart", "product_parameters": {"name": "n"}}
    ) == [("invalid", "object_type")]
    # A built-in action accepts only its types.
    assert problems({"action": "product.viewed", "order_parameters": {"a": 1}}) == [
        ("invalid", "object_type")
    ]
    assert problems({"action": "product.viewed", "object_type": "order", "object_parameters": {"a": 1}}) == [
        ("invalid", "object_type")
    ]
    # page.viewed and custom actions: inline parameters need an explicit type.
    assert ("parameter_missing", "object_type") in problems({**PAGE, "object_parameters": {"a": 1}})
    assert problems({"action": "loyalty.joined", "object_parameters": {"a": 1}}) == [
        ("parameter_missing", "object_type")
    ]
    # Type names: built-in or [a-z][a-z0-9_]{0,63}.
    for bad in ("Product", "1abc", "a-b", "", "x" * 65, 5, True):
        assert ("invalid", "object_type") in problems(
            {"action": "loyalty.joined", "object_type": bad, "object_parameters": {"a": 1}}
        ), bad
    event = ok({"action": "loyalty.joined", "object_type": "ticket_2", "object_parameters": {"a": 1}})
    assert event.obj is not None and event.obj.object_type == "ticket_2"
    event = ok({**PAGE, "object_type": "location", "object_parameters": {"city": "Montevideo"}})
    assert event.obj is not None and event.obj.object_type == "location"


def test_object_id_rules_7_2_rule_4() -> None:
    assert problems({"action": "product.viewed", "object": 5}) == [("invalid", "object")]
    assert problems({"action": "product.viewed", "object": " "}) == [("parameter_invalid_empty", "object")]
    event = ok({"action": "cart.added", "object": "abc"})
    assert event.obj == ObjectRef(object_id="abc", accepted=frozenset({"cart", "product"}))
    # The lookup step: unknown → 404; wrong type → 422 invalid (object).
    assert event.obj is not None
    with pytest.raises(NotFound):
        check_object_type(event.obj, None)
    check_object_type(event.obj, "product")
    with pytest.raises(ValidationFailed) as caught:
        check_object_type(event.obj, "order")
    assert caught.value.problems[0].parameter == "object"
    explicit = ok({"action": "cart.added", "object": "abc", "object_type": "cart"}).obj
    assert explicit is not None
    with pytest.raises(ValidationFailed):
        check_object_type(explicit, "product")
    custom = ok({"action": "loyalty.joined", "object": "abc"}).obj
    assert custom is not None
    check_object_type(custom, "anything_at_all")


OP = "object_parameters"


@pytest.mark.parametrize(
    ("action", "key", "params", "expected"),
    [
        ("product.viewed", OP, "x", ("invalid", OP)),
        ("product.viewed", OP, [1], ("invalid", OP)),
        ("product.viewed", OP, {}, ("parameter_invalid_empty", OP)),
        ("product.viewed", OP, {"p": 1}, ("parameter_missing", f"{OP}.name")),
        ("product.viewed", OP, {"name": ""}, ("parameter_invalid_empty", f"{OP}.name")),
        ("product.viewed", OP, {"name": None}, ("parameter_invalid_empty", f"{OP}.name")),
        ("product.viewed", OP, {"name": 5}, ("invalid", f"{OP}.name")),
        ("product.viewed", "product_parameters", {"p": 1}, ("parameter_missing", "product_parameters.name")),
        (
            "app.installed",
            "app_parameters",
            {"name": " "},
            ("parameter_invalid_empty", "app_parameters.name"),
        ),
        ("coupon.redeemed", OP, {"name": "n"}, ("parameter_missing", f"{OP}.code")),
        ("product.viewed", OP, {"name": "n", "source": 5}, ("invalid", f"{OP}.source")),
        ("product.viewed", OP, {"name": "n", "reference": "r" * 257}, ("invalid", f"{OP}.reference")),
    ],
)
def test_inline_parameters_7_2_rule_5(action: str, key: str, params: Any, expected: tuple[str, str]) -> None:
    assert expected in problems({"action": action, key: params})


def test_inline_source_and_reference_7_2_rule_6() -> None:
    params = {"name": "n", "source": "shop", "reference": "r" * 256, "price": {"amount": 2}}
    obj = ok({"action": "product.viewed", "object_parameters": params}).obj
    assert obj is not None
    assert (obj.source, obj.reference, obj.data) == ("shop", "r" * 256, params)
    # Blank values name nothing: stored as NULL, so the object is never shared.
    obj = ok(
        {"action": "product.viewed", "object_parameters": {"name": "n", "source": " ", "reference": "r"}}
    ).obj
    assert obj is not None and obj.source is None and obj.reference == "r"


# --- §8.3 fields -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"session": "a b"}, ("invalid", "session")),
        ({"session": "a,b"}, ("invalid", "session")),
        ({"session": 5}, ("invalid", "session")),
        ({"session": "x" * 257}, ("invalid", "session")),
        ({"user_parameters": "u1"}, ("invalid", "user_parameters")),
        ({"user_parameters": {"id": True}}, ("invalid", "user_parameters.id")),
        ({"user_parameters": {"id": 1.5}}, ("invalid", "user_parameters.id")),
        ({"user_parameters": {"id": "x" * 257}}, ("invalid", "user_parameters.id")),
        ({"user_parameters": {"id": "u", "source": 5}}, ("invalid", "user_parameters.source")),
        ({"user_parameters": {"id": "u", "source": "s" * 65}}, ("invalid", "user_parameters.source")),
        ({"page": "x"}, ("invalid", "page")),
        ({"page": {"url": 5}}, ("invalid", "page.url")),
        ({"page": {"url": "u" * 2049}}, ("invalid", "page.url")),
        ({"page": {"title": "t" * 1025}}, ("invalid", "page.title")),
        ({"page": {"path": "p" * 2049}}, ("invalid", "page.path")),
        ({"url": "u" * 2049}, ("invalid", "url")),
        ({"url": ["u"]}, ("invalid", "url")),
        ({"utm_params": "x"}, ("invalid", "utm_params")),
        ({"utm_params": {"source": 5}}, ("invalid", "utm_params.source")),
        ({"utm_params": {"campaign": "c" * 257}}, ("invalid", "utm_params.campaign")),
        ({"amount": "12.50"}, ("invalid", "amount")),
        ({"amount": True}, ("invalid", "amount")),
        ({"amount": -0.01}, ("invalid", "amount")),
        ({"amount": 1e15 + 2}, ("invalid", "amount")),
        ({"amount": 10**400}, ("invalid", "amount")),
        ({"amount": 1, "currency": "usd"}, ("invalid", "currency")),
        ({"amount": 1, "currency": "USDX"}, ("invalid", "currency")),
        ({"amount": 1, "currency": 840}, ("invalid", "currency")),
        ({"currency": "USD"}, ("parameter_missing", "amount")),
        ({"metadata": "x"}, ("invalid", "metadata")),
        ({"metadata": [1]}, ("invalid", "metadata")),
        ({"tracked_at": "yesterday"}, ("invalid", "tracked_at")),
        ({"tracked_at": 946_684_799}, ("invalid", "tracked_at")),
        ({"tracked_at": NOW * 1000}, ("invalid", "tracked_at")),
        ({"tracked_at": NOW + 86_401}, ("invalid", "tracked_at")),
        ({"tracked_at": 10**400}, ("invalid", "tracked_at")),
        ({"tracked_at": True}, ("invalid", "tracked_at")),
        ({"tracked_at": {"at": 1}}, ("invalid", "tracked_at")),
        ({"id": ""}, ("invalid", "id")),
        ({"id": "k" * 65}, ("invalid", "id")),
        ({"id": "a b"}, ("invalid", "id")),
        ({"id": "caf\u00e9"}, ("invalid", "id")),
        ({"id": 5}, ("invalid", "id")),
    ],
)
def test_field_rules_8_3(changes: dict[str, Any], expected: tuple[str, str]) -> None:
    assert expected in problems({**PAGE, **changes})


def test_several_problems_are_reported_together_3_1() -> None:
    found = problems(
        {
            "action": "product.viewed",
            "session": "a b",
            "amount": "1",
            "tracked_at": "never",
            "id": "",
            "object_parameters": {},
        }
    )
    assert set(found) >= {
        ("invalid", "session"),
        ("invalid", "amount"),
        ("invalid", "tracked_at"),
        ("invalid", "id"),
        ("parameter_invalid_empty", "object_parameters"),
    }


def test_normalised_values_8_3() -> None:
    event = ok(
        {
            **PAGE,
            "session": "s-1",
            "user_parameters": {"id": " user_1 ", "source": " Shopify ", "email": "ignored"},
            "page": {"url": "https://shop.example.com/", "title": "Home", "extra": 1},
            "utm_params": {"source": "news", "medium": "email", "other": "x"},
            "amount": 12,
            "currency": "USD",
            "metadata": {"k": [1, 2]},
            "tracked_at": "2025-12-31T23:00:00",
            "id": "evt-1",
            "anything": {"kept": True},
        }
    )
    assert event.session == "s-1"
    assert event.identity == ("shopify", "user_1")
    assert event.page == {"url": "https://shop.example.com/", "title": "Home", "path": None}
    assert event.utm == {
        "source": "news",
        "medium": "email",
        "campaign": None,
        "term": None,
        "content": None,
        "observed_at": None,
    }
    assert (event.amount, event.currency) == (12.0, "USD")
    assert event.metadata == {"k": [1, 2]}
    assert event.tracked_at == NOW - 3600  # no offset means UTC
    assert event.client_id == "evt-1"
    assert event.raw["anything"] == {"kept": True}
    assert event.profile is None


def test_defaults_and_absent_values_8_3() -> None:
    event = ok({**PAGE, "session": "undefined", "utm_params": {"source": " "}, "tracked_at": None})
    assert event.session is None
    assert event.utm is None  # no non-blank UTM value: nothing to store
    assert event.tracked_at == NOW
    assert event.obj is None and event.identity is None and event.client_id is None
    for absent in ("", "null", None):
        assert ok({**PAGE, "session": absent}).session is None


def test_tracked_at_forms_8_3() -> None:
    assert ok({**PAGE, "tracked_at": 1_767_225_000}).tracked_at == 1_767_225_000
    assert ok({**PAGE, "tracked_at": 1_767_225_000.25}).tracked_at == 1_767_225_000.25
    assert ok({**PAGE, "tracked_at": "2026-01-01T02:00:00+02:00"}).tracked_at == NOW
    assert ok({**PAGE, "tracked_at": "2026-01-01T00:00:00Z"}).tracked_at == NOW
    assert ok({**PAGE, "tracked_at": NOW + 86_400}).tracked_at == NOW + 86_400
    assert ok({**PAGE, "tracked_at": 946_684_800}).tracked_at == 946_684_800


def test_amount_bounds_8_3() -> None:
    assert ok({**PAGE, "amount": 0}).amount == 0
    assert ok({**PAGE, "amount": 1e15}).amount == 1e15
    assert math.isclose(ok({**PAGE, "amount": 19.99}).amount or 0, 19.99)


@pytest.mark.parametrize(
    "placeholder",
    ["undefined", "NULL", " None ", "nil", "NaN", "anonymous", "[object Object]", "0", 0, "", "  "],
)
def test_placeholder_user_ids_are_ignored_6_2(placeholder: Any) -> None:
    assert ok({**PAGE, "user_parameters": {"id": placeholder, "source": "shop"}}).identity is None


def test_user_parameters_integer_id_and_no_source_1_5() -> None:
    assert ok({**PAGE, "user_parameters": {"id": 42}}).identity == ("", "42")
    assert ok({**PAGE, "user_parameters": {"id": "u", "source": None}}).identity == ("", "u")
    assert ok({**PAGE, "user_parameters": None}).identity is None


# --- §6.4 / §9.4 the explicit profile ----------------------------------------------------------------


def test_profile_is_raw_payload_on_public_endpoints_6_4() -> None:
    event = ok({**PAGE, "profile": 12345})
    assert event.profile is None
    assert event.raw["profile"] == 12345


def test_private_profile_rules_9_4() -> None:
    assert problems(PAGE, private=True) == [("parameter_missing", "profile")]
    assert problems({**PAGE, "session": "null"}, private=True) == [("parameter_missing", "profile")]
    assert problems({**PAGE, "profile": 5}, private=True) == [("invalid", "profile")]
    assert problems({**PAGE, "profile": " "}, private=True) == [("parameter_invalid_empty", "profile")]
    # `profile_id` and `session_id` are not aliases.
    assert problems({**PAGE, "profile_id": "p", "session_id": "s"}, private=True) == [
        ("parameter_missing", "profile")
    ]
    assert ok({**PAGE, "profile": "p1"}, private=True).profile == "p1"
    event = ok({**PAGE, "session": "s1"}, private=True)
    assert (event.profile, event.session) == (None, "s1")


# --- §9.1 declarations --------------------------------------------------------------------------------


def test_action_declaration_9_1() -> None:
    declaration = parse_action_declaration({"name": "loyalty.joined_2", "description": "d" * 1024})
    assert declaration.name == "loyalty.joined_2"
    cases: list[tuple[dict[str, Any], tuple[str, str]]] = [
        ({}, ("parameter_missing", "name")),
        ({"name": None}, ("parameter_missing", "name")),
        ({"name": ""}, ("invalid", "name")),
        ({"name": ""}, ("parameter_invalid_empty", "name")),
        ({"name": 5}, ("invalid", "name")),
        ({"name": "Loyalty"}, ("invalid", "name")),
        ({"name": "a b"}, ("invalid", "name")),
        ({"name": "x" * 65}, ("invalid", "name")),
        ({"name": "page.viewed"}, ("not_allowed", "name")),
        ({"name": "short_link.clicked"}, ("not_allowed", "name")),
        ({"name": "ok", "description": 5}, ("invalid", "description")),
        ({"name": "ok", "description": "d" * 1025}, ("invalid", "description")),
    ]
    for body, expected in cases:
        with pytest.raises(ValidationFailed) as caught:
            parse_action_declaration(body)
        assert expected in [(p.type, p.parameter) for p in caught.value.problems], body


def test_object_type_names_7_2() -> None:
    assert is_object_type("location")
    assert is_object_type("a" + "b" * 63)
    assert not is_object_type("a" + "b" * 64)
    assert not is_object_type("_a")
