"""Devices record whether their connection settings were proven by read-back.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

``verified``: true when the station read the settings back equal, false when it
configured them but could not prove them, null for a device described by hand.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``devices.verified``."""
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("verified", sa.Boolean(), nullable=True))


def downgrade() -> None:
    """Drop ``devices.verified`` (batch mode: SQLite rebuilds the table)."""
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("verified")
