"""Erasure: §6.6, §9.3.5 (I11): no row of the profile, its identities, sessions or events is left."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from click.testing import CliRunner
from sqlalchemy import or_, select

from hellotext.cli import cli
from hellotext.config import Settings
from hellotext.store.database import Database
from hellotext.store.schema import events, identities, links, profiles, sessions
from tests.conftest import Tenant, assert_error
from tests.servers import settings_env


def track(client: httpx.Client, path: str = "/v1/track/events", **body: Any) -> None:
    payload = {"action": "page.viewed", "url": "https://shop.example.com/", **body}
    response = client.post(path, json=payload)
    assert response.status_code == 200, response.text


def rows(database: Database, query: Any) -> list[Any]:
    return list(database.read_sync(lambda c: c.execute(query).all()))


def build_customer(public: httpx.Client, private: httpx.Client) -> dict[str, Any]:
    """A profile with identities, two sessions, anonymous, session-attributed, identity-attributed and
    explicitly attributed events, an idempotency key and a link; plus another customer's event riding
    on one of its sessions."""
    user = f"user-{uuid.uuid4().hex[:8]}"
    s1, s2, stray = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    track(public, session=s1, url="https://shop.example.com/anonymous")
    identified = public.post(
        "/v1/public/identifications", json={"user_id": user, "source": "shop", "session": s1}
    )
    assert identified.json()["session_attached"] is True
    profile = private.get(f"/v1/sessions/{s1}").json()["profile"]
    track(public, session=s2, url="https://shop.example.com/second-session")
    assert private.patch(f"/v1/sessions/{s2}", json={"profile": profile}).status_code == 200
    track(public, session=s1, url="https://shop.example.com/by-session", id=f"key-{user}")
    track(
        public,
        session=stray,
        url="https://shop.example.com/by-identity",
        user_parameters={"id": user, "source": "shop"},
    )
    track(private, "/v1/attribution/events", profile=profile, url="https://shop.example.com/explicit")
    other_user = f"other-{uuid.uuid4().hex[:8]}"
    track(public, session=s1, url="https://shop.example.com/someone-else", user_parameters={"id": other_user})
    link = private.post(
        "/v1/links", json={"destination": "https://shop.example.com/sale", "profile": profile}
    )
    assert link.status_code == 201, link.text
    return {
        "profile": profile,
        "user": user,
        "sessions": [s1, s2],
        "stray": stray,
        "key": f"key-{user}",
        "link": link.json()["id"],
    }


def test_erase_removes_everything_of_the_profile_i11(
    public: httpx.Client, private: httpx.Client, database: Database, tenant: Tenant
) -> None:
    c = build_customer(public, private)
    profile = c["profile"]
    timeline = private.get(f"/v1/profiles/{profile}/events").json()["data"]
    assert len(timeline) == 5
    response = private.delete(f"/v1/profiles/{profile}")
    assert response.status_code == 204
    assert response.content == b""
    b = tenant.pk
    assert rows(database, select(profiles).where(profiles.c.business_id == b, profiles.c.id == profile)) == []
    assert (
        rows(
            database,
            select(identities).where(identities.c.business_id == b, identities.c.profile_id == profile),
        )
        == []
    )
    assert (
        rows(
            database,
            select(sessions).where(
                sessions.c.business_id == b,
                or_(sessions.c.profile_id == profile, sessions.c.id.in_(c["sessions"])),
            ),
        )
        == []
    )
    assert (
        rows(database, select(events).where(events.c.business_id == b, events.c.profile_id == profile)) == []
    )
    left = rows(
        database,
        select(events.c.url).where(events.c.business_id == b, events.c.session_id.in_(c["sessions"])),
    )
    # Only the other customer's event (attributed to them by identity) survives.
    assert [r.url for r in left] == ["https://shop.example.com/someone-else"]
    # Links keep working with no profile.
    assert private.get(f"/v1/links/{c['link']}").json()["profile"] is None
    link_row = rows(
        database, select(links.c.profile_id).where(links.c.business_id == b, links.c.id == c["link"])
    )
    assert link_row[0].profile_id is None
    assert_error(private.get(f"/v1/profiles/{profile}"), 404, "not_found", "id")
    assert_error(private.delete(f"/v1/profiles/{profile}"), 404, "not_found", "id")


def test_after_erasure_ids_start_fresh_6_6(
    public: httpx.Client, private: httpx.Client, database: Database, tenant: Tenant
) -> None:
    c = build_customer(public, private)
    private.delete(f"/v1/profiles/{c['profile']}")
    s1 = c["sessions"][0]
    # An erased session id names a new, unattached session.
    public.post("/v1/public/acks", json={"session": s1})
    fresh = private.get(f"/v1/sessions/{s1}").json()
    assert fresh["profile"] is None and fresh["attached_at"] is None
    # The idempotency key is forgotten: the same key stores a new event.
    track(public, session=s1, url="https://shop.example.com/again", id=c["key"])
    stored = rows(
        database,
        select(events.c.url).where(events.c.business_id == tenant.pk, events.c.client_id == c["key"]),
    )
    assert [r.url for r in stored] == ["https://shop.example.com/again"]
    # The erased identity makes a new profile.
    public.post("/v1/public/identifications", json={"user_id": c["user"], "source": "shop", "session": s1})
    assert private.get(f"/v1/sessions/{s1}").json()["profile"] not in (None, c["profile"])


def test_erase_leaves_other_profiles_and_tenants_alone_6_6(
    public: httpx.Client, private: httpx.Client, database: Database, other_tenant: Tenant, server: str
) -> None:
    keep = build_customer(public, private)
    gone = build_customer(public, private)
    headers = {"Authorization": f"Bearer {other_tenant.token}"}
    with httpx.Client(base_url=server, headers=headers) as other:
        assert_error(other.delete(f"/v1/profiles/{keep['profile']}"), 404, "not_found", "id")
    before = private.get(f"/v1/profiles/{keep['profile']}/events").json()
    assert private.delete(f"/v1/profiles/{gone['profile']}").status_code == 204
    assert private.get(f"/v1/profiles/{keep['profile']}/events").json() == before
    assert private.get(f"/v1/sessions/{keep['sessions'][0]}").json()["profile"] == keep["profile"]


def test_erase_unknown_9_3_5(private: httpx.Client) -> None:
    assert_error(private.delete("/v1/profiles/nope"), 404, "not_found", "id")


def test_erase_is_one_transaction_6_6(
    public: httpx.Client, private: httpx.Client, database: Database, tenant: Tenant
) -> None:
    """A failure half-way (injected: the profile delete raises) leaves every row in place."""
    from hellotext.store import erasure

    c = build_customer(public, private)
    profile = c["profile"]
    count = len(rows(database, select(events.c.id).where(events.c.business_id == tenant.pk)))

    real_delete = erasure.delete

    def failing_delete(table: Any) -> Any:
        if table is profiles:
            raise RuntimeError("injected failure")
        return real_delete(table)

    erasure.delete = failing_delete  # type: ignore[assignment]
    try:
        try:
            database.write_sync(lambda conn: erasure.erase_profile(conn, tenant.pk, profile))
        except RuntimeError:
            pass
        else:
            raise AssertionError("the injected failure did not happen")
    finally:
        erasure.delete = real_delete  # type: ignore[assignment]
    assert len(rows(database, select(events.c.id).where(events.c.business_id == tenant.pk))) == count
    assert private.get(f"/v1/profiles/{profile}").status_code == 200
    assert private.get(f"/v1/sessions/{c['sessions'][0]}").json()["profile"] == profile


def test_cli_erase_i11(
    public: httpx.Client, private: httpx.Client, database: Database, tenant: Tenant, settings: Settings
) -> None:
    c = build_customer(public, private)
    runner = CliRunner()
    args = ["profiles", "erase", tenant.public_id, c["profile"], "--json"]
    result = runner.invoke(cli, args, env=settings_env(settings), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary == {
        "erased": True,
        "profile": c["profile"],
        "events": 5,
        "sessions": 2,
        "identities": 1,
        "links_unlinked": 1,
    }
    assert_error(private.get(f"/v1/profiles/{c['profile']}"), 404, "not_found", "id")
    b = tenant.pk
    assert (
        rows(database, select(events).where(events.c.business_id == b, events.c.profile_id == c["profile"]))
        == []
    )
    assert (
        rows(database, select(sessions).where(sessions.c.business_id == b, sessions.c.id.in_(c["sessions"])))
        == []
    )
    again = runner.invoke(cli, args, env=settings_env(settings))
    assert again.exit_code == 1 and "no profile" in again.output
    unknown = runner.invoke(
        cli, ["profiles", "erase", "no-such-business", c["profile"]], env=settings_env(settings)
    )
    assert unknown.exit_code == 1 and "no business" in unknown.output
