"""Migrations (issue 2: "migrations run on start; ``hellotext migrate`` runs them alone").

Each test migrates its own fresh database of the engine under test (a SQLite file or a PostgreSQL schema).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import Engine, inspect, select, text

from hellotext.cli import cli
from hellotext.config import Settings
from hellotext.store import businesses
from hellotext.store.engine import make_engines
from hellotext.store.migrate import alembic_config, migrate
from hellotext.store.schema import metadata
from tests.conftest import drop_database, make_settings
from tests.servers import settings_env


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Settings]:
    """Settings of a database that does not exist yet."""
    settings = make_settings(tmp_path, "mig")
    yield settings
    drop_database(settings)


@pytest.fixture
def engine(fresh: Settings) -> Iterator[Engine]:
    """A read engine on the fresh database (search path set to its schema on PostgreSQL)."""
    engines = make_engines(fresh)
    yield engines.read
    engines.dispose()


def _snapshot(engine: Engine) -> dict[str, Any]:
    """Tables, their columns and indexes, and the Alembic revision: what a migration could change."""
    with engine.connect() as conn:
        inspector = inspect(conn)
        tables = sorted(inspector.get_table_names())
        shape = {
            name: (
                [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)],
                sorted(
                    (i["name"] or "", tuple(i["column_names"]), bool(i["unique"]))
                    for i in inspector.get_indexes(name)
                ),
            )
            for name in tables
        }
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return {"tables": tables, "shape": shape, "revision": revision}


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def test_migrating_twice_is_a_no_op(fresh: Settings, engine: Engine) -> None:
    """A second migration changes nothing: same tables, columns, indexes and revision; data kept."""
    migrate(fresh)
    first = _snapshot(engine)
    assert first["revision"] == [_head()]
    assert set(metadata.tables) <= set(first["tables"])
    db_engines = make_engines(fresh)
    try:
        with db_engines.write.begin() as conn:
            business = businesses.create_business(conn, "Kept")
    finally:
        db_engines.dispose()

    migrate(fresh)
    assert _snapshot(engine) == first
    with engine.connect() as conn:
        names = conn.execute(
            select(businesses.businesses.c.name).where(businesses.businesses.c.id == business.pk)
        ).scalars()
        assert list(names) == ["Kept"]


def test_migrated_database_matches_the_schema_module(fresh: Settings, engine: Engine) -> None:
    """Migrations produce exactly `hellotext.store.schema.metadata` (autogenerate finds no difference)."""
    migrate(fresh)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_compare_detects_a_drift(fresh: Settings, engine: Engine) -> None:
    """The comparison above can fail: a dropped index is reported."""
    migrate(fresh)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_links_campaign"))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert any(entry[0] == "add_index" and entry[1].name == "ix_links_campaign" for entry in diff), diff


def test_migrate_command(fresh: Settings, engine: Engine) -> None:
    """``hellotext migrate`` brings a fresh database to the head revision, and again without harm."""
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(cli, ["migrate"], env=settings_env(fresh))
        assert result.exit_code == 0, result.output
        assert "up to date" in result.output
    snapshot = _snapshot(engine)
    assert snapshot["revision"] == [_head()]
    assert set(metadata.tables) <= set(snapshot["tables"])
