"""Businesses and their secret tokens."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from hellotext.core import ids
from hellotext.store import codec
from hellotext.store.schema import businesses, tokens


@dataclass(frozen=True, slots=True)
class Business:
    """A tenant, as the server needs it on every request."""

    pk: int
    public_id: str
    name: str
    locale: str
    country_code: str | None
    country_prefix: str | None
    whitelist: tuple[str, ...] | None  # None: "disabled"

    def public_settings(self) -> dict[str, Any]:
        """The body of ``GET /v1/public/businesses/{id}`` (spec §8.1)."""
        return {
            "id": self.public_id,
            "name": self.name,
            "locale": self.locale,
            "country": (
                {"code": self.country_code, "prefix": self.country_prefix} if self.country_code else None
            ),
            "features": {"white_label": True},
            "webchat": None,
            "whatsapp": None,
            "whitelist": "disabled" if self.whitelist is None else list(self.whitelist),
            "subscription": "self-hosted",
        }


def _row_to_business(row: Any) -> Business:
    whitelist = codec.loads(row.whitelist)
    return Business(
        pk=row.id,
        public_id=row.public_id,
        name=row.name,
        locale=row.locale,
        country_code=row.country_code,
        country_prefix=row.country_prefix,
        whitelist=None if whitelist is None else tuple(whitelist),
    )


def create_business(
    conn: Connection,
    name: str,
    *,
    public_id: str | None = None,
    origins: list[str] | None = None,
    locale: str = "en",
    country_code: str | None = None,
    country_prefix: str | None = None,
) -> Business:
    """Insert a business; `origins` empty or ``None`` leaves the whitelist disabled."""
    row = conn.execute(
        insert(businesses)
        .values(
            public_id=public_id or ids.new_public_id(),
            name=name,
            locale=locale,
            country_code=country_code,
            country_prefix=country_prefix,
            whitelist=codec.dumps(origins) if origins else None,
            created_at=time.time(),
        )
        .returning(*businesses.c)
    ).one()
    return _row_to_business(row)


def business_by_public_id(conn: Connection, public_id: str) -> Business | None:
    """The business with this public id."""
    row = conn.execute(select(businesses).where(businesses.c.public_id == public_id)).first()
    return None if row is None else _row_to_business(row)


def business_by_token(conn: Connection, token: str) -> Business | None:
    """The business owning an unrevoked secret token, looked up by the token's SHA-256.

    The stored hash is compared once more with `hmac.compare_digest`, so the answer's timing never
    depends on how many characters of a guess matched.
    """
    digest = ids.hash_token(token)
    row = conn.execute(
        select(businesses, tokens.c.hash.label("token_hash"))
        .join(tokens, tokens.c.business_id == businesses.c.id)
        .where(tokens.c.hash == digest, tokens.c.revoked_at.is_(None))
    ).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return _row_to_business(row)


def list_businesses(conn: Connection) -> list[Business]:
    """Every business, oldest first."""
    return [_row_to_business(r) for r in conn.execute(select(businesses).order_by(businesses.c.id))]


def find_business_by_name(conn: Connection, name: str) -> Business | None:
    """The oldest business with this name (the demo reuses it)."""
    row = conn.execute(
        select(businesses).where(businesses.c.name == name).order_by(businesses.c.id).limit(1)
    ).first()
    return None if row is None else _row_to_business(row)


def create_token(conn: Connection, business: Business) -> str:
    """Mint a secret token for `business`; only its hash is stored, the plain token is returned once."""
    token = ids.new_token()
    conn.execute(
        insert(tokens).values(
            hash=ids.hash_token(token),
            business_id=business.pk,
            hint=token[:9],
            created_at=time.time(),
        )
    )
    return token


def revoke_token(conn: Connection, token: str) -> bool:
    """Revoke a token; ``False`` when it was unknown or already revoked."""
    result = conn.execute(
        update(tokens)
        .where(tokens.c.hash == ids.hash_token(token), tokens.c.revoked_at.is_(None))
        .values(revoked_at=time.time())
    )
    return result.rowcount == 1
