"""The line database's tables as SQLAlchemy 2 typed models.

The schema itself is made by the Alembic migrations in
``provisioning/migrations``; these models must describe the same tables (a test
compares them). Times are stored as UTC; states and codes as short text with a
CHECK constraint, so a row can be read with any SQL client.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from provisioning.lifecycle import (
    ActivationTrigger,
    CardState,
    ContractType,
    FormFactor,
    FunctionClass,
    LineState,
    NetworkType,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

E = TypeVar("E", bound=enum.StrEnum)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime, stored naive-UTC so SQLite and PostgreSQL agree."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UtcDateTime needs an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class EnumText(TypeDecorator[E], Generic[E]):
    """A :class:`enum.StrEnum` stored as its value in a short text column."""

    impl = String(20)
    cache_ok = True

    def __init__(self, enum_type: type[E], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.enum_type = enum_type

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum_type(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum_type(value)


def _one_of(column: str, enum_type: type[enum.StrEnum]) -> str:
    # An OR chain, not IN (...): SQLite rebuilds an IN list for every row of an
    # executemany, which made bulk stock import three times slower.
    return " OR ".join(f"{column} = '{member.value}'" for member in enum_type)


class Base(DeclarativeBase):
    """Declarative base of the line database."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class StockBatch(Base):
    """One imported vendor file: its cards share these facts."""

    __tablename__ = "stock_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    file_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    source_file: Mapped[str] = mapped_column(String(500))
    file_layout: Mapped[str] = mapped_column(String(20))
    network_type: Mapped[NetworkType] = mapped_column(EnumText(NetworkType))
    card_count: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime())
    operator: Mapped[str] = mapped_column(String(100))
    station: Mapped[str] = mapped_column(String(100))

    __table_args__ = (CheckConstraint(_one_of("network_type", NetworkType), name="network_type"),)


class Card(Base):
    """A SIM card: vendor facts, where it is in its life, and its sealed secrets.

    ``secrets`` is one AES-GCM blob per card (see :mod:`provisioning.secrets`),
    with the ICCID as associated data. ``usage_mb``/``quota_mb`` are the data
    usage and remaining quota a replacement card takes over.
    """

    __tablename__ = "cards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    iccid: Mapped[str] = mapped_column(String(20), unique=True)
    imsi: Mapped[str] = mapped_column(String(15), unique=True)
    form_factor: Mapped[FormFactor] = mapped_column(EnumText(FormFactor))
    network_type: Mapped[NetworkType] = mapped_column(EnumText(NetworkType))
    batch_id: Mapped[int] = mapped_column(ForeignKey("stock_batches.id"), index=True)
    state: Mapped[CardState] = mapped_column(EnumText(CardState), index=True)
    state_changed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    secrets: Mapped[bytes] = mapped_column(LargeBinary)
    usage_mb: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    quota_mb: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    __table_args__ = (
        CheckConstraint(_one_of("state", CardState), name="state"),
        CheckConstraint(_one_of("form_factor", FormFactor), name="form_factor"),
        CheckConstraint(_one_of("network_type", NetworkType), name="network_type"),
    )


class Line(Base):
    """A line (回線): keeps its service code and phone number for life; cards come and go."""

    __tablename__ = "lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_code: Mapped[str] = mapped_column(String(20), unique=True)
    msisdn: Mapped[str | None] = mapped_column(String(15), unique=True)
    customer: Mapped[str] = mapped_column(String(20), index=True)
    network_type: Mapped[NetworkType] = mapped_column(EnumText(NetworkType))
    function_class: Mapped[FunctionClass] = mapped_column(EnumText(FunctionClass))
    identity_verified: Mapped[bool] = mapped_column(default=False)
    contract_type: Mapped[ContractType | None] = mapped_column(EnumText(ContractType))
    activation_trigger: Mapped[ActivationTrigger | None] = mapped_column(
        EnumText(ActivationTrigger)
    )
    activation_date: Mapped[date | None] = mapped_column(Date)
    delivered_on: Mapped[date | None] = mapped_column(Date)
    # The size the order asks for; None: the station gives it at provisioning.
    form_factor: Mapped[FormFactor | None] = mapped_column(EnumText(FormFactor))
    state: Mapped[LineState] = mapped_column(EnumText(LineState))
    state_changed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint(_one_of("state", LineState), name="state"),
        CheckConstraint(_one_of("network_type", NetworkType), name="network_type"),
        CheckConstraint(_one_of("function_class", FunctionClass), name="function_class"),
        CheckConstraint(_one_of("contract_type", ContractType), name="contract_type"),
        CheckConstraint(
            _one_of("activation_trigger", ActivationTrigger), name="activation_trigger"
        ),
        CheckConstraint(_one_of("form_factor", FormFactor), name="form_factor"),
    )


