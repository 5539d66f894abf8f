"""Devices record whether a data connection with their settings was proven.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

``connection_proven``: true when ``modem configure --connect-test`` got an
address from the network with the device's settings, false when the network
refused the connection, null when no connection test ran (or by hand).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``devices.connection_proven``."""
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("connection_proven", sa.Boolean(), nullable=True))


def downgrade() -> None:
    """Drop ``devices.connection_proven`` (batch mode: SQLite rebuilds the table)."""
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("connection_proven")
