"""The seed page's story told in Python, against the live server (S1-S6, I1-I4, I3 conflict, I5-I8).

A visitor browses anonymously (`Hellotext.track`), the backend learns who they are and attaches the session
(`Client.sessions.attach`, I2), the profile's timeline then shows the anonymous events (I4), and attaching
the same session to another profile is refused with the owner named (I3).
"""

from __future__ import annotations

import asyncio

import pytest

from hellotext import (
    AsyncClient,
    AsyncHellotext,
    Client,
    DeliveryOptions,
    Hellotext,
    IdentityConflict,
    MemoryCookieJar,
)
from tests.conftest import Tenant


def test_the_seed_story_in_python_i1_i2_i3_i4(server: str, tenant: Tenant) -> None:
    """I1 → I2 → I4 → I3: anonymous events, backend attach, the timeline, a refused second attach."""
    api = server + "/v1"
    jar = MemoryCookieJar()
    with Hellotext(tenant.public_id, api_root=api, cookies=jar) as visitor:
        session = visitor.session
        assert session is not None
        for path in ("/", "/p/1", "/cart"):
            visitor.track("page.viewed", url="https://shop.example.com" + path)
        assert visitor.flush(30)
        assert visitor.delivery.stats.delivered == 3

    with Client(tenant.token, api_root=api) as client:
        assert client.sessions.get(session)["profile"] is None  # I1: anonymous until attached
        john = client.profiles.create(email="john@example.com", first_name="John")
        attached = client.sessions.attach(session, profile=john["id"])
        assert attached["profile"] == john["id"] and attached["attached_via"] == "api"
        assert client.sessions.attach(session, profile=john["id"]) == attached  # idempotent (I3)

        timeline = list(client.profiles.events(john["id"]))
        assert [e["page"]["path"] for e in timeline] == ["/cart", "/p/1", "/"]  # newest first (I4)
        assert {e["session"] for e in timeline} == {session}
        assert all(e["profile"] == john["id"] for e in timeline)

        jane = client.profiles.create(email="jane@example.com")
        with pytest.raises(IdentityConflict) as caught:
            client.sessions.attach(session, profile=jane["id"])
        assert caught.value.status == 409
        assert caught.value.owner == john["id"]
        assert caught.value.session is not None and caught.value.session["id"] == session
        assert caught.value.errors[0]["type"] == "identity_assigned"
        assert list(client.profiles.events(jane["id"])) == []


def test_identify_from_python_and_conflict_rotation_i5_i6_i8(server: str, tenant: Tenant) -> None:
    """I5, I6, I8 against the server: identify attaches; the same call again sends nothing; identifying
    another customer on a session already attached rotates to a fresh session."""
    api = server + "/v1"
    jar = MemoryCookieJar()
    with Hellotext(tenant.public_id, api_root=api, cookies=jar, delivery=DeliveryOptions(sync=True)) as page:
        first_session = page.session
        result = page.identify("user_123", source="shopify", email="john@example.com", name="John")
        assert result.succeeded and result.data["session_attached"] is True
        assert page.identify("user_123", source="shopify", email="john@example.com", name="John").data == {
            "already_identified": True
        }
        page.track("page.viewed", url="https://shop.example.com/")
        page.forget()
        other = page.identify("user_456", source="shopify")
        assert other.succeeded and other.data["session_conflict"] is False  # the second answer decides
        assert page.session != first_session and page.session is not None

    with Client(tenant.token, api_root=api) as client:
        identity = [{"source": "shopify", "user_id": "user_123"}]
        [john] = [p for p in client.profiles.list() if p["identities"] == identity]
        assert client.sessions.get(first_session or "")["profile"] == john["id"]
        assert [e["action"] for e in client.profiles.events(john["id"])] == ["page.viewed"]
        owners = {s["id"]: s["profile"] for s in client.sessions.list()}
        assert owners[page.session or ""] not in (None, john["id"])


def test_async_story(server: str, tenant: Tenant) -> None:
    """The same story with AsyncHellotext and AsyncClient."""
    api = server + "/v1"

    async def main() -> None:
        async with AsyncHellotext(tenant.public_id, api_root=api) as visitor:
            await visitor.track("page.viewed", url="https://shop.example.com/a")
            assert await visitor.flush(30)
            session = visitor.session or ""
        async with AsyncClient(tenant.token, api_root=api) as client:
            profile = await client.profiles.create(reference="wp-1")
            await client.sessions.attach(session, profile=profile["id"])
            events = [e async for e in client.profiles.events(profile["id"])]
            assert [e["page"]["path"] for e in events] == ["/a"]
            other = await client.profiles.create(reference="wp-2")
            with pytest.raises(IdentityConflict) as caught:
                await client.sessions.attach(session, profile=other["id"])
            assert caught.value.owner == profile["id"]

    asyncio.run(main())
