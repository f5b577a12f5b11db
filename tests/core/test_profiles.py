"""Profile rules without storage: §9.3.1 field table, matching and merging (I10), §9.3.4 PATCH."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from hellotext.core.identity import Unverified
from hellotext.core.profiles import Profile, parse_profile_input, plan_create, plan_patch
from hellotext.errors import ValidationFailed


def problem_of(body: dict[str, Any], *, patch: bool = False) -> tuple[str, str | None]:
    with pytest.raises(ValidationFailed) as caught:
        parse_profile_input(body, patch=patch)
    first = caught.value.problems[0]
    return first.type, first.parameter


def profile(pid: str, **fields: Any) -> Profile:
    base = Profile(
        id=pid,
        first_name=None,
        last_name=None,
        email=None,
        phone=None,
        reference=None,
        properties={},
        unverified=Unverified(None, None, None, {}),
        identities=[],
        created_at=1.0,
        updated_at=1.0,
    )
    return replace(base, **fields)


def finder(*profiles: Profile) -> Any:
    def find(column: str, value: str) -> Profile | None:
        return next((p for p in profiles if getattr(p, column) == value), None)

    return find


def test_empty_body_is_valid_9_3_1() -> None:
    assert parse_profile_input({}).values == {}


def test_email_forms_and_normalisation_1_5() -> None:
    assert parse_profile_input({"email": " John@Example.COM "}).values == {"email": "john@example.com"}
    assert parse_profile_input({"email": {"primary": "a@b.co"}}).values == {"email": "a@b.co"}
    assert parse_profile_input({"email[primary]": "A@B.CO"}).values == {"email": "a@b.co"}
    # The same value in two forms is not ambiguous.
    assert parse_profile_input({"email": "a@b.co", "email[primary]": "A@b.co "}).values == {"email": "a@b.co"}
    assert problem_of({"email": "a@b.co", "email[primary]": "c@d.co"}) == ("ambiguous_parameter", "email")
    for bad in ("nope", "a@b", "a b@c.co", "@b.co", "a@@b.co", "a@b..co", "", "x" * 250 + "@b.co"):
        assert problem_of({"email": bad}) == ("invalid", "email"), bad
    assert problem_of({"email": 5}) == ("invalid", "email")
    assert problem_of({"email": {"primary": "bad"}}) == ("invalid", "email.primary")
    assert problem_of({"email": {"other": "a@b.co"}}) == ("invalid", "email")
    assert problem_of({"email[primary]": "bad"}) == ("invalid", "email[primary]")


def test_phone_forms_and_normalisation_1_5() -> None:
    assert parse_profile_input({"phone": " +598 (99) 123-456 "}).values == {"phone": "+59899123456"}
    assert parse_profile_input({"phone": {"mobile": "+59899123456"}}).values == {"phone": "+59899123456"}
    assert parse_profile_input({"phone[mobile]": "+5989.912.3456"}).values == {"phone": "+59899123456"}
    assert problem_of({"phone": "+59899123456", "phone[mobile]": "+59899123457"}) == (
        "ambiguous_parameter",
        "phone",
    )
    for bad in ("099123456", "+0991234567", "+12345", "+1234567890123456", "+598abc12345"):
        assert problem_of({"phone": bad}) == ("invalid", "phone"), bad


def test_other_fields_9_3_1() -> None:
    assert problem_of({"first_name": 3}) == ("invalid", "first_name")
    assert problem_of({"last_name": "x" * 257}) == ("invalid", "last_name")
    assert problem_of({"reference": "x" * 257}) == ("invalid", "reference")
    assert problem_of({"properties": []}) == ("invalid", "properties")
    assert problem_of({"properties": {"": 1}}) == ("invalid", "properties")
    assert problem_of({"properties": {"k" * 65: 1}}) == ("invalid", "properties")
    assert problem_of({"session": "a b"}) == ("invalid", "session")
    ok = parse_profile_input(
        {"properties": {"k" * 64: {"nested": [1]}}, "session": "s-1", "first_name": None}
    )
    assert ok.values == {"properties": {"k" * 64: {"nested": [1]}}}
    assert ok.session == "s-1"


def test_patch_keeps_nulls_and_ignores_session_9_3_4() -> None:
    parsed = parse_profile_input(
        {"first_name": None, "email": None, "properties": None, "session": "x y"}, patch=True
    )
    assert parsed.values == {"first_name": None, "email": None, "properties": None}
    assert parsed.session is None


def test_no_match_creates_9_3_1() -> None:
    plan = plan_create({"email": "a@b.co"}, finder())
    assert plan.match is None
    assert plan.changes == {"email": "a@b.co"}


def test_match_by_email_then_phone_fills_nulls_i10() -> None:
    owner = profile("P", email="a@b.co", first_name="Ann", properties={"plan": "gold"})
    plan = plan_create(
        {
            "email": "a@b.co",
            "first_name": "Other",
            "last_name": "Lee",
            "properties": {"plan": "x", "tier": 2},
        },
        finder(owner),
    )
    assert plan.match is owner
    assert plan.changes == {"last_name": "Lee", "properties": {"plan": "gold", "tier": 2}}
    by_phone = profile("Q", phone="+59899123456")
    plan = plan_create({"email": "new@b.co", "phone": "+59899123456"}, finder(owner, by_phone))
    assert plan.match is by_phone
    assert plan.changes == {"email": "new@b.co"}


def test_email_and_phone_of_two_profiles_conflict_9_3_1() -> None:
    a = profile("A", email="a@b.co")
    b = profile("B", phone="+59899123456")
    with pytest.raises(ValidationFailed) as caught:
        plan_create({"email": "a@b.co", "phone": "+59899123456"}, finder(a, b))
    assert (caught.value.problems[0].type, caught.value.problems[0].parameter) == (
        "parameter_not_unique",
        "phone",
    )


def test_reference_owner_rule_9_3_1() -> None:
    a = profile("A", email="a@b.co", reference="r1")
    b = profile("B", reference="r2")
    # Owned by the match: fine.
    assert plan_create({"email": "a@b.co", "reference": "r1"}, finder(a, b)).match is a
    for values in (
        {"email": "a@b.co", "reference": "r2"},
        {"reference": "r2"},
        {"email": "z@b.co", "reference": "r1"},
    ):
        with pytest.raises(ValidationFailed) as caught:
            plan_create(values, finder(a, b))
        assert caught.value.problems[0].parameter == "reference"


def test_patch_semantics_9_3_4() -> None:
    current = profile("P", first_name="Ann", email="a@b.co", properties={"a": 1, "b": 2})
    changes = plan_patch(
        current,
        {"first_name": None, "phone": "+59899123456", "properties": {"a": None, "c": 3}},
        finder(current),
    )
    assert changes == {"first_name": None, "phone": "+59899123456", "properties": {"b": 2, "c": 3}}
    assert plan_patch(current, {"properties": None}, finder(current)) == {"properties": {}}
    assert plan_patch(current, {"email": "a@b.co"}, finder(current)) == {}
    other = profile("Q", email="q@b.co", reference="rq")
    for field, value in (("email", "q@b.co"), ("reference", "rq")):
        with pytest.raises(ValidationFailed) as caught:
            plan_patch(current, {field: value}, finder(current, other))
        assert (caught.value.problems[0].type, caught.value.problems[0].parameter) == (
            "parameter_not_unique",
            field,
        )


def test_profile_object_6_1() -> None:
    body = profile(
        "P", identities=[("", "u1"), ("shopify", "u2")], created_at=10.7, updated_at=11.2
    ).as_json()
    assert body["type"] == "profile"
    assert body["identities"] == [{"source": None, "user_id": "u1"}, {"source": "shopify", "user_id": "u2"}]
    assert body["unverified"] == {"email": None, "phone": None, "name": None}
    assert body["traits"] == {}
    assert (body["created_at"], body["updated_at"]) == (10, 11)
