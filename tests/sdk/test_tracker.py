"""`Hellotext` / `AsyncHellotext`: the browser SDK's session and identity rules in Python.

Against the stand-in sink (a real HTTP server in a thread), which lets a test make the API answer a
conflict, a 422 or nothing at all. The whole story against the real server is in ``test_story.py``.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from hellotext import (
    AsyncHellotext,
    DeliveryOptions,
    FileCookieJar,
    Hellotext,
    InvalidEvent,
    MemoryCookieJar,
    ServerUnavailable,
    ValidationFailed,
)
from hellotext.sdk.fingerprint import fingerprint
from tests.sdk.sink import Answer, Seen, Sink
from tests.servers import free_port

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
SYNC = DeliveryOptions(sync=True)
IDENTIFY = "/v1/public/identifications"


def tracker(sink: Sink, **kwargs: Any) -> Hellotext:
    kwargs.setdefault("delivery", SYNC)
    return Hellotext("biz", api_root=sink.api_root + "/", **kwargs)


def test_initialize_writes_and_announces_the_session_s1_s2_s4(sink: Sink) -> None:
    """S1, S2, S4: a minted session is written to the jar and announced, also when read back."""
    seen: list[str] = []
    jar = MemoryCookieJar()
    with tracker(sink, cookies=jar, listeners={"session-set": [seen.append]}) as first:
        assert first.is_initialized
        assert UUID4.fullmatch(first.session or "")
        assert jar.get("hello_session") == first.session
    assert seen == [first.session]
    with tracker(sink, cookies=jar, listeners={"session-set": [seen.append]}) as second:
        assert second.session == first.session  # read back from the cookie, and announced again
    assert seen == [first.session, first.session]
    assert sink.requests == []  # S5: initialisation makes no request


def test_url_parameter_wins_over_option_and_cookie_s1(sink: Sink) -> None:
    """S1: ?hello_session= wins over the session option, which wins over the cookie."""
    jar = MemoryCookieJar({"hello_session": "from-cookie"})
    with tracker(
        sink, cookies=jar, session="from-option", url="https://s.example.com/?hello_session=from-url"
    ) as t:
        assert t.session == "from-url"
    with tracker(sink, cookies=jar, session="from-option") as t:
        assert t.session == "from-option"
    with tracker(sink, cookies=MemoryCookieJar({"hello_session": "c"}), session="undefined") as t:
        assert t.session == "c"


def test_no_generation_leaves_no_session_s3(sink: Sink) -> None:
    """S3: generation off and nothing found: no session, nothing written, no announce; track still works."""
    seen: list[str] = []
    jar = MemoryCookieJar()
    with tracker(
        sink, cookies=jar, auto_generate_session=False, listeners={"session-set": [seen.append]}
    ) as t:
        assert t.session is None and not t.is_initialized
        assert jar.as_dict() == {} and seen == []
        t.track("page.viewed", url="https://s.example.com/")
    [event] = sink.events()
    assert "session" not in event


def test_cookie_rotation_by_another_holder_is_adopted_4_3(sink: Sink, tmp_path: Path) -> None:
    """§4.3: a session written to the shared jar by another holder is adopted and announced."""
    path = tmp_path / "cookies.json"
    seen: list[str] = []
    with tracker(sink, cookies=FileCookieJar(path), listeners={"session-set": [seen.append]}) as one:
        with tracker(sink, cookies=FileCookieJar(path)) as two:
            assert two.session == one.session
            two.forget(new_session=True)
            assert one.session == two.session
        assert seen[-1] == two.session and len(seen) == 2


def test_listeners_6(sink: Sink) -> None:
    """§6: unknown names raise InvalidEvent; removal; a failing listener does not stop the others."""
    with tracker(sink) as t:
        with pytest.raises(InvalidEvent):
            t.on("session-changed", print)
        with pytest.raises(InvalidEvent):
            t.remove_listener("nope", print)
        t.on("forms:collected", print)  # accepted, never emitted
        calls: list[str] = []

        def broken(value: str) -> None:
            raise RuntimeError("listener bug")

        t.on("session-set", broken)
        t.on("session-set", calls.append)
        t.remove_listener("session-set", print)  # unknown callback: no-op
        t.forget(new_session=True)
        assert calls == [t.session]
        t.remove_listener("session-set", calls.append)
        t.forget(new_session=True)
        assert len(calls) == 1


def test_track_body_7_3(sink: Sink) -> None:
    """§7.3: session, remembered identity as user_parameters, action, params (callers may override),
    page from the URL, UTM from hello_utm; no headers key."""
    url = "https://shop.example.com/p/1?utm_source=news&utm_medium=email"
    jar = MemoryCookieJar(
        {"hello_session": "s-1", "hello_user_id": "user_123", "hello_user_source": "shopify"}
    )
    with tracker(sink, cookies=jar, url=url) as t:
        key = t.track(
            "product.viewed",
            object_parameters={"name": "Blue shirt", "reference": "sku-1"},
            headers={"X-Extra": "1"},
        )
        t.track("page.viewed", user_parameters={"id": "other"}, url="https://shop.example.com/q")
    first, second = sink.events()
    assert first["id"] == key
    assert list(first)[:3] == ["session", "user_parameters", "action"]
    assert first["session"] == "s-1"
    assert first["user_parameters"] == {"id": "user_123", "source": "shopify"}
    assert first["object_parameters"] == {"name": "Blue shirt", "reference": "sku-1"}
    assert first["page"] == {"url": url, "path": "/p/1"}
    assert first["utm_params"]["source"] == "news" and first["utm_params"]["medium"] == "email"
    assert "headers" not in first
    assert second["user_parameters"] == {"id": "other"}
    assert second["page"] == {"url": "https://shop.example.com/q", "path": "/q"}
    assert second["id"] != first["id"]


def test_preview_sends_nothing_7_2(sink: Sink) -> None:
    """§7.2: a page URL with hello_preview makes track send nothing."""
    with tracker(sink, url="https://s.example.com/?hello_preview=1") as t:
        t.track("page.viewed")
    assert sink.requests == []


def test_identify_payload_and_dedupe_8_1_8_3_i6(sink: Sink) -> None:
    """§8.1, I6: the SDK's session and user_id win; identity remembered; the same call again sends nothing;
    a changed array order sends again."""
    jar = MemoryCookieJar({"hello_session": "abc"})
    with tracker(sink, cookies=jar) as t:
        result = t.identify(
            "user_123", source="shopify", email="john@example.com", tags=["a", "b"], session="x"
        )
        assert result.succeeded and result.status == 200
        again = t.identify("user_123", source="shopify", email="john@example.com", tags=["a", "b"])
        assert again.succeeded and again.data == {"already_identified": True} and again.status is None
        t.identify("user_123", source="shopify", email="john@example.com", tags=["b", "a"])
    first, third = sink.posts(IDENTIFY)
    assert first.body == {
        "source": "shopify",
        "email": "john@example.com",
        "tags": ["a", "b"],
        "session": "abc",
        "user_id": "user_123",
    }
    assert third.body["tags"] == ["b", "a"]
    assert jar.get("hello_user_id") == "user_123" and jar.get("hello_user_source") == "shopify"
    assert jar.get("hello_user_identification_hash") == fingerprint(third.body)


def test_identify_without_source_forgets_the_old_source_8_3(sink: Sink) -> None:
    """§8.3: an identify without source deletes hello_user_source; a numeric id is kept as its string."""
    jar = MemoryCookieJar({"hello_session": "abc", "hello_user_source": "shopify"})
    with tracker(sink, cookies=jar) as t:
        assert t.identify(42).succeeded
    assert jar.get("hello_user_id") == "42"
    assert jar.get("hello_user_source") is None
    assert sink.posts(IDENTIFY)[0].body == {"session": "abc", "user_id": 42}


def test_conflict_rotates_the_session_once_8_4_i8(sink: Sink) -> None:
    """I8 / §8.4: session_conflict → a new session, written and announced, and one more identification;
    that second answer decides, even if it is a conflict again."""

    def conflict(seen: Seen) -> Answer | None:
        if seen.path == IDENTIFY:
            body = {"status": "identified", "session": seen.body["session"], "session_conflict": True}
            return Answer(body={**body, "session_attached": False})
        return None

    sink.script = conflict
    seen: list[str] = []
    jar = MemoryCookieJar({"hello_session": "shared"})
    with tracker(sink, cookies=jar, listeners={"session-set": [seen.append]}) as t:
        result = t.identify("user_123", source="shopify")
        new = t.session
    first, second = sink.posts(IDENTIFY)  # exactly two: rotation happens at most once per call
    assert first.body["session"] == "shared"
    assert new is not None and UUID4.fullmatch(new) and second.body["session"] == new
    assert seen == ["shared", new]
    assert result.succeeded and result.data["session_conflict"] is True
    assert jar.get("hello_session") == new
    assert jar.get("hello_user_identification_hash") == fingerprint(second.body)


def test_identify_failure_changes_no_cookie_and_raises_only_in_debug_8_1(sink: Sink) -> None:
    """§8.1 step 6 and the style rule: a refusal is a failed Result (logged); debug=True raises it typed."""
    error = {"type": "invalid", "parameter": "user_id", "description": "bad", "message": "bad"}
    sink.script = lambda seen: Answer(status=422, body={"errors": [error]})
    jar = MemoryCookieJar({"hello_session": "abc"})
    with tracker(sink, cookies=jar) as t:
        result = t.identify("undefined")
        assert result.failed and result.status == 422 and result.data == {"errors": [error]}
    assert jar.get("hello_user_id") is None and jar.get("hello_user_identification_hash") is None
    with tracker(sink, cookies=jar, debug=True) as t, pytest.raises(ValidationFailed) as caught:
        t.identify("undefined")
    assert caught.value.status == 422 and caught.value.errors == [error]


def test_identify_network_failure_resolves_failed_10_1() -> None:
    """§10.1: no answer → a failed Result with no data; debug=True raises ServerUnavailable."""
    root = f"http://127.0.0.1:{free_port()}/v1"
    with Hellotext("biz", api_root=root) as t:
        result = t.identify("user_1")
        assert result.failed and result.data is None and result.status is None
    with Hellotext("biz", api_root=root, debug=True) as t, pytest.raises(ServerUnavailable):
        t.identify("user_1")


def test_forget_keeps_the_session_i7_9(sink: Sink) -> None:
    """I7 / §9: forget deletes the identity cookies, keeps hello_session, makes no request."""
    jar = MemoryCookieJar({"hello_session": "abc"})
    with tracker(sink, cookies=jar) as t:
        t.identify("u1", source="web")
        requests = len(sink.requests)
        t.forget()
        assert jar.as_dict() == {"hello_session": "abc"} and t.session == "abc"
        t.track("page.viewed", url="https://s.example.com/")
        t.forget(new_session=True)
        assert t.session != "abc" and UUID4.fullmatch(t.session or "")
    assert len(sink.requests) == requests + 1
    assert sink.events()[-1]["user_parameters"] == {}


def test_bind_shares_the_delivery(sink: Sink) -> None:
    """A bound tracker has its own visitor but the parent's delivery; closing it closes nothing."""
    with tracker(sink, delivery=DeliveryOptions(flush_interval=0.05), auto_generate_session=False) as root:
        visitor = root.bind(cookies=MemoryCookieJar({"hello_session": "v-1"}))
        assert visitor.delivery is root.delivery and visitor.session == "v-1"
        visitor.track("page.viewed", url="https://s.example.com/")
        assert visitor.close()
        assert root.flush(10)
    assert [e["session"] for e in sink.events()] == ["v-1"]


