"""The identification fingerprint (browser-sdk §8.2): Python's equals the browser's, byte for byte.

The table below is computed twice: by `hellotext.sdk.fingerprint` (through `Hellotext.identify`, which
writes the ``hello_user_identification_hash`` cookie) and by ``hellotext.js`` in Chromium (through its
public ``identify`` on a page served from 127.0.0.1, a secure context, so the SHA-256 path is taken).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote

import pytest
from playwright.sync_api import Browser

from hellotext import Hellotext, MemoryCookieJar
from hellotext.sdk.fingerprint import canonical_json, fingerprint, js_number
from tests.sdk.sink import STATIC, Sink, running_sink

# (name, external id as JS source, options as JS source, external id in Python, options in Python)
TABLE: list[tuple[str, str, str, Any, dict[str, Any]]] = [
    (
        "spec example",
        "'user_123'",
        "{source: 'shopify', email: ' John@Example.com ', name: '', tags: ['b', 'a']}",
        "user_123",
        {"source": "shopify", "email": " John@Example.com ", "name": "", "tags": ["b", "a"]},
    ),
    (
        "unicode values",
        "'u-é'",
        "{name: 'José Ñandú 日本語 😀', city: '\\u00a0Zürich\\u3000', emoji: '👩‍👩‍👧'}",
        "u-é",
        {"name": "José Ñandú 日本語 😀", "city": "\u00a0Zürich\u3000", "emoji": "👩‍👩‍👧"},
    ),
    (
        "unicode keys sort by UTF-16 code units",
        "'u2'",
        "{'😀': 1, '\\uffff': 2, 'é': 3, 'Z': 4, 'a': 5, 'ä': 6, '\\ue000': 7}",
        "u2",
        {"😀": 1, "\uffff": 2, "é": 3, "Z": 4, "a": 5, "ä": 6, "\ue000": 7},
    ),
    (
        "nested objects",
        "'u3'",
        "{address: {street: ' Main St ', zip: '', geo: {lat: 1.5, lng: -0.0}}, empty: {x: null}, prefs: {}}",
        "u3",
        {
            "address": {"street": " Main St ", "zip": "", "geo": {"lat": 1.5, "lng": -0.0}},
            "empty": {"x": None},
            "prefs": {},
        },
    ),
    (
        "arrays keep order, drop absent elements, keep empty arrays",
        "'u4'",
        "{tags: [' x ', '', null, 3, [], [''], {a: ''}, true, 'b', 'a']}",
        "u4",
        {"tags": [" x ", "", None, 3, [], [""], {"a": ""}, True, "b", "a"]},
    ),
    (
        "blanks: JavaScript's trim, not Python's strip",
        "'u5'",
        "{email: '   ', phone: '\\t\\n', name: '\\u2028', note: '\\u0085x\\u0085', feff: '\\ufeffv\\ufeff',"
        " fs: '\\u001cy\\u001f', nbsp: '\\u00a0', vt: '\\u000bz\\u000c'}",
        "u5",
        {
            "email": "   ",
            "phone": "\t\n",
            "name": "\u2028",
            "note": "\u0085x\u0085",
            "feff": "\ufeffv\ufeff",
            "fs": "\u001cy\u001f",
            "nbsp": "\u00a0",
            "vt": "\u000bz\u000c",
        },
    ),
    (
        "dates become toISOString",
        "'u6'",
        "{signed_up: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)), birthday: new Date(Date.UTC(1990, 4, 17)),"
        " local: new Date('2024-06-01T12:00:00.123456+02:00')}",
        "u6",
        {
            "signed_up": datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
            "birthday": date(1990, 5, 17),
            "local": datetime(2024, 6, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
        },
    ),
    (
        "numbers as JavaScript writes them",
        "'u7'",
        "{a: 1.0, b: 1e21, c: 0.1, d: 1e-7, e: 123456789012345680000, f: -12.5, g: 2**53, h: 5e-324, i: 0,"
        " j: 1e300, k: 0.000001, l: 2**60, m: 1/3}",
        "u7",
        {
            "a": 1.0,
            "b": 1e21,
            "c": 0.1,
            "d": 1e-7,
            "e": 123456789012345680000,
            "f": -12.5,
            "g": 2**53,
            "h": 5e-324,
            "i": 0,
            "j": 1e300,
            "k": 0.000001,
            "l": 2**60,
            "m": 1 / 3,
        },
    ),
    (
        "array-index keys come first in numeric order",
        "'u8'",
        "{'10': 'a', '2': 'b', '01': 'c', b: 'd', '4294967295': 'e', '4294967294': 'f', '-1': 'g', '0': 'h'}",
        "u8",
        {"10": "a", "2": "b", "01": "c", "b": "d", "4294967295": "e", "4294967294": "f", "-1": "g", "0": "h"},
    ),
    (
        "escapes: quotes, backslashes, control characters",
        "'u9'",
        "{q: 'say \"hi\" \\\\ back\\u0001\\u001f\\u007f', nl: 'a\\nb\\rc', 'k\"ey': 'v', tab: 'x\\ty'}",
        "u9",
        {"q": 'say "hi" \\ back\u0001\u001f\u007f', "nl": "a\nb\rc", 'k"ey': "v", "tab": "x\ty"},
    ),
    (
        "numeric external id, booleans",
        "42",
        "{source: 'web', vip: true, churned: false}",
        42,
        {"source": "web", "vip": True, "churned": False},
    ),
    (
        "non-finite numbers are absent",
        "'u10'",
        "{a: NaN, b: Infinity, c: -Infinity, d: 'kept'}",
        "u10",
        {"a": float("nan"), "b": float("inf"), "c": float("-inf"), "d": "kept"},
    ),
]


def test_spec_worked_example_8_2() -> None:
    """§8.2: the spec's example gives the spec's canonical JSON, and the fingerprint is v1 + its SHA-256."""
    payload = {
        "source": "shopify",
        "email": " John@Example.com ",
        "name": "",
        "tags": ["b", "a"],
        "session": "abc",
        "user_id": "user_123",
    }
    expected = (
        '{"email":"John@Example.com","session":"abc","source":"shopify",'
        '"tags":["b","a"],"user_id":"user_123"}'
    )
    assert canonical_json(payload) == expected
    assert fingerprint(payload) == "v1:" + hashlib.sha256(expected.encode()).hexdigest()


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1.0, "1"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (0.1, "0.1"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (0.000001, "0.000001"),
        (-0.0, "0"),
        (2**60, "1152921504606847000"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (-12.5, "-12.5"),
        (123.456, "123.456"),
        (10**21 + 1, "1e+21"),
    ],
)
def test_numbers_as_javascript_writes_them_8_2(number: float, text: str) -> None:
    """§8.2: numbers in the canonical JSON are JSON.stringify's (Number.prototype.toString)."""
    assert js_number(number) == text


