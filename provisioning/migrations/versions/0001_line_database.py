"""The line database: stock, cards, lines, bindings, devices, audit chain, secrets key.

Revision ID: 0001
Revises:
Create Date: 2026-05-10

Written out in full (no import of the models) so that it keeps meaning the
same schema when the models change later.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

CARD_STATES = (
    "in-stock",
    "active",
    "lost",
    "faulty",
    "replaced",
    "awaiting-return",
    "retired",
    "returned",
    "lost-found",
)
LINE_STATES = ("pending", "active", "suspended", "cancelled")
NETWORK_TYPES = ("D", "K", "I")
FUNCTION_CLASSES = ("data", "sms", "voice")
FORM_FACTORS = ("standard", "micro", "nano", "multi")
CONTRACT_TYPES = ("monthly", "prepaid")
ACTIVATION_TRIGGERS = ("attach", "manual")
GENESIS_HASH = "0" * 64


def _one_of(table: str, column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    # An OR chain, not IN (...): SQLite re-evaluates an IN list per inserted row.
    condition = " OR ".join(f"{column} = '{value}'" for value in values)
    return sa.CheckConstraint(condition, name=op.f(f"ck_{table}_{column}"))


def upgrade() -> None:
    """Create every table, and the audit chain's head at the genesis hash."""
    op.create_table(
        "stock_batches",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("source_file", sa.String(500), nullable=False),
        sa.Column("file_layout", sa.String(20), nullable=False),
        sa.Column("network_type", sa.String(20), nullable=False),
        sa.Column("card_count", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.Column("operator", sa.String(100), nullable=False),
        sa.Column("station", sa.String(100), nullable=False),
        _one_of("stock_batches", "network_type", NETWORK_TYPES),
        sa.UniqueConstraint("name", name=op.f("uq_stock_batches_name")),
        sa.UniqueConstraint("file_sha256", name=op.f("uq_stock_batches_file_sha256")),
    )
    op.create_table(
        "cards",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("iccid", sa.String(20), nullable=False),
        sa.Column("imsi", sa.String(15), nullable=False),
        sa.Column("form_factor", sa.String(20), nullable=False),
        sa.Column("network_type", sa.String(20), nullable=False),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("stock_batches.id"), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("state_changed_at", sa.DateTime(), nullable=False),
        sa.Column("secrets", sa.LargeBinary(), nullable=False),
        sa.Column("usage_mb", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("quota_mb", sa.Integer(), nullable=False, server_default=sa.text("0")),
        _one_of("cards", "state", CARD_STATES),
        _one_of("cards", "form_factor", FORM_FACTORS),
        _one_of("cards", "network_type", NETWORK_TYPES),
        sa.UniqueConstraint("iccid", name=op.f("uq_cards_iccid")),
        sa.UniqueConstraint("imsi", name=op.f("uq_cards_imsi")),
    )
    op.create_index(op.f("ix_cards_batch_id"), "cards", ["batch_id"])
    op.create_index(op.f("ix_cards_state"), "cards", ["state"])
    op.create_table(
        "lines",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("service_code", sa.String(20), nullable=False),
        sa.Column("msisdn", sa.String(15), nullable=True),
        sa.Column("customer", sa.String(20), nullable=False),
        sa.Column("network_type", sa.String(20), nullable=False),
        sa.Column("function_class", sa.String(20), nullable=False),
        sa.Column("identity_verified", sa.Boolean(), nullable=False),
        sa.Column("contract_type", sa.String(20), nullable=True),
        sa.Column("activation_trigger", sa.String(20), nullable=True),
        sa.Column("activation_date", sa.Date(), nullable=True),
        sa.Column("delivered_on", sa.Date(), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("state_changed_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        _one_of("lines", "state", LINE_STATES),
        _one_of("lines", "network_type", NETWORK_TYPES),
        _one_of("lines", "function_class", FUNCTION_CLASSES),
        _one_of("lines", "contract_type", CONTRACT_TYPES),
        _one_of("lines", "activation_trigger", ACTIVATION_TRIGGERS),
        sa.UniqueConstraint("service_code", name=op.f("uq_lines_service_code")),
        sa.UniqueConstraint("msisdn", name=op.f("uq_lines_msisdn")),
    )
    op.create_index(op.f("ix_lines_customer"), "lines", ["customer"])
    op.create_table(
        "bindings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("line_id", sa.Integer(), sa.ForeignKey("lines.id"), nullable=False),
        sa.Column("card_id", sa.Integer(), sa.ForeignKey("cards.id"), nullable=False),
        sa.Column("reason", sa.String(30), nullable=False),
        sa.Column("fee", sa.String(30), nullable=True),
        sa.Column("bound_at", sa.DateTime(), nullable=False),
        sa.Column("unbound_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("card_id", name=op.f("uq_bindings_card_id")),
    )
    op.create_index(op.f("ix_bindings_line_id"), "bindings", ["line_id"])
    # At most one open binding (current card) per line, enforced by the database.
    op.create_index(
        "uq_bindings_open_line",
        "bindings",
        ["line_id"],
        unique=True,
        sqlite_where=sa.text("unbound_at IS NULL"),
        postgresql_where=sa.text("unbound_at IS NULL"),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("imei", sa.String(15), nullable=False),
        sa.Column("maker", sa.String(100), nullable=True),
        sa.Column("model", sa.String(100), nullable=True),
        sa.Column("firmware", sa.String(100), nullable=True),
        sa.Column("apn_profile", sa.String(100), nullable=True),
        sa.Column("line_id", sa.Integer(), sa.ForeignKey("lines.id"), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("imei", name=op.f("uq_devices_imei")),
    )
    op.create_index(op.f("ix_devices_line_id"), "devices", ["line_id"])
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("station", sa.String(100), nullable=False),
        sa.Column("operator", sa.String(100), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("iccid", sa.String(20), nullable=True),
        sa.Column("service_code", sa.String(20), nullable=True),
        sa.Column("result", sa.String(40), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index(op.f("ix_audit_events_station"), "audit_events", ["station"])
    op.create_index(op.f("ix_audit_events_iccid"), "audit_events", ["iccid"])
    op.create_index(op.f("ix_audit_events_service_code"), "audit_events", ["service_code"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "last_seq": 0, "last_hash": GENESIS_HASH}])
    op.create_table(
        "secrets_key",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("set_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    """Drop every table (the data goes with them)."""
    for table in (
        "secrets_key",
        "audit_head",
        "audit_events",
        "devices",
        "bindings",
        "lines",
        "cards",
        "stock_batches",
    ):
        op.drop_table(table)
