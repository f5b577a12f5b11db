"""Engines for both databases, with the connection settings each one needs."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.pool import NullPool

from hellotext.config import Settings
from hellotext.errors import ConfigurationError

_SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True, slots=True)
class Engines:
    """A write engine (one connection per writer thread) and a read engine.

    On SQLite the write engine opens every transaction with ``BEGIN IMMEDIATE``: the writer takes the
    database lock up front instead of upgrading a read lock, which could deadlock against another process.
    Reads use plain deferred transactions so WAL lets them run beside the writer.
    """

    write: Engine
    read: Engine
    dialect: str

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.write.dispose()
        self.read.dispose()


def sqlalchemy_url(settings: Settings) -> str:
    """The SQLAlchemy URL for the configured database (psycopg 3 for PostgreSQL)."""
    url = settings.database_url
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _sqlite_path(url: str) -> str:
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if not path or path == ":memory:":
        raise ConfigurationError("SQLite needs a file path (sqlite:///hellotext.db); memory is not durable")
    return path


def sqlite_lock_path(settings: Settings) -> str:
    """The file every process writing this SQLite database locks around its write transactions."""
    return os.path.abspath(_sqlite_path(sqlalchemy_url(settings))) + "-writelock"


def _make_sqlite(url: str, *, immediate: bool) -> Engine:
    path = _sqlite_path(url)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    # hide_parameters: an error message must never carry personal data or a token hash into the logs.
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin hook decide how transactions start (pysqlite's own handling is off).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before we answer 200, also across power loss. Group commit pays
        # the fsync once per batch.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _make_postgres(url: str, schema: str | None, pool_size: int) -> Engine:
    connect_args: dict[str, Any] = {}
    if schema is not None:
        if not _SCHEMA_RE.fullmatch(schema):
            raise ConfigurationError("HELLOTEXT_DATABASE_SCHEMA must be a lowercase identifier")
        connect_args["options"] = f"-csearch_path={schema}"
    return create_engine(
        url,
        connect_args=connect_args,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        hide_parameters=True,
    )


def make_engines(settings: Settings) -> Engines:
    """Build the engines for `settings`."""
    url = sqlalchemy_url(settings)
    if url.startswith("sqlite"):
        return Engines(
            write=_make_sqlite(url, immediate=True),
            read=_make_sqlite(url, immediate=False),
            dialect="sqlite",
        )
    if url.startswith("postgresql+psycopg"):
        return Engines(
            write=_make_postgres(url, settings.database_schema, 4),
            read=_make_postgres(url, settings.database_schema, 8),
            dialect="postgresql",
        )
    raise ConfigurationError(f"unsupported database URL scheme: {url.split(':', 1)[0]}")


def ensure_schema(settings: Settings) -> None:
    """Create the configured PostgreSQL schema when it does not exist yet."""
    if not settings.is_postgres or settings.database_schema is None:
        return
    if not _SCHEMA_RE.fullmatch(settings.database_schema):
        raise ConfigurationError("HELLOTEXT_DATABASE_SCHEMA must be a lowercase identifier")
    engine = create_engine(sqlalchemy_url(settings), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{settings.database_schema}"'))
    finally:
        engine.dispose()
