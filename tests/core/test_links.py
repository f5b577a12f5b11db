"""Pure short-link rules: destinations (§9.5.1), bodies and batches (§9.5.2), bots and Location (§10)."""

from __future__ import annotations

from typing import Any

import pytest

from hellotext.core.links import (
    ascii_url,
    check_destination,
    click_utm,
    is_code,
    is_preview_bot,
    iso_millis,
    parse_batch,
    parse_link,
    redirect_location,
)
from hellotext.errors import ValidationFailed

S = "984421ec-733e-42d4-acc5-36cfe9dd1016"
UTM = {"source": "hellotext", "medium": "sms", "campaign": "spring"}


def problems(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[tuple[str, str | None]]:
    return [(p.type, p.parameter) for p in exc.value.problems]


# --- Location (§10) -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("destination", "utm", "expected"),
    [
        # The spec's own example (§12.4).
        (
            "https://shop.example.com/sale?ref=sms#top",
            UTM,
            f"https://shop.example.com/sale?ref=sms&hello_session={S}"
            "&utm_source=hellotext&utm_medium=sms&utm_campaign=spring#top",
        ),
        (
            "https://shop.example.test/product?x=1#top",
            None,
            f"https://shop.example.test/product?x=1&hello_session={S}#top",
        ),
        ("https://x.test", None, f"https://x.test?hello_session={S}"),
        ("https://x.test/", None, f"https://x.test/?hello_session={S}"),
        ("https://x.test/p?", None, f"https://x.test/p?hello_session={S}"),
        # An existing hello_session in the middle is replaced in place; later ones are dropped.
        (
            "https://x.test/p?a=1&hello_session=old&b=2&hello_session=older&c=3",
            None,
            f"https://x.test/p?a=1&hello_session={S}&b=2&c=3",
        ),
        ("https://x.test/p?hello_session", None, f"https://x.test/p?hello_session={S}"),
        ("https://x.test/p?hello%5Fsession=old&a=1", None, f"https://x.test/p?hello_session={S}&a=1"),
        # Other pairs verbatim and in order, duplicates and odd encodings included.
        (
            "https://x.test/p?b=2&a=1&a=1&q=%20x+y&flag",
            None,
            f"https://x.test/p?b=2&a=1&a=1&q=%20x+y&flag&hello_session={S}",
        ),
        ("https://x.test/p?a=1&&b=2&", None, f"https://x.test/p?a=1&b=2&hello_session={S}"),
        # The fragment is kept, even one holding ? and &.
        ("https://x.test/p#frag?x=1&y", None, f"https://x.test/p?hello_session={S}#frag?x=1&y"),
        ("https://x.test/p#", None, f"https://x.test/p?hello_session={S}#"),
        # UTM only when the query lacks the name; percent-encoded.
        (
            "https://x.test/p?utm_source=mail&utm_campaign=",
            UTM,
            f"https://x.test/p?utm_source=mail&utm_campaign=&hello_session={S}&utm_medium=sms",
        ),
        (
            "https://x.test/p",
            {"source": "a b&c=d", "medium": None, "campaign": "ñ/#?"},
            f"https://x.test/p?hello_session={S}&utm_source=a%20b%26c%3Dd&utm_campaign=%C3%B1%2F%23%3F",
        ),
        (
            "https://x.test/p",
            {"source": "", "medium": None, "campaign": None},
            f"https://x.test/p?hello_session={S}",
        ),
        # Non-ASCII outside the host is percent-encoded so the header stays ASCII.
        ("https://x.test/café?q=ü#é", None, f"https://x.test/caf%C3%A9?q=%C3%BC&hello_session={S}#%C3%A9"),
    ],
)
def test_redirect_location_section10(destination: str, utm: dict[str, Any] | None, expected: str) -> None:
    assert redirect_location(destination, S, utm) == expected


def test_redirect_location_never_holds_line_breaks_section10() -> None:
    location = redirect_location("https://x.test/p?a=%0D%0A", S, {"source": "a\r\nSet-Cookie: x=1"})
    assert "\r" not in location and "\n" not in location
    assert location.endswith("utm_source=a%0D%0ASet-Cookie%3A%20x%3D1")
    assert location.isascii()


def test_ascii_url_leaves_ascii_verbatim() -> None:
    assert ascii_url("https://x.test/a%20b?c=d#e") == "https://x.test/a%20b?c=d#e"
    assert ascii_url("https://x.test/ä") == "https://x.test/%C3%A4"


# --- Destinations (§9.5.1) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "destination",
    [
        "https://shop.example.com/sale?ref=sms#top",
        "http://example.com",
        "HTTPS://EXAMPLE.COM/Path",
        "https://example.com:8443/x",
        "http://127.0.0.1:8000/x",
        "http://[::1]:8080/a?b#c",
        "https://shop.example.com/l/abcdefgh",  # a /l/ URL of someone else
        "https://example.com/café",
        "https://example.com/a%20b",
        "https://example.com/" + "a" * 2020,
    ],
)
def test_destination_accepted_section9_5_1(destination: str) -> None:
    assert check_destination(destination, ["http://127.0.0.1:9000"]) == destination


