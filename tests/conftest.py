"""Fixtures: a real database (SQLite file or PostgreSQL schema), live servers, fresh tenants.

The whole suite runs once per engine: ``HELLOTEXT_TEST_ENGINE=sqlite`` (default) or ``postgres``
(``HELLOTEXT_TEST_PG_URL``, default ``postgresql://postgres@127.0.0.1:5432/test``). Each run gets its own
SQLite file or PostgreSQL schema, so runs never collide. Tests isolate themselves by creating a fresh
business (tenancy keeps businesses apart), not by recreating the database.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from hellotext.config import Settings
from hellotext.store import businesses
from hellotext.store.database import Database
from hellotext.store.engine import sqlalchemy_url
from tests.chromium import browser, playwright  # noqa: F401 - shared session fixtures
from tests.servers import ServerProcess

ENGINE = os.environ.get("HELLOTEXT_TEST_ENGINE", "sqlite")
PG_URL = os.environ.get("HELLOTEXT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def pytest_report_header() -> str:
    return f"hellotext engine: {ENGINE}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ENGINE == "postgres":
        return
    skip = pytest.mark.skip(reason="PostgreSQL only; runs in the postgres pass")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


def make_settings(tmp: Path, name: str = "main", **changes: Any) -> Settings:
    """Settings for a fresh database of the engine under test (file or schema named after `name`)."""
    if ENGINE == "postgres":
        schema = f"t_{name}_{secrets.token_hex(4)}"
        return Settings(database_url=PG_URL, database_schema=schema, **changes)
    if ENGINE != "sqlite":
        raise pytest.UsageError(f"unknown HELLOTEXT_TEST_ENGINE {ENGINE!r}")
    return Settings(database_url=f"sqlite:///{tmp / (name + '.db')}", **changes)


def drop_database(settings: Settings) -> None:
    """Remove a test database (PostgreSQL schema; SQLite files go with the temp folder)."""
    if settings.is_postgres and settings.database_schema:
        engine = create_engine(sqlalchemy_url(settings), poolclass=NullPool)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{settings.database_schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The run's database settings."""
    value = make_settings(tmp_path_factory.mktemp("db"))
    yield value
    drop_database(value)


@pytest.fixture(scope="session")
def database(settings: Settings) -> Iterator[Database]:
    """The run's database, migrated and open (for setting up data and checking what was written)."""
    db = Database.open(settings)
    yield db
    db.close()


@pytest.fixture(scope="session")
def server(settings: Settings, database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live server (a child process) on a free port of 127.0.0.1; yields its base URL."""
    log = tmp_path_factory.mktemp("logs") / "server.log"
    proc = ServerProcess(settings, log_path=log).start()
    yield proc.url
    proc.stop()


@dataclass(frozen=True)
class Tenant:
    """A fresh business: its public id, a secret token, and the stored record."""

    public_id: str
    token: str
    business: businesses.Business

    @property
    def pk(self) -> int:
        return self.business.pk


def create_tenant(db: Database, *, origins: list[str] | None = None, name: str = "Test") -> Tenant:
    """Create a business with one secret token."""

    def unit(conn: Any) -> tuple[businesses.Business, str]:
        business = businesses.create_business(conn, name, origins=origins)
        return business, businesses.create_token(conn, business)

    business, token = db.write_sync(unit)
    return Tenant(public_id=business.public_id, token=token, business=business)


@pytest.fixture
def tenant(database: Database) -> Tenant:
    """A fresh business for this test."""
    return create_tenant(database)


@pytest.fixture
def other_tenant(database: Database) -> Tenant:
    """A second business, for tenancy tests."""
    return create_tenant(database, name="Other")


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    """An HTTP client for the live server (no credential set)."""
    with httpx.Client(base_url=server, timeout=30.0) as client:
        yield client


@pytest.fixture
def public(server: str, tenant: Tenant) -> Iterator[httpx.Client]:
    """A client carrying the tenant's public id."""
    headers = {"Authorization": f"Bearer {tenant.public_id}"}
    with httpx.Client(base_url=server, timeout=30.0, headers=headers) as client:
        yield client


@pytest.fixture
def private(server: str, tenant: Tenant) -> Iterator[httpx.Client]:
    """A client carrying the tenant's secret token."""
    headers = {"Authorization": f"Bearer {tenant.token}"}
    with httpx.Client(base_url=server, timeout=30.0, headers=headers) as client:
        yield client


def error_types(response: httpx.Response) -> list[tuple[str, str | None]]:
    """The (type, parameter) pairs of an error envelope."""
    body = response.json()
    return [(e["type"], e["parameter"]) for e in body["errors"]]


def assert_error(response: httpx.Response, status: int, type_: str, parameter: str | None = None) -> None:
    """Assert the status and that the envelope holds an entry of that type and parameter."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    entries = response.json()["errors"]
    for entry in entries:
        assert entry["message"] == entry["description"]
    assert (type_, parameter) in error_types(response), response.text
