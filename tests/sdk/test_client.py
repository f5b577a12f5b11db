"""`Client`: every private endpoint by its resource name (http-api §9), typed errors (§3), pagination (§1.4).

Against the live server; the sink only stands in for answers the server cannot be made to give on demand
(a 429 with ``Retry-After``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hellotext import (
    Client,
    HellotextError,
    IdentityConflict,
    NotFound,
    RateLimited,
    ServerUnavailable,
    Unauthorized,
    ValidationFailed,
)
from tests.conftest import Tenant
from tests.sdk.sink import Answer, Sink
from tests.servers import free_port


@pytest.fixture
def client(server: str, tenant: Tenant) -> Iterator[Client]:
    with Client(tenant.token, api_root=server + "/v1/") as value:
        yield value


def test_profiles_9_3(client: Client) -> None:
    """§9.3: create (and match by email, I10), get, list with filters across pages, update, erase."""
    made = [client.profiles.create(email=f"p{n}@example.com", reference=f"r{n}") for n in range(5)]
    again = client.profiles.create(email="P0@Example.com", first_name="Zero")
    assert again["id"] == made[0]["id"] and again["first_name"] == "Zero"  # merged into the match
    assert client.profiles.get(made[1]["id"])["email"] == "p1@example.com"
    listed = [p["id"] for p in client.profiles.list(page_size=2)]  # three pages
    assert listed == [p["id"] for p in reversed(made)]
    assert [p["id"] for p in client.profiles.list(email=" p3@EXAMPLE.com ")] == [made[3]["id"]]
    assert [p["id"] for p in client.profiles.list(reference="r4")] == [made[4]["id"]]
    updated = client.profiles.update(
        made[2]["id"], last_name="Two", reference=None, properties={"plan": "gold"}
    )
    assert (
        updated["last_name"] == "Two"
        and updated["reference"] is None
        and updated["properties"] == {"plan": "gold"}
    )
    client.profiles.erase(made[2]["id"])
    with pytest.raises(NotFound) as caught:
        client.profiles.get(made[2]["id"])
    assert caught.value.status == 404 and caught.value.problems[0].parameter == "id"


def test_sessions_and_timeline_9_2_9_3_6(client: Client) -> None:
    """§9.2, §9.3.6-7: attach, list by profile, profile sessions, timeline filter by action."""
    profile = client.profiles.create(reference="timeline")
    for session in ("s-a", "s-b"):
        client.sessions.attach(session, profile=profile["id"])
    assert {s["id"] for s in client.sessions.list(profile=profile["id"], page_size=1)} == {"s-a", "s-b"}
    assert {s["id"] for s in client.profiles.sessions(profile["id"])} == {"s-a", "s-b"}
    client.events.track("page.viewed", session="s-a", url="https://shop.example.com/")
    client.events.track("page.viewed", profile=profile["id"], url="https://shop.example.com/x")
    assert len(list(client.profiles.events(profile["id"], action="page.viewed"))) == 2
    assert list(client.profiles.events(profile["id"], action="order.placed")) == []
    with pytest.raises(NotFound):
        client.sessions.get("never-seen")
    with pytest.raises(NotFound):
        list(client.sessions.list(profile="nope"))


def test_attribution_events_are_idempotent_and_conflicts_are_typed_9_4(client: Client) -> None:
    """§9.4: the returned key makes a repeat store nothing; a session owned by another profile is refused
    as IdentityConflict (422 identity_assigned)."""
    one = client.profiles.create(reference="one")
    two = client.profiles.create(reference="two")
    key = client.events.track(
        "page.viewed", profile=one["id"], session="s-attr", url="https://s.example.com/"
    )
    assert client.sessions.get("s-attr")["profile"] == one["id"]  # attached in the same transaction
    assert client.events.track("page.viewed", profile=one["id"], id=key, url="https://s.example.com/") == key
    assert len(list(client.profiles.events(one["id"]))) == 1
    with pytest.raises(IdentityConflict) as caught:
        client.events.track("page.viewed", profile=two["id"], session="s-attr", url="https://s.example.com/")
    assert caught.value.status == 422 and caught.value.problems[0].parameter == "session"


def test_links_9_5(client: Client) -> None:
    """§9.5: create, batch (request order), get, list filtered by campaign."""
    profile = client.profiles.create(reference="links")
    link = client.links.create(
        "https://shop.example.com/sale?ref=sms#top",
        profile=profile["id"],
        campaign="spring",
        utm={"source": "sms"},
    )
    assert link["profile"] == profile["id"] and len(link["code"]) == 8
    batch = client.links.batch(
        [{"destination": f"https://shop.example.com/{n}", "campaign": "fall"} for n in range(3)]
    )
    assert [x["destination"] for x in batch] == [f"https://shop.example.com/{n}" for n in range(3)]
    assert client.links.get(link["id"]) == link
    assert {x["id"] for x in client.links.list(campaign="fall", page_size=2)} == {x["id"] for x in batch}
    assert [x["id"] for x in client.links.list(profile=profile["id"])] == [link["id"]]


def test_actions_and_validation_errors_9_1_3(client: Client) -> None:
    """§9.1, §3: declare and list actions; ValidationFailed carries the server's entries."""
    action = client.actions.create("loyalty.joined", description="joined the club")
    assert [a["name"] for a in client.actions.list()] == ["loyalty.joined"]
    assert action["description"] == "joined the club"
    with pytest.raises(ValidationFailed) as caught:
        client.actions.create("loyalty.joined")
    assert ("parameter_not_unique", "name") in {(e["type"], e["parameter"]) for e in caught.value.errors}
    with pytest.raises(ValidationFailed) as caught:
        client.actions.create("Not Valid!")
    assert caught.value.errors[0]["message"] == caught.value.errors[0]["description"]
    assert isinstance(caught.value, HellotextError)


def test_public_id_is_unauthorized_2(server: str, tenant: Tenant) -> None:
    """§2: a public id on a private endpoint → Unauthorized."""
    with Client(tenant.public_id, api_root=server + "/v1") as client, pytest.raises(Unauthorized) as caught:
        client.profiles.get("x")
    assert caught.value.status == 401


def test_rate_limited_carries_retry_after(sink: Sink) -> None:
    """§3: 429 → RateLimited with retry_after from the Retry-After header; no retry by the client."""
    sink.script = lambda seen: Answer(
        status=429,
        body={"errors": [{"type": "rate_limited", "description": "slow down"}]},
        headers={"Retry-After": "7"},
    )
    with Client("htsk_x", api_root=sink.api_root) as client, pytest.raises(RateLimited) as caught:
        client.actions.create("a.b")
    assert caught.value.retry_after == 7.0 and caught.value.status == 429
    assert len(sink.requests) == 1


def test_no_server_is_server_unavailable() -> None:
    """No answer at all → ServerUnavailable (status 0)."""
    root = f"http://127.0.0.1:{free_port()}/v1"
    with Client("htsk_x", api_root=root) as client, pytest.raises(ServerUnavailable) as caught:
        client.sessions.get("abc")
    assert caught.value.status == 0


def test_session_ids_are_sent_percent_encoded(client: Client) -> None:
    """§5.1: ids may hold `?`, `#`, `%`, `&`; the client encodes the path segment, the server decodes it."""
    odd = "a?b#c%d&e+f"
    profile = client.profiles.create(reference="odd")
    assert client.sessions.attach(odd, profile=profile["id"])["id"] == odd
    assert client.sessions.get(odd)["profile"] == profile["id"]
