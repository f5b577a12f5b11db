"""The identification fingerprint, byte-identical to the browser SDK's (spec browser-sdk §8.2).

The browser canonicalises the identify payload and hashes ``JSON.stringify`` of the result. To give the same
bytes for the same input, this module reproduces the JavaScript behaviour that shows in that string:

- ``String.prototype.trim`` removes the ECMAScript white space and line terminators, which are not the
  characters Python's ``str.strip()`` removes (it strips U+001C-U+001F and U+0085, keeps U+FEFF);
- the default ``Array.prototype.sort`` orders keys by UTF-16 code units, not by code points;
- ``JSON.stringify`` writes the array-index keys of an object (``"0"``, ``"7"``, ...) first, in numeric
  order, whatever the insertion order;
- numbers are written by ``Number.prototype.toString`` (``1.0`` → ``1``, ``1e21`` → ``1e+21``), and
  lone surrogates as ``\\udxxx`` escapes;
- a ``Date`` becomes ``toISOString()`` (UTC, milliseconds, ``Z``).

Python values map to JavaScript ones as JSON would: ``None`` → ``null``, ``bool``, ``int``/``float`` →
number, ``str``, ``list``/``tuple`` → array, ``dict`` → object, ``datetime``/``date`` → ``Date`` (a naive
datetime is read as UTC; a date is its midnight UTC).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

__all__ = ["ABSENT", "canonical_json", "canonicalize", "fingerprint", "js_number"]

# ECMAScript WhiteSpace (TAB, VT, FF, SP, NBSP, ZWNBSP and the Zs category) and LineTerminator.
JS_WHITESPACE = (
    "\u0009\u000b\u000c\u0020\u00a0\ufeff\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u202f\u205f\u3000\u000a\u000d\u2028\u2029"
)
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]{0,9}")
_MAX_ARRAY_INDEX = 2**32 - 2
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Absent:
    """Marker for a value that canonicalisation removes (``undefined`` in the browser)."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


ABSENT: Any = _Absent()


def js_number(value: float | int) -> str:
    """Format a finite number as JavaScript's ``Number.prototype.toString`` does.

    Args:
        value: an int or a finite float; ints are first converted to the nearest double, as in JS.

    Returns:
        The text ``JSON.stringify`` writes for that number.
    """
    number = float(value)
    if number == 0:
        return "0"  # also -0
    sign = "-" if number < 0 else ""
    # repr gives the shortest digits that round-trip, which is what ECMAScript requires too.
    text = repr(abs(number))
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    # n: position of the decimal point relative to the start of `digits` (value = 0.digits * 10**n).
    point = len(whole) + exponent - (len(whole + fraction) - len((whole + fraction).lstrip("0")))
    digits = digits.rstrip("0")
    k = len(digits)
    n = point
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    exp = f"e{'+' if e >= 0 else '-'}{abs(e)}"
    if k == 1:
        return sign + digits + exp
    return sign + digits[0] + "." + digits[1:] + exp


def _iso(moment: date) -> str:
    """``Date.prototype.toISOString`` for a Python date or datetime (milliseconds, truncated)."""
    if isinstance(moment, datetime):
        instant = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    else:
        instant = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


def _key(key: object) -> str:
    """A Python mapping key as the JavaScript property name it would become."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, int | float):
        number = float(key)
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        return js_number(number)
    raise TypeError(f"cannot use {type(key).__name__} as an object key")


def _utf16(text: str) -> bytes:
    # Big-endian UTF-16 bytes compare like the code-unit sequences JavaScript's default sort compares.
    return text.encode("utf-16-be", "surrogatepass")


def _is_array_index(key: str) -> bool:
    return _ARRAY_INDEX.fullmatch(key) is not None and int(key) <= _MAX_ARRAY_INDEX


def canonicalize(value: Any) -> Any:
    """Canonicalise a payload value (§8.2); `ABSENT` when the browser would drop it.

    Raises:
        TypeError: a value that has no JSON/JavaScript counterpart (a set, an arbitrary object).
    """
    if value is None:
        return ABSENT
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            return ABSENT  # beyond a double: Infinity in JavaScript, which canonicalisation drops
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else ABSENT
    if isinstance(value, str):
        text = value.strip(JS_WHITESPACE)
        return text if text else ABSENT
    if isinstance(value, date):
        return _iso(value)
    if isinstance(value, list | tuple):
        items = [canonicalize(item) for item in value]
        return [item for item in items if item is not ABSENT]
    if isinstance(value, Mapping):
        entries: dict[str, Any] = {}
        for key, item in value.items():
            entries[_key(key)] = item  # a later key that maps to the same name wins, as in JS
        ordered = sorted(entries, key=_utf16)
        # JSON.stringify writes array-index property names first, in numeric order.
        indexes = sorted((k for k in ordered if _is_array_index(k)), key=int)
        names = [k for k in ordered if not _is_array_index(k)]
        result: dict[str, Any] = {}
        for key in indexes + names:
            canonical = canonicalize(entries[key])
            if canonical is not ABSENT:
                result[key] = canonical
        return result if result else ABSENT
    raise TypeError(f"cannot fingerprint a {type(value).__name__}")


def _dump(value: Any, parts: list[str]) -> None:
    if isinstance(value, bool):
        parts.append("true" if value else "false")
    elif isinstance(value, int | float):
        parts.append(js_number(value))
    elif isinstance(value, str):
        parts.append(_string(value))
    elif isinstance(value, list):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _dump(item, parts)
        parts.append("]")
    else:
        parts.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                parts.append(",")
            parts.append(_string(key))
            parts.append(":")
            _dump(item, parts)
        parts.append("}")


def _string(text: str) -> str:
    # json.dumps without ensure_ascii escapes exactly what JSON.stringify escapes ("\\", '"', and the C0
    # controls, with the short forms \b \f \n \r \t and lowercase \u00xx), except surrogates.
    encoded = json.dumps(text, ensure_ascii=False)
    if _SURROGATE.search(encoded) is None:
        return encoded
    # A JavaScript string is UTF-16: a high+low surrogate pair is one character, a lone one is escaped.
    joined = text.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "surrogatepass")
    encoded = json.dumps(joined, ensure_ascii=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", encoded)


def canonical_json(payload: Any) -> str:
    """The canonical JSON text of a payload (``JSON.stringify`` of the canonical value, no spaces).

    An entirely absent payload gives ``{}``, as in ``hellotext.js`` (it never happens for an identify
    payload, which always holds ``user_id``).
    """
    value = canonicalize(payload)
    if value is ABSENT:
        return "{}"
    parts: list[str] = []
    _dump(value, parts)
    return "".join(parts)


def fingerprint(payload: Any) -> str:
    """``"v1:"`` + lowercase hex SHA-256 of the canonical JSON's UTF-8 bytes (§8.2)."""
    digest = hashlib.sha256(canonical_json(payload).encode("utf-8", "surrogatepass")).hexdigest()
    return "v1:" + digest
