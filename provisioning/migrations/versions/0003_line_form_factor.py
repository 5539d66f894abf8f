"""Orders carry their form factor: ``lines.form_factor`` (null: given at provisioning).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

When a line has a form factor, provisioning checks the card against it (a
multi-cut card serves any size its network type and function allow); without
one, the station gives it (``provision --form-factor``) as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FORM_FACTORS = ("standard", "micro", "nano", "multi")


def upgrade() -> None:
    """Add ``lines.form_factor`` with the same CHECK as ``cards.form_factor``."""
    condition = " OR ".join(f"form_factor = '{value}'" for value in FORM_FACTORS)
    with op.batch_alter_table("lines") as batch:
        batch.add_column(sa.Column("form_factor", sa.String(20), nullable=True))
        batch.create_check_constraint(op.f("ck_lines_form_factor"), condition)


def downgrade() -> None:
    """Drop ``lines.form_factor`` (batch mode: SQLite rebuilds the table)."""
    with op.batch_alter_table("lines") as batch:
        batch.drop_constraint(op.f("ck_lines_form_factor"), type_="check")
        batch.drop_column("form_factor")