def test_constructor_checks() -> None:
    """§3 step 1: the business id must be a non-empty string; the API root an http(s) URL."""
    with pytest.raises(TypeError):
        Hellotext(42, api_root="http://127.0.0.1/v1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Hellotext("", api_root="http://127.0.0.1/v1")
    with pytest.raises(ValueError):
        Hellotext("biz", api_root="127.0.0.1/v1")


def test_async_tracker_identify_and_track(sink: Sink) -> None:
    """AsyncHellotext follows the same rules: conflict rotation, dedupe, background and sync track."""
    calls = {"n": 0}

    def first_conflicts(seen: Seen) -> Answer | None:
        if seen.path == IDENTIFY:
            calls["n"] += 1
            return Answer(body={"status": "identified", "session_conflict": calls["n"] == 1})
        return None

    sink.script = first_conflicts

    async def main() -> None:
        jar = MemoryCookieJar({"hello_session": "shared"})
        async with AsyncHellotext("biz", api_root=sink.api_root, cookies=jar) as t:
            result = await t.identify("u1", source="web")
            assert result.succeeded and t.session != "shared"
            assert (await t.identify("u1", source="web")).data == {"already_identified": True}
            await t.track("page.viewed", url="https://s.example.com/")
            assert await t.flush(10)
        async with AsyncHellotext("biz", api_root=sink.api_root, cookies=jar, delivery=SYNC) as t:
            await t.track("page.viewed", url="https://s.example.com/")

    asyncio.run(main())
    assert len(sink.posts(IDENTIFY)) == 2
    events = sink.events()
    assert len(events) == 2 and all(e["user_parameters"] == {"id": "u1", "source": "web"} for e in events)
    assert json.dumps(events)  # plain JSON
