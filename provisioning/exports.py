"""What leaves the station as lists: the bundled-device IMEI list and the shift report."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from provisioning.audit import Actor, append_event, chain_heads, heads_digest
from provisioning.database import Database
from provisioning.errors import NotFoundError
from provisioning.identifiers import parse_customer_id
from provisioning.models import AuditEvent, Device, Line


@dataclass(frozen=True)
class ImeiList:
    """The bundled-device list for one customer (§11-2-4).

    ``service_codes`` and ``imeis`` are each sorted on their own: nothing in
    this list pairs a card with a device, by position or otherwise.
    """

    customer: str
    service_codes: tuple[str, ...]
    imeis: tuple[str, ...]


def export_imei_list(database: Database, actor: Actor, customer: str) -> ImeiList:
    """The customer's lines that shipped with a device, and those devices' IMEIs, unpaired."""
    customer = parse_customer_id(customer)
    with database.write() as session:
        if (
            session.execute(select(Line.id).where(Line.customer == customer).limit(1)).first()
            is None
        ):
            raise NotFoundError(
                f"customer {customer} has no line in the database", kind="customer", key=customer
            )
        rows = session.execute(
            select(Line.service_code, Device.imei)
            .join(Device, Device.line_id == Line.id)
            .where(Line.customer == customer, Device.released_at.is_(None))
        ).all()
        service_codes = tuple(sorted({code for code, _ in rows}))
        imeis = tuple(sorted(imei for _, imei in rows))
        append_event(
            session,
            actor,
            "export-imei-list",
            details={
                "customer": customer,
                "service_codes": len(service_codes),
                "imeis": len(imeis),
            },
        )
    return ImeiList(customer=customer, service_codes=service_codes, imeis=imeis)


@dataclass(frozen=True)
class ShiftEvent:
    """One action of the shift."""

    seq: int
    at: datetime
    operator: str
    action: str
    result: str
    iccid: str | None
    service_code: str | None
    details: dict[str, object]


@dataclass(frozen=True)
class ShiftReport:
    """What one station did since a time: every event, counted by action.

    ``chain_head_seq`` is the last event's id and ``chain_head_hash`` the digest
    of every audit chain's head (:func:`provisioning.audit.heads_digest`) when
    the report was made: kept with the report, they prove later that the trail
    was not rewritten.
    """

    station: str
    since: datetime
    until: datetime
    totals: dict[str, int]
    events: tuple[ShiftEvent, ...]
    chain_head_seq: int
    chain_head_hash: str
    #: The attempts refused by a rule or failed (router configurations), in order.
    refusals: tuple[ShiftEvent, ...] = ()


def shift_report(database: Database, station: str, since: datetime, until: datetime) -> ShiftReport:
    """The events of ``station`` from ``since`` up to ``until`` (aware datetimes)."""
    with database.read() as session:
        events = (
            session.execute(
                select(AuditEvent)
                .where(
                    AuditEvent.station == station, AuditEvent.at >= since, AuditEvent.at <= until
                )
                .order_by(AuditEvent.seq)
            )
            .scalars()
            .all()
        )
        heads = chain_heads(session)
        last_event = session.scalar(select(func.max(AuditEvent.seq))) or 0
    totals = Counter(f"{e.action}:{e.result}" for e in events)
    shift_events = tuple(
        ShiftEvent(
            seq=e.seq,
            at=e.at,
            operator=e.operator,
            action=e.action,
            result=e.result,
            iccid=e.iccid,
            service_code=e.service_code,
            details=json.loads(e.details),
        )
        for e in events
    )
    return ShiftReport(
        station=station,
        since=since,
        until=until,
        totals=dict(sorted(totals.items())),
        events=shift_events,
        chain_head_seq=int(last_event),
        chain_head_hash=heads_digest(heads),
        refusals=tuple(e for e in shift_events if e.result in UNSUCCESSFUL),
    )


#: Results of attempts that did not go through.
UNSUCCESSFUL = frozenset({"refused", "failed"})

SHIFT_CSV_COLUMNS = (
    "seq",
    "at",
    "operator",
    "action",
    "result",
    "rule",
    "iccid",
    "service_code",
)


def event_rule(event: ShiftEvent) -> str:
    """The rule that refused an attempt ('' for an attempt that was not refused)."""
    rule = event.details.get("rule")
    return rule if isinstance(rule, str) else ""


def shift_rows(
    report: ShiftReport, when: Callable[[datetime], str] = datetime.isoformat
) -> list[list[str]]:
    """The report's events as CSV rows under :data:`SHIFT_CSV_COLUMNS`.

    ``when`` formats a time (default: ISO 8601 in UTC, as stored).
    """
    return [
        [
            str(e.seq),
            when(e.at),
            e.operator,
            e.action,
            e.result,
            event_rule(e),
            e.iccid or "",
            e.service_code or "",
        ]
        for e in report.events
    ]


IMEI_CSV_COLUMNS = ("list", "value")


def imei_rows(listing: ImeiList) -> list[list[str]]:
    """The IMEI list as CSV rows: the service codes, then the IMEIs, each sorted on its
    own. One value per row, so no row pairs a card with a device (§11-2-4)."""
    return [["service_code", code] for code in listing.service_codes] + [
        ["imei", imei] for imei in listing.imeis
    ]
