"""Records you can trust: the PIN journal, and devices bound to one line at a time.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

``pin_journal``: before the station changes a card's PIN1 from the vendor's
value to the default it commits a row saying so (``changing``), and marks it
``at-default`` once the card answered. A retry after any failure then knows
which PIN the card holds (or that it is one of two) and never guesses.

``devices.released_at``: a lent router returned (§13) is released from its
line and may ship again; an IMEI is unique among the devices not released.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``pin_journal``; add ``devices.released_at`` with a partial unique IMEI index."""
    op.create_table(
        "pin_journal",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("card_id", sa.Integer(), sa.ForeignKey("cards.id"), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("station", sa.String(100), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "state = 'changing' OR state = 'at-default'", name=op.f("ck_pin_journal_state")
        ),
        sa.UniqueConstraint("card_id", name=op.f("uq_pin_journal_card_id")),
    )
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("released_at", sa.DateTime(), nullable=True))
        batch.drop_constraint(op.f("uq_devices_imei"), type_="unique")
    op.create_index(op.f("ix_devices_imei"), "devices", ["imei"])
    op.create_index(
        "uq_devices_bound_imei",
        "devices",
        ["imei"],
        unique=True,
        sqlite_where=sa.text("released_at IS NULL"),
        postgresql_where=sa.text("released_at IS NULL"),
    )


def downgrade() -> None:
    """Drop them again (a released device's row is dropped with its column's meaning)."""
    op.drop_index("uq_devices_bound_imei", table_name="devices")
    op.drop_index(op.f("ix_devices_imei"), table_name="devices")
    op.execute("DELETE FROM devices WHERE released_at IS NOT NULL")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("released_at")
        batch.create_unique_constraint(op.f("uq_devices_imei"), ["imei"])
    op.drop_table("pin_journal")
