"""The small values of http-api §1.5 and §5.1, checked alone (no server)."""

from __future__ import annotations

import pytest

from hellotext.core import values
from hellotext.errors import ValidationFailed

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("a", True),
        ("x" * 256, True),
        ("x" * 257, False),
        ("a b", False),
        ("a,b", False),
        ("a;b", False),
        ("tab\t", False),
        ("é", False),
        ("!~", True),
        ("", False),
    ],
)
def test_session_id_rule_5_1(value: str, ok: bool) -> None:
    assert values.is_session_id(value) is ok


@pytest.mark.parametrize("absent", [None, "", "undefined", "null"])
def test_absent_sessions_5_1(absent: str | None) -> None:
    assert values.optional_session(absent) is None


def test_bad_session_is_invalid_5_1() -> None:
    with pytest.raises(ValidationFailed) as info:
        values.optional_session("a;b")
    assert info.value.problems[0].type == "invalid"
    assert info.value.problems[0].parameter == "session"


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("  John@Example.COM ", "john@example.com"),
        ("a@b", None),
        ("a@@b.com", None),
        ("@b.com", None),
        ("a@b..com", None),
        ("a b@c.com", None),
        ("x" * 250 + "@b.com", None),
    ],
)
def test_email_normalisation_1_5(raw: str, normal: str | None) -> None:
    assert values.normalize_email(raw) == normal


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        (" +598 (99) 123-456 ", "+59899123456"),
        ("+1.555.123.4567", "+15551234567"),
        ("099123456", None),
        ("+0123456789", None),
        ("+123456", None),
        ("+1234567890123456", None),
    ],
)
def test_phone_normalisation_1_5(raw: str, normal: str | None) -> None:
    assert values.normalize_phone(raw) == normal


def test_user_id_rules_1_5_and_placeholders_6_2() -> None:
    assert values.normalize_user_id(" u1 ") == "u1"
    assert values.normalize_user_id(42) == "42"
    assert values.normalize_user_id("   ") is None
    for bad in (True, 1.5, None, ["x"], "x" * 257):
        with pytest.raises(ValidationFailed):
            values.normalize_user_id(bad)
    for placeholder in ("undefined", "NULL", "None", "nil", "NaN", "anonymous", "[object Object]", "0"):
        assert values.is_placeholder_user_id(placeholder)
    assert not values.is_placeholder_user_id("00")


def test_tracked_at_window_8_3() -> None:
    assert values.tracked_at(NOW, NOW) == NOW
    assert values.tracked_at("2020-01-01T00:00:00", NOW) == 1577836800.0  # no offset means UTC
    assert values.tracked_at("2020-01-01T00:00:00Z", NOW) == 1577836800.0
    assert values.tracked_at("2020-01-01T02:00:00+02:00", NOW) == 1577836800.0
    for bad in (NOW * 1000, 946684799, NOW + 86401, "yesterday", True, 10**400, float("inf"), None):
        with pytest.raises(ValidationFailed):
            values.tracked_at(bad, NOW)


def test_find_nul_reports_the_path_1_2() -> None:
    assert values.find_nul({"a": {"b": ["ok", "x\x00"]}}) == "a.b[1]"
    assert values.find_nul({"a\x00": 1}) == "a\x00"
    assert values.find_nul({"a": "fine"}) is None
