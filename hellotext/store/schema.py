"""The schema, for both engines.

Every table but `businesses` carries `business_id` first in its keys and indexes, so the data can later be
distributed by business. Rows that lists page through carry `seq`, an integer that grows with insertion:
"newest first, ties broken by insertion order" is `ORDER BY seq DESC`. Public ids are time-ordered strings
(`hellotext.core.ids.new_id`). JSON values are stored as text encoded by msgspec, the same on both engines.
Timestamps are epoch seconds (float where the spec allows fractions, e.g. `tracked_at`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

# SQLite only aliases ROWID (and so auto-increments) for the exact type INTEGER.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

businesses = Table(
    "businesses",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("public_id", String(64), nullable=False, unique=True),
    Column("name", String(256), nullable=False),
    Column("locale", String(16), nullable=False, server_default="en"),
    Column("country_code", String(2), nullable=True),
    Column("country_prefix", String(8), nullable=True),
    # JSON list of allowed origins; NULL means the whitelist is "disabled".
    Column("whitelist", Text, nullable=True),
    Column("created_at", Float, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    # SHA-256 hex of the whole token; the plain token is never stored.
    Column("hash", String(64), primary_key=True),
    Column("business_id", BigInteger, ForeignKey("businesses.id", ondelete="CASCADE"), nullable=False),
    Column("hint", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Index("ix_tokens_business", "business_id"),
)

profiles = Table(
    "profiles",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("business_id", BigInteger, nullable=False),
    Column("id", String(64), nullable=False),
    Column("first_name", String(256), nullable=True),
    Column("last_name", String(256), nullable=True),
    Column("email", String(254), nullable=True),
    Column("phone", String(32), nullable=True),
    Column("reference", String(256), nullable=True),
    Column("properties", Text, nullable=False, server_default="{}"),
    Column("unverified_email", String(254), nullable=True),
    Column("unverified_phone", String(32), nullable=True),
    Column("unverified_name", String(256), nullable=True),
    Column("traits", Text, nullable=False, server_default="{}"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("business_id", "id", name="uq_profiles_id"),
    Index(
        "uq_profiles_email",
        "business_id",
        "email",
        unique=True,
        sqlite_where=text("email IS NOT NULL"),
        postgresql_where=text("email IS NOT NULL"),
    ),
    Index(
        "uq_profiles_phone",
        "business_id",
        "phone",
        unique=True,
        sqlite_where=text("phone IS NOT NULL"),
        postgresql_where=text("phone IS NOT NULL"),
    ),
    Index(
        "uq_profiles_reference",
        "business_id",
        "reference",
        unique=True,
        sqlite_where=text("reference IS NOT NULL"),
        postgresql_where=text("reference IS NOT NULL"),
    ),
)

identities = Table(
    "identities",
    metadata,
    Column("business_id", BigInteger, primary_key=True),
    Column("source", String(64), primary_key=True),  # "" when there is no source
    Column("user_id", String(256), primary_key=True),
    Column("profile_id", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_identities_profile", "business_id", "profile_id"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("business_id", BigInteger, nullable=False),
    Column("id", String(256), nullable=False),
    Column("profile_id", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("last_seen_at", Float, nullable=False),
    Column("attached_at", Float, nullable=True),
    Column("attached_via", String(16), nullable=True),
    Column("utm", Text, nullable=True),
    UniqueConstraint("business_id", "id", name="uq_sessions_id"),
    Index("ix_sessions_profile", "business_id", "profile_id", "seq"),
)

actions = Table(
    "actions",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("business_id", BigInteger, nullable=False),
    Column("id", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("description", String(1024), nullable=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("business_id", "name", name="uq_actions_name"),
    UniqueConstraint("business_id", "id", name="uq_actions_id"),
)

objects = Table(
    "objects",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("business_id", BigInteger, nullable=False),
    Column("id", String(64), nullable=False),
    Column("object_type", String(64), nullable=False),
    Column("source", String(256), nullable=True),
    Column("reference", String(256), nullable=True),
    Column("data", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("business_id", "id", name="uq_objects_id"),
    # Find-or-create key: only objects with both a source and a reference are shared.
    Index(
        "uq_objects_natural",
        "business_id",
        "object_type",
        "source",
        "reference",
        unique=True,
        sqlite_where=text("source IS NOT NULL AND reference IS NOT NULL"),
        postgresql_where=text("source IS NOT NULL AND reference IS NOT NULL"),
    ),
)

events = Table(
    "events",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("business_id", BigInteger, nullable=False),
    Column("id", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    # Stored profile: attribution at write time (I9). NULL = anonymous; the effective profile is then
    # the session's current owner (§6.5), joined at read time so attaching never rewrites events (I4).
    Column("profile_id", String(64), nullable=True),
    Column("session_id", String(256), nullable=True),
    Column("tracked_at", Float, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("amount", Float, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("url", String(2048), nullable=True),
    Column("page", Text, nullable=True),
    Column("utm", Text, nullable=True),
    Column("metadata", Text, nullable=True),
    Column("object_id", String(64), nullable=True),
    Column("client_id", String(64), nullable=True),
    Column("via", String(16), nullable=False),
    Column("raw", Text, nullable=False),
    UniqueConstraint("business_id", "id", name="uq_events_id"),
    # Idempotency key: partial, since most events carry none.
    Index(
        "uq_events_client_id",
        "business_id",
        "client_id",
        unique=True,
        sqlite_where=text("client_id IS NOT NULL"),
        postgresql_where=text("client_id IS NOT NULL"),
    ),
    Index("ix_events_profile_time", "business_id", "profile_id", "tracked_at", "seq"),
    Index("ix_events_session_time", "business_id", "session_id", "tracked_at", "seq"),
)

links = Table(
    "links",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("business_id", BigInteger, nullable=False),
    Column("id", String(64), nullable=False),
    Column("code", String(8), nullable=False),
    Column("destination", String(2048), nullable=False),
    Column("profile_id", String(64), nullable=True),
    Column("campaign", String(256), nullable=True),
    Column("utm", Text, nullable=True),
    Column("clicks", BigInteger, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("business_id", "id", name="uq_links_id"),
    UniqueConstraint("code", name="uq_links_code"),
    Index("ix_links_profile", "business_id", "profile_id"),
    Index("ix_links_campaign", "business_id", "campaign"),
)
