"""Session rules as pure functions (S1, S3, browser-sdk §4.1, §4.2, §5.2, §5.4) and the cookie jars."""

from __future__ import annotations

import json
import multiprocessing
import re
from pathlib import Path

import pytest

from hellotext import CookieJar, FileCookieJar, MemoryCookieJar
from hellotext.sdk.session import (
    COOKIE_MAX_AGE,
    decode_cookie_value,
    encode_cookie_value,
    mint_session,
    parse_cookie_header,
    query_param,
    resolve_session,
    root_domain,
    set_cookie_header,
    usable_session,
    utm_from_url,
)

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.mark.parametrize(
    "value",
    [None, "", "undefined", "null", 42, "a b", "a,b", "a;b", "x" * 257, "é", "tab\there", "new\nline"],
)
def test_unusable_session_values_4_1(value: object) -> None:
    """§4.1: absent-like values and values breaking the session id rule are skipped."""
    assert usable_session(value) is None


@pytest.mark.parametrize("value", ["abc", "x" * 256, "!#$%&'()*+-./:<=>?@[]^_`{|}~", "a6a52a38-4519"])
def test_usable_session_values_4_1(value: str) -> None:
    """§4.1 / http-api §5.1: 1-256 printable ASCII without whitespace, `,` or `;` is usable."""
    assert usable_session(value) == value


def test_resolution_order_s1() -> None:
    """S1: the URL parameter, then the configured session, then the cookie, then a new UUID v4."""
    assert resolve_session(query="q", configured="c", cookie="k") == ("q", False)
    assert resolve_session(query="undefined", configured="c", cookie="k") == ("c", False)
    assert resolve_session(query=None, configured="", cookie="k") == ("k", False)
    minted, was_minted = resolve_session(query="null", configured=None, cookie="bad value")
    assert was_minted and UUID4.fullmatch(minted or "")


def test_no_generation_s3() -> None:
    """S3: with generation off and nothing usable, there is no session."""
    assert resolve_session(cookie="undefined", auto_generate=False) == (None, False)


def test_minted_sessions_are_uuid4_4_2() -> None:
    """§4.2: lowercase hyphenated UUID v4, different each time."""
    values = {mint_session() for _ in range(50)}
    assert len(values) == 50
    assert all(UUID4.fullmatch(v) for v in values)


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("localhost", None),
        ("127.0.0.1", None),
        ("[::1]", None),
        ("[::1]:8000", None),
        ("example.com", ".example.com"),
        ("shop.example.com", ".example.com"),
        ("www.store.com.br", ".store.com.br"),
        ("x.co.uk", ".x.co.uk"),
        ("mystore.myshopify.com", ".mystore.myshopify.com"),
        ("secure.mystore.myshopify.com", ".mystore.myshopify.com"),
        ("www.abc.de", ".www.abc.de"),
        ("SHOP.Example.COM.", ".example.com"),
        ("shop.example.test:8443", ".example.test"),
        ("a.b.vtexcommercestable.com.br", ".b.vtexcommercestable.com.br"),
        ("store.myvtex.com", ".store.myvtex.com"),
        ("me.wixsite.com", ".me.wixsite.com"),
        ("10.0.0.1:80", None),
        (None, None),
        ("", None),
        ("evil.com; HttpOnly", None),
        ("evil.com\r\nSet-Cookie: x=1", None),
        ("a..b", None),
    ],
)
def test_root_domain_table_5_4(host: str | None, domain: str | None) -> None:
    """§5.4: the spec's table, ports and case, and hostile Host values never reach a cookie attribute."""
    assert root_domain(host) == domain


def test_set_cookie_attributes_5_2_s2() -> None:
    """S2 / §5.2: path=/, root domain, ten years, SameSite=Lax, Secure on https, never HttpOnly."""
    header = set_cookie_header("hello_session", "a b;c", domain=".example.com", secure=True)
    assert header == (
        "hello_session=a%20b%3Bc; Path=/; Domain=.example.com; "
        f"Max-Age={COOKIE_MAX_AGE}; SameSite=Lax; Secure"
    )
    plain = set_cookie_header("hello_session", "abc", domain=None, secure=False)
    assert plain == f"hello_session=abc; Path=/; Max-Age={COOKIE_MAX_AGE}; SameSite=Lax"
    assert "httponly" not in (header + plain).lower()
    deleted = set_cookie_header("hello_user_id", None, domain=".example.com", secure=False)
    assert "Max-Age=0" in deleted and "Expires=Thu, 01 Jan 1970 00:00:00 GMT" in deleted


