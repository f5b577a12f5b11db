"""JSON columns: text encoded by msgspec, the same bytes on both engines."""

from __future__ import annotations

from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def dumps(value: Any) -> str:
    """Encode a JSON value for a text column."""
    return _encoder.encode(value).decode("utf-8")


def dumps_or_none(value: Any) -> str | None:
    """Encode, keeping ``None`` as SQL NULL."""
    return None if value is None else dumps(value)


def loads(text: str | None) -> Any:
    """Decode a text column; SQL NULL gives ``None``."""
    return None if text is None else _decoder.decode(text)
