"""Baseline: the first released schema.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

from hellotext.store.schema import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The baseline is the schema module itself; every later change to schema.py must come with its own
    # revision (tests/store/test_migrations.py compares the migrated database with the metadata).
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
