"""Alembic environment: always run online, on the connection handed over by `hellotext.store.migrate`."""

from __future__ import annotations

from alembic import context

from hellotext.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
context.run_migrations()
