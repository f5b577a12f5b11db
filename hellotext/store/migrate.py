"""Run the Alembic migrations (on server start and from `hellotext migrate`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from hellotext.config import Settings
from hellotext.store.engine import ensure_schema, make_engines, sqlalchemy_url

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    """An Alembic configuration pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(settings: Settings) -> None:
    """Bring the database of `settings` to the newest revision. Safe to run from several processes."""
    ensure_schema(settings)
    config = alembic_config()
    if settings.is_postgres:
        engine = create_engine(
            sqlalchemy_url(settings),
            poolclass=NullPool,
            connect_args=(
                {"options": f"-csearch_path={settings.database_schema}"} if settings.database_schema else {}
            ),
        )
        with engine.begin() as conn:
            # One migrator at a time across processes: a transaction-scoped advisory lock.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7206516)")
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        engine.dispose()
    else:
        engines = make_engines(settings)
        try:
            with engines.write.begin() as conn:  # BEGIN IMMEDIATE: serialises concurrent migrators
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        finally:
            engines.dispose()