class Binding(Base):
    """A card bound to a line, from ``bound_at`` until ``unbound_at`` (open: current card).

    A card is bound at most once in its life (no card goes back to stock), and
    a line has at most one open binding: the database itself refuses a second.
    """

    __tablename__ = "bindings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("lines.id"), index=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), unique=True)
    reason: Mapped[str] = mapped_column(String(30))
    fee: Mapped[str | None] = mapped_column(String(30))
    bound_at: Mapped[datetime] = mapped_column(UtcDateTime())
    unbound_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index(
            "uq_bindings_open_line",
            "line_id",
            unique=True,
            sqlite_where=text("unbound_at IS NULL"),
            postgresql_where=text("unbound_at IS NULL"),
        ),
    )


class Device(Base):
    """A modem or router shipped with a line's card (bundled device option, §11-2-4).

    An IMEI is bound to one line at a time: a lent router that came back
    (§13) is released (``released_at``) and may ship with another line.
    """

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    imei: Mapped[str] = mapped_column(String(15), index=True)
    maker: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(100))
    firmware: Mapped[str | None] = mapped_column(String(100))
    apn_profile: Mapped[str | None] = mapped_column(String(100))
    # True: settings read back equal; False: written but not proven; None: by hand.
    verified: Mapped[bool | None] = mapped_column(Boolean)
    # True: a data connection got an address; False: refused; None: not tested.
    connection_proven: Mapped[bool | None] = mapped_column(Boolean)
    line_id: Mapped[int] = mapped_column(ForeignKey("lines.id"), index=True)
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime())
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index(
            "uq_devices_bound_imei",
            "imei",
            unique=True,
            sqlite_where=text("released_at IS NULL"),
            postgresql_where=text("released_at IS NULL"),
        ),
    )


class PinJournalState(enum.StrEnum):
    """Where a card's PIN1 change to the default stands."""

    #: The change was decided and committed; the card may or may not have it yet.
    CHANGING = "changing"
    #: The card answered: its PIN1 is the default now.
    AT_DEFAULT = "at-default"


class PinJournal(Base):
    """The intent of a PIN1 change, committed before the card is touched.

    One row per card. A retry reads it to know the card's PIN1 (the vendor's,
    the default, or one of the two) and proves it on a full counter only.
    """

    __tablename__ = "pin_journal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), unique=True)
    state: Mapped[PinJournalState] = mapped_column(EnumText(PinJournalState))
    station: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (CheckConstraint(_one_of("state", PinJournalState), name="state"),)


class AuditEvent(Base):
    """One station action, hash-chained to the one before (see :mod:`provisioning.audit`)."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: The event's place in its station's chain; None on the legacy single chain.
    chain_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    station: Mapped[str] = mapped_column(String(100), index=True)
    operator: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    iccid: Mapped[str | None] = mapped_column(String(20), index=True)
    service_code: Mapped[str | None] = mapped_column(String(20), index=True)
    result: Mapped[str] = mapped_column(String(40))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("uq_audit_events_station_chain_seq", "station", "chain_seq", unique=True),
    )


class AuditChain(Base):
    """The head of one station's chain: its last position and hash; its appends lock it."""

    __tablename__ = "audit_chains"

    station: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
    #: The global ``seq`` of the chain's last event.
    last_event: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AuditHead(Base):
    """The head of the legacy single chain (events before per-station chains); frozen."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class SecretsKeyRecord(Base):
    """The fingerprint of the key that sealed every card's secrets (one row, or none yet)."""

    __tablename__ = "secrets_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key_id: Mapped[str] = mapped_column(String(16))
    set_at: Mapped[datetime] = mapped_column(UtcDateTime())
