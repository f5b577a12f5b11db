"""Identifiers: server-generated ids, secret tokens, session ids minted by the server."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TOKEN_PREFIX = "htsk_"

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_id() -> str:
    """A 32-character, URL-safe, time-ordered id with 64 random bits from the CSPRNG.

    Ids are time-ordered (48-bit milliseconds first, then a 16-bit per-process counter) so that the indexes
    that hold them grow at one end instead of splitting pages at random, and so that ids minted by one
    process sort in creation order. The random tail keeps them unguessable. Hex keeps byte order in text
    order and is encoded in C (ids are minted on the ingest hot path).
    """
    global _last_ms, _counter
    now = int(time.time() * 1000)
    with _lock:
        if now <= _last_ms:
            now = _last_ms
            _counter += 1
            if _counter > 0xFFFF:  # more than 65,536 ids in one millisecond: borrow the next one
                now = _last_ms = now + 1
                _counter = 0
        else:
            _last_ms = now
            _counter = 0
        counter = _counter
    raw = now.to_bytes(6, "big") + counter.to_bytes(2, "big") + os.urandom(8)
    return raw.hex()


def new_code(length: int = 8) -> str:
    """A random base62 code (short links, tokens), unbiased.

    One read of the CSPRNG per code instead of one per character: bytes of 248 and above are dropped
    (248 = 4 * 62) so that every character is equally likely.
    """
    chars: list[str] = []
    while len(chars) < length:
        chars.extend(BASE62[b % 62] for b in os.urandom(length + 8) if b < 248)
    return "".join(chars[:length])


def new_token() -> str:
    """A secret token: ``htsk_`` followed by 40 base62 characters from the CSPRNG."""
    return TOKEN_PREFIX + new_code(40)


def new_public_id() -> str:
    """A public business id: 16 base62 characters."""
    return new_code(16)


def hash_token(token: str) -> str:
    """SHA-256 hex of a whole secret token: what the server stores and looks tokens up by."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_session_id() -> str:
    """A server-minted session id: lowercase hyphenated UUID v4."""
    return str(uuid.uuid4())
