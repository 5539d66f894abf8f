"""One audit chain per station, anchored to each other.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Until now every event joined one chain whose head row every station locked,
so stations sharing a PostgreSQL queued on that row. From here on each
station appends to a chain of its own (``audit_chains``, one head per
station; ``audit_events.chain_seq`` is the event's place in it) and the
global ``seq`` is an event id that may have gaps (a sequence on PostgreSQL).

The events written before this revision stay as they are: the *legacy*
chain, ``chain_seq`` NULL, whose head (``audit_head``) no longer moves. Every
station chain starts from that head's hash, so rewriting the legacy chain
breaks the first link of every station chain. See docs/audit.md.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: The PostgreSQL sequence that numbers new events (SQLite takes max + 1 under its write lock).
EVENT_IDS = "audit_event_ids"


def upgrade() -> None:
    """Add ``audit_chains``, ``audit_events.chain_seq`` and, on PostgreSQL, the event ids."""
    op.create_table(
        "audit_chains",
        sa.Column("station", sa.String(100), primary_key=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("last_event", sa.Integer(), nullable=True),
    )
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("chain_seq", sa.Integer(), nullable=True))
    op.create_index(
        "uq_audit_events_station_chain_seq",
        "audit_events",
        ["station", "chain_seq"],
        unique=True,
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        start = bind.execute(sa.text("SELECT coalesce(max(seq), 0) + 1 FROM audit_events")).scalar()
        op.execute(sa.text(f"CREATE SEQUENCE {EVENT_IDS} START WITH {int(start or 1)}"))


def downgrade() -> None:
    """Drop the station chains; refused once any event was appended to one.

    Such events cannot join the single chain without rewriting their hashes,
    which is what the audit exists to prevent.
    """
    bind = op.get_bind()
    chained = bind.execute(
        sa.text("SELECT count(*) FROM audit_events WHERE chain_seq IS NOT NULL")
    ).scalar()
    if chained:
        raise RuntimeError(
            f"{chained} audit events are on per-station chains; downgrading would break the "
            "audit trail (restore a backup taken before the upgrade instead)"
        )
    if bind.dialect.name == "postgresql":
        op.execute(sa.text(f"DROP SEQUENCE IF EXISTS {EVENT_IDS}"))
    op.drop_index("uq_audit_events_station_chain_seq", table_name="audit_events")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("chain_seq")
    op.drop_table("audit_chains")