def test_cookie_values_round_trip_like_decodeuricomponent_5_2() -> None:
    """§5.2: values are URI-encoded; reading decodes, and falls back to the raw text when decoding fails."""
    for value in ["abc", 'v1:ab{"x":1}', "José ; , =", "%", "(paren)"]:
        assert decode_cookie_value(encode_cookie_value(value)) == value
    assert decode_cookie_value("%E0%A4%A") == "%E0%A4%A"  # truncated escape: raw
    assert decode_cookie_value("%FF") == "%FF"  # not UTF-8: raw
    assert decode_cookie_value("raw-value") == "raw-value"


def test_cookie_header_and_query_parsing() -> None:
    """§5.2: the first entry named exactly `name` is read; the query's first hello_session wins (S1)."""
    parsed = parse_cookie_header("a=1; hello_session=x; hello_session=y;bad; hello_sessionx=z")
    assert parsed["hello_session"] == ["x", "y"]
    assert "hello_sessionx" in parsed
    assert query_param("a=1&hello_session=abc&hello_session=def", "hello_session") == "abc"
    assert query_param("hello_session=a%2Fb+c", "hello_session") == "a/b c"
    assert query_param("x=1", "hello_session") is None
    assert query_param("hello_session=" + "x" * 5000, "hello_session") is None  # capped


def test_utm_from_url_5_3() -> None:
    """§5.3: written only with non-blank source and medium; trimmed; observed_at is an ISO instant."""
    utm = utm_from_url("https://s.example.com/?utm_source=+news+&utm_medium=email&utm_term=&utm_campaign=x")
    assert utm is not None
    assert {k: v for k, v in utm.items() if k != "observed_at"} == {
        "source": "news",
        "medium": "email",
        "campaign": "x",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", utm["observed_at"])
    assert utm_from_url("https://s.example.com/?utm_source=news") is None


def test_memory_jar_is_a_cookie_jar() -> None:
    """The default jar keeps values in memory and satisfies the CookieJar protocol."""
    jar = MemoryCookieJar({"a": "1"})
    assert isinstance(jar, CookieJar)
    jar.set("b", "2")
    jar.delete("a")
    jar.delete("missing")
    assert jar.as_dict() == {"b": "2"}


def test_file_jar_persists_and_writes_atomically(tmp_path: Path) -> None:
    """FileCookieJar: values survive a new jar on the same file; no temporary file is left behind."""
    path = tmp_path / "nested" / "cookies.json"
    jar = FileCookieJar(path)
    assert isinstance(jar, CookieJar)
    assert jar.get("hello_session") is None
    jar.set("hello_session", "abc")
    jar.set("hello_user_id", "José")
    jar.delete("hello_user_id")
    assert FileCookieJar(path).get("hello_session") == "abc"
    assert json.loads(path.read_text()) == {"hello_session": "abc"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["cookies.json", "cookies.json.lock"]


def test_file_jar_sees_other_writers_and_survives_corruption(tmp_path: Path) -> None:
    """FileCookieJar: a change by another holder is read at once (like another tab); junk reads as empty."""
    path = tmp_path / "cookies.json"
    first, second = FileCookieJar(path), FileCookieJar(path)
    first.set("hello_session", "one")
    assert second.get("hello_session") == "one"
    second.set("hello_session", "two")
    assert first.get("hello_session") == "two"
    path.write_text("{not json")
    assert first.get("hello_session") is None
    first.set("x", "1")
    assert first.as_dict() == {"x": "1"}


def _writer(path: str, index: int) -> None:
    jar = FileCookieJar(path)
    for round_ in range(20):
        jar.set(f"k{index}", str(round_))


def test_file_jar_concurrent_processes_lose_no_update(tmp_path: Path) -> None:
    """FileCookieJar: writers in several processes re-read under a lock, so no one's key is lost."""
    path = tmp_path / "cookies.json"
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_writer, args=(str(path), i)) for i in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert FileCookieJar(path).as_dict() == {f"k{i}": "19" for i in range(4)}
