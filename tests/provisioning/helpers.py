"""Cards and stock as plain data for the line database tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from provisioning.cardfacts import CardFacts, PinFacts, PinOutcome, PinOutcomeKind, StaticCard
from provisioning.database import Database
from provisioning.models import Base
from provisioning.stockfile import StockRow


@dataclass
class Stock:
    """Synthetic stock rows written to a CSV file."""

    path: Path
    rows: list[StockRow]

    def row(self, index: int) -> StockRow:
        """The row at ``index``."""
        return self.rows[index]


def card_facts(
    row: StockRow,
    *,
    imsi: str | None = None,
    imsi_protected: bool = False,
    pin1_blocked: bool = False,
    puk1_blocked: bool = False,
    iccid: str | None = None,
) -> CardFacts:
    """What a healthy chip carrying ``row`` would answer (details overridable)."""
    return CardFacts(
        iccid=iccid or row.iccid,
        iccid_luhn_ok=True,
        imsi=None if imsi_protected else (imsi or row.imsi),
        imsi_protected=imsi_protected,
        pin1=PinFacts(retries=0 if pin1_blocked else 3, enabled=True, blocked=pin1_blocked),
        puk1=PinFacts(retries=0 if puk1_blocked else 10, enabled=None, blocked=puk1_blocked),
    )


DEFAULT_PIN = PinOutcome(PinOutcomeKind.ALREADY_DEFAULT, "VERIFY 0000 succeeded")


def chip(
    row: StockRow, *, pin: PinOutcome = DEFAULT_PIN, calls: list[str] | None = None, **facts: object
) -> StaticCard:
    """A :class:`StaticCard` for ``row``; ``calls`` records what the workflow asked of it."""
    return StaticCard(
        facts=card_facts(row, **facts),  # type: ignore[arg-type]
        pin_outcome=pin,
        imsi_after_pin=row.imsi,
        calls=calls if calls is not None else [],
    )


#: The audit trail: every attempt is recorded there, refused ones too.
AUDIT_TABLES = frozenset({"audit_events", "audit_head", "audit_chains"})


def snapshot(database: Database) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every state table, to prove that a refused action changed nothing.

    The audit trail is left out: a refusal (and any PIN operation sent to the
    card) is recorded there; tests check those events on their own.
    """
    tables: dict[str, list[tuple[object, ...]]] = {}
    with database.read() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in AUDIT_TABLES:
                continue
            rows = session.execute(select(table).order_by(*table.primary_key.columns)).all()
            tables[table.name] = [tuple(row) for row in rows]
    return tables