@pytest.mark.parametrize(
    ("destination", "type_"),
    [
        ("javascript:alert(1)", "invalid"),
        ("JavaScript://example.com/%0Aalert(1)", "invalid"),
        ("data:text/html,<script>alert(1)</script>", "invalid"),
        ("vbscript:msgbox", "invalid"),
        ("file:///etc/passwd", "invalid"),
        ("ftp://example.com/x", "invalid"),
        ("//evil.example", "invalid"),
        ("/relative/path", "invalid"),
        ("example.com", "invalid"),
        ("https:evil.example", "invalid"),
        ("https:/evil.example", "invalid"),
        ("https:///evil.example", "invalid"),
        ("https://", "invalid"),
        ("https://:443/", "invalid"),
        ("https://?x", "invalid"),
        ("https:\\\\evil.example", "invalid"),
        ("https:/\\evil.example", "invalid"),
        ("https://good.example\\@evil.example", "invalid"),
        ("https://good.example/\\evil", "invalid"),
        ("https://user@example.com/", "invalid"),
        ("https://user:pass@example.com/", "invalid"),
        ("https://good.example@evil.example/", "invalid"),
        ("https://:@example.com/", "invalid"),
        ("https://example.com:99999/", "invalid"),
        ("https://example.com:8o/", "invalid"),
        ("https://[::1/", "invalid"),
        ("https://[nothost]/", "invalid"),
        ("https://exa%6Dple.com/", "invalid"),
        ("https://exämple.com/", "invalid"),
        ("https://example.com/a b", "invalid"),
        ("https://example.com/\ta", "invalid"),
        (" https://example.com/", "invalid"),
        ("https://example.com/\r\nSet-Cookie: a=1", "invalid"),
        ("https://example.com/\x00", "invalid"),
        ("https://example.com/\x7f", "invalid"),
        ("https://example.com/\x85", "invalid"),
        ("https://example.com/\u2028", "invalid"),
        ("https://example.com/\u00a0", "invalid"),
        ("https://example.com/" + "a" * 2029, "invalid"),  # 2049 characters
        ("", "parameter_invalid_empty"),
        ("   ", "parameter_invalid_empty"),
    ],
)
def test_destination_refused_section9_5_1(destination: str, type_: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        check_destination(destination)
    assert problems(exc) == [(type_, "destination")]


@pytest.mark.parametrize("value", [None, 12, ["https://x.test"], {"url": "https://x.test"}, True])
def test_destination_type_section9_5_1(value: object) -> None:
    with pytest.raises(ValidationFailed) as exc:
        check_destination(value)
    expected = "parameter_missing" if value is None else "invalid"
    assert problems(exc) == [(expected, "destination")]


@pytest.mark.parametrize(
    "destination",
    [
        "https://links.example.test/l/abcdefgh",
        "HTTPS://LINKS.EXAMPLE.TEST:443/l/abcdefgh?x=1",
        "https://links.example.test./l/abcdefgh",
        "https://links.example.test/%6C/abcdefgh",
        "https://links.example.test/x/../l/abcdefgh",
        "https://links.example.test/./l/",
        "http://127.0.0.1:8123/l/abcdefgh",
        "https://short.example.test/go/l/abcdefgh",
    ],
)
def test_destination_not_own_short_link_section9_5_1(destination: str) -> None:
    bases = ["https://links.example.test", "http://127.0.0.1:8123", "https://short.example.test/go"]
    with pytest.raises(ValidationFailed) as exc:
        check_destination(destination, bases)
    assert problems(exc) == [("invalid", "destination")]


@pytest.mark.parametrize(
    "destination",
    [
        "http://links.example.test/l/abcdefgh",  # other scheme, other origin
        "https://links.example.test:8443/l/abcdefgh",
        "https://links.example.test/lx/abcdefgh",
        "https://links.example.test/x/l/abcdefgh",
        "http://127.0.0.1:8124/l/abcdefgh",
        "https://short.example.test/l/abcdefgh",
    ],
)
def test_destination_other_origins_allowed_section9_5_1(destination: str) -> None:
    bases = ["https://links.example.test", "http://127.0.0.1:8123", "https://short.example.test/go"]
    assert check_destination(destination, bases) == destination


# --- Link bodies (§9.5.1) -------------------------------------------------------------------------


def test_parse_link_full_section9_5_1() -> None:
    spec = parse_link(
        {"destination": "https://x.test/", "profile": "P1", "campaign": "spring", "utm": UTM, "extra": 1}
    )
    assert spec.destination == "https://x.test/"
    assert spec.profile == "P1"
    assert spec.campaign == "spring"
    assert spec.utm == UTM


def test_parse_link_utm_partial_and_empty_section9_5_1() -> None:
    spec = parse_link({"destination": "https://x.test/", "utm": {"source": "a"}})
    assert spec.utm == {"source": "a", "medium": None, "campaign": None}
    assert parse_link({"destination": "https://x.test/", "utm": {}}).utm is None
    assert parse_link({"destination": "https://x.test/", "utm": None, "campaign": None}).campaign is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, [("parameter_missing", "destination")]),
        ({"destination": "https://x.test", "profile": 5}, [("invalid", "profile")]),
        ({"destination": "https://x.test", "campaign": 5}, [("invalid", "campaign")]),
        ({"destination": "https://x.test", "campaign": "c" * 257}, [("invalid", "campaign")]),
        ({"destination": "https://x.test", "utm": "x"}, [("invalid", "utm")]),
        ({"destination": "https://x.test", "utm": {"term": "x"}}, [("invalid", "utm.term")]),
        ({"destination": "https://x.test", "utm": {"content": "x"}}, [("invalid", "utm.content")]),
        ({"destination": "https://x.test", "utm": {"source": 3}}, [("invalid", "utm.source")]),
        ({"destination": "https://x.test", "utm": {"medium": "m" * 257}}, [("invalid", "utm.medium")]),
        (
            {"destination": "javascript:x", "campaign": [], "utm": {"x": 1}},
            [("invalid", "destination"), ("invalid", "campaign"), ("invalid", "utm.x")],
        ),
    ],
)
def test_parse_link_problems_section9_5_1(body: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_link(body)
    assert problems(exc) == expected


# --- Batches (§9.5.2) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, ("parameter_missing", "links")),
        ({"links": None}, ("parameter_missing", "links")),
        ({"links": {"destination": "https://x.test"}}, ("invalid", "links")),
        ({"links": "x"}, ("invalid", "links")),
        ({"links": []}, ("parameter_invalid_empty", "links")),
        ({"links": [{"destination": "https://x.test"}] * 10_001}, ("invalid", "links")),
    ],
)
def test_batch_shape_section9_5_2(body: dict[str, Any], expected: tuple[str, str]) -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_batch(body)
    assert problems(exc) == [expected]


