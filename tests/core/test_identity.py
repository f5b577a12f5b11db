"""Identification rules without storage: §8.5 input, §6.3 merge and outcome (I5, I8)."""

from __future__ import annotations

from typing import Any

import pytest

from hellotext.core.identity import (
    Identification,
    Unverified,
    attach_outcome,
    identify,
    merge_unverified,
    parse_identification,
)
from hellotext.errors import ValidationFailed


def problem_of(body: dict[str, Any]) -> tuple[str, str | None]:
    with pytest.raises(ValidationFailed) as caught:
        parse_identification(body)
    first = caught.value.problems[0]
    return first.type, first.parameter


def test_user_id_required_blank_type_length_placeholder_8_5() -> None:
    assert problem_of({}) == ("parameter_missing", "user_id")
    assert problem_of({"user_id": None}) == ("parameter_missing", "user_id")
    assert problem_of({"user_id": "   "}) == ("parameter_invalid_empty", "user_id")
    assert problem_of({"user_id": True}) == ("invalid", "user_id")
    assert problem_of({"user_id": 1.5}) == ("invalid", "user_id")
    assert problem_of({"user_id": ["a"]}) == ("invalid", "user_id")
    assert problem_of({"user_id": "x" * 257}) == ("invalid", "user_id")
    for placeholder in ("undefined", "NULL", " None ", "nil", "NaN", "Anonymous", "[object Object]", "0", 0):
        assert problem_of({"user_id": placeholder}) == ("invalid", "user_id"), placeholder


def test_user_id_normalised_1_5() -> None:
    assert parse_identification({"user_id": "  user_123 "}).user_id == "user_123"
    assert parse_identification({"user_id": 42}).user_id == "42"
    assert parse_identification({"user_id": "x" * 256}).user_id == "x" * 256


def test_field_types_and_lengths_8_5() -> None:
    base = {"user_id": "u1"}
    assert problem_of({**base, "source": 3}) == ("invalid", "source")
    assert problem_of({**base, "source": "s" * 65}) == ("invalid", "source")
    assert problem_of({**base, "email": 5}) == ("invalid", "email")
    assert problem_of({**base, "email": "a" * 250 + "@b.co"}) == ("invalid", "email")
    assert problem_of({**base, "phone": {"x": 1}}) == ("invalid", "phone")
    assert problem_of({**base, "phone": "1" * 33}) == ("invalid", "phone")
    assert problem_of({**base, "name": False}) == ("invalid", "name")
    assert problem_of({**base, "name": "n" * 257}) == ("invalid", "name")
    assert problem_of({**base, "session": "has space"}) == ("invalid", "session")


def test_values_normalised_and_traits_kept_8_5() -> None:
    ident = parse_identification(
        {
            "user_id": "u1",
            "source": " Shopify ",
            "email": "  John@Example.COM ",
            "phone": " +598 99 ",
            "name": " John Doe ",
            "session": "undefined",
            "plan": "gold",
            "age": 3,
        }
    )
    assert ident == Identification(
        session=None,
        source="shopify",
        user_id="u1",
        email="john@example.com",
        phone="+598 99",
        name="John Doe",
        traits={"plan": "gold", "age": 3},
    )
    # Email is stored trimmed and lowercased but not otherwise validated; blanks count as absent.
    loose = parse_identification({"user_id": "u1", "email": "not-an-email", "name": "  "})
    assert loose.email == "not-an-email"
    assert loose.name is None
    assert parse_identification({"user_id": "u1", "source": "  "}).source == ""


def test_merge_unverified_replaces_non_blank_and_merges_traits_6_3() -> None:
    current = Unverified(email="old@example.com", phone=None, name="Old", traits={"a": 1, "b": 2})
    ident = Identification(session=None, source="", user_id="u", email="new@example.com", traits={"b": 3})
    assert merge_unverified(current, ident) == {
        "unverified_email": "new@example.com",
        "traits": {"a": 1, "b": 3},
    }
    # Repeating the same identification changes nothing.
    after = Unverified(email="new@example.com", phone=None, name="Old", traits={"a": 1, "b": 3})
    assert merge_unverified(after, ident) == {}


def test_attach_outcome_6_3() -> None:
    assert attach_outcome("P", "P", True) == "attached"
    assert attach_outcome("P", "P", False) == "already_attached"
    assert attach_outcome("P", "Q", False) == "conflict"


class FakeStore:
    """An in-memory IdentityStore: the rule is tested, not SQL (storage is tested over HTTP)."""

    def __init__(self) -> None:
        self.identities: dict[tuple[str, str], str] = {}
        self.profiles: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, str | None] = {}
        self.updates = 0

    def resolve_identity(self, source: str, user_id: str, now: float) -> tuple[str, bool]:
        key = (source, user_id)
        if key in self.identities:
            return self.identities[key], False
        pid = f"p{len(self.profiles) + 1}"
        self.profiles[pid] = {}
        self.identities[key] = pid
        return pid, True

    def unverified(self, profile_id: str) -> Unverified:
        p = self.profiles[profile_id]
        return Unverified(
            p.get("unverified_email"),
            p.get("unverified_phone"),
            p.get("unverified_name"),
            p.get("traits", {}),
        )

    def update_profile(self, profile_id: str, changes: dict[str, Any], now: float) -> None:
        self.updates += 1
        self.profiles[profile_id].update(changes)

    def see_session(self, session_id: str, now: float) -> None:
        self.sessions.setdefault(session_id, None)

    def attach_session(
        self, session_id: str, profile_id: str, via: str, now: float
    ) -> tuple[str | None, bool]:
        if self.sessions[session_id] is None:
            self.sessions[session_id] = profile_id
            return profile_id, True
        return self.sessions[session_id], False


def test_identify_flow_i5_i8() -> None:
    store = FakeStore()
    first = identify(store, parse_identification({"user_id": "u1", "session": "s1", "email": "a@b.co"}), 1.0)
    assert (first.profile_created, first.outcome, first.session_attached) == (True, "attached", True)
    again = identify(store, parse_identification({"user_id": "u1", "session": "s1", "email": "a@b.co"}), 2.0)
    assert (again.profile_id, again.profile_created, again.outcome) == (
        first.profile_id,
        False,
        "already_attached",
    )
    assert store.updates == 1  # the repeat wrote nothing
    other = identify(store, parse_identification({"user_id": "u2", "session": "s1"}), 3.0)
    assert other.profile_id != first.profile_id
    assert other.as_json() == {
        "status": "identified",
        "session": "s1",
        "session_attached": False,
        "session_conflict": True,
    }
    assert store.sessions["s1"] == first.profile_id
    none = identify(store, parse_identification({"user_id": "u3"}), 4.0)
    assert none.outcome == "no_session"
    assert none.as_json()["session_attached"] is False and none.as_json()["session_conflict"] is False