def test_canonical_rules_8_2() -> None:
    """§8.2: absent values removed, trimmed strings, empty objects absent, empty arrays kept, dates ISO."""
    payload = {
        "b": [None, " x ", [], {}],
        "a": {"c": None, "d": "  "},
        "when": datetime(2024, 1, 2, 3, 4, 5, 678999),
        "z": "\ufeff\u3000ok\u2029",
        "keep": "\u0085",
    }
    assert (
        canonical_json(payload) == '{"b":["x",[]],"keep":"\u0085","when":"2024-01-02T03:04:05.678Z","z":"ok"}'
    )
    assert canonical_json({"\U0001f600": 1, "\uffff": 2}) == '{"\U0001f600":1,"\uffff":2}'
    assert canonical_json({"s": "\ud800x"}) == '{"s":"\\ud800x"}'
    assert canonical_json({"x": None}) == "{}"


def _python_fingerprint(external_id: Any, options: dict[str, Any], sink: Sink) -> str:
    """The fingerprint through the SDK's public behaviour: identify, then read the hash cookie."""
    jar = MemoryCookieJar({"hello_session": "abc"})
    with Hellotext("biz", api_root=sink.api_root, cookies=jar, debug=True) as tracker:
        result = tracker.identify(external_id, **options)
    assert result.succeeded, result
    value = jar.get("hello_user_identification_hash")
    assert value is not None
    assert value == fingerprint(
        {**{k: v for k, v in options.items() if v is not None}, "session": "abc", "user_id": external_id}
    )
    return value


@pytest.fixture(scope="module")
def page_sink() -> Iterator[Sink]:
    with running_sink() as sink:
        sink.page = (
            '<!doctype html><meta charset="utf-8"><title>t</title><script src="/hellotext.js"></script>'
        )
        yield sink


@pytest.mark.browser
def test_fingerprint_equals_the_browser_sdk_in_chromium_8_2(page_sink: Sink, browser: Browser) -> None:
    """§8.2: for every row of the table, hellotext.js in Chromium writes the fingerprint Python computes."""
    if not (STATIC / "hellotext.js").exists():
        pytest.fail("hellotext/server/static/hellotext.js is missing")
    script_rows = ",".join(f"[{js_id}, {js_options}]" for _, js_id, js_options, _, _ in TABLE)
    program = f"""async () => {{
        await Hellotext.initialize('biz', {{session: 'abc'}})
        const out = []
        for (const [id, options] of [{script_rows}]) {{
            Hellotext.forget()
            const response = await Hellotext.identify(id, options)
            if (!response.succeeded) throw new Error('identify failed: ' + JSON.stringify(response.data))
            const entry = document.cookie.split(';').map((c) => c.trim())
                .find((c) => c.startsWith('hello_user_identification_hash='))
            out.push(entry.slice('hello_user_identification_hash='.length))
        }}
        return out
    }}"""
    page = browser.new_page()
    try:
        page.goto(page_sink.url + "/")
        assert page.evaluate("window.isSecureContext and !!crypto.subtle".replace(" and ", " && "))
        browser_values = [unquote(v) for v in page.evaluate(program)]
    finally:
        page.close()
    python_values = [
        _python_fingerprint(py_id, py_options, page_sink) for _, _, _, py_id, py_options in TABLE
    ]
    mismatches = [
        (name, b, p) for (name, *_), b, p in zip(TABLE, browser_values, python_values, strict=True) if b != p
    ]
    assert not mismatches, mismatches
    assert len(set(python_values)) == len(TABLE)  # every row is a different payload