def test_batch_accepts_ten_thousand_in_order_section9_5_2() -> None:
    items = [{"destination": f"https://x.test/{i}"} for i in range(10_000)]
    specs = parse_batch({"links": items})
    assert [s.destination for s in specs] == [i["destination"] for i in items]


def test_batch_reports_every_bad_item_section9_5_2() -> None:
    items: list[Any] = [{"destination": "https://x.test/ok"}] * 5
    items[1] = {"destination": "javascript:alert(1)"}
    items[3] = {"destination": "https://x.test", "utm": {"term": "t"}}
    items[4] = "not an object"
    with pytest.raises(ValidationFailed) as exc:
        parse_batch({"links": items})
    assert problems(exc) == [
        ("invalid", "links[1].destination"),
        ("invalid", "links[3].utm.term"),
        ("invalid", "links[4]"),
    ]


def test_batch_caps_reported_problems_at_100_section9_5_2() -> None:
    items = [{"destination": "data:,x"}] * 500
    with pytest.raises(ValidationFailed) as exc:
        parse_batch({"links": items})
    found = problems(exc)
    assert len(found) == 100
    assert found[0] == ("invalid", "links[0].destination")
    assert found[99] == ("invalid", "links[99].destination")


def test_batch_refuses_own_short_links_section9_5_2() -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_batch({"links": [{"destination": "https://l.test/l/abcdefgh"}]}, ["https://l.test"])
    assert problems(exc) == [("invalid", "links[0].destination")]


# --- Bots, codes, first-touch UTM -----------------------------------------------------------------


@pytest.mark.parametrize(
    "agent",
    [
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "WhatsApp/2.24.1 A",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Twitterbot/1.0",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "TelegramBot (like TwitterBot)",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0)",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "SLACK-IMGPROXY",
    ],
)
def test_preview_bots_section10(agent: str) -> None:
    assert is_preview_bot(agent)


@pytest.mark.parametrize(
    "agent",
    [
        None,
        "",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
        "curl/8.5.0",
    ],
)
def test_people_are_not_bots_section10(agent: str | None) -> None:
    assert not is_preview_bot(agent)


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        ("Tq7vB2xK", True),
        ("00000000", True),
        ("Tq7vB2x", False),
        ("Tq7vB2xKK", False),
        ("Tq7vB2x-", False),
        ("Tq7vB2xé", False),
        ("", False),
    ],
)
def test_code_shape_section10(code: str, ok: bool) -> None:
    assert is_code(code) is ok


def test_click_utm_is_first_touch_shape_section5_2() -> None:
    assert click_utm(None, 0) is None
    assert click_utm({"source": " ", "medium": None, "campaign": None}, 0) is None
    assert click_utm({"source": "hellotext", "medium": None, "campaign": "spring"}, 1767225600.5) == {
        "source": "hellotext",
        "medium": None,
        "campaign": "spring",
        "term": None,
        "content": None,
        "observed_at": "2026-01-01T00:00:00.500Z",
    }


def test_iso_millis() -> None:
    assert iso_millis(1767225600) == "2026-01-01T00:00:00.000Z"
    assert iso_millis(1767225600.999) == "2026-01-01T00:00:00.999Z"
