"""What the database knows about one card or one line: state and history.

Nothing here returns a secret, except :func:`reveal_secret`, which a
technician uses for a PUK and which is itself audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from provisioning.audit import Actor, append_event
from provisioning.database import Database
from provisioning.errors import NotFoundError
from provisioning.identifiers import IMSI_LENGTH, format_msisdn, parse_iccid, parse_imsi
from provisioning.keys import box_for
from provisioning.lifecycle import (
    CardState,
    FormFactor,
    FunctionClass,
    LineState,
    NetworkType,
    return_required,
    type_i_validity,
)
from provisioning.models import AuditEvent, Binding, Card, Device, Line, StockBatch
from provisioning.secrets import Keyring
from provisioning.workflows import LineRef, line_by

RevealableSecret = Literal["puk1", "puk2"]
_HISTORY_LIMIT = 200


@dataclass(frozen=True)
class HistoryEntry:
    """One audit event about a card or line."""

    seq: int
    at: datetime
    action: str
    result: str
    iccid: str | None
    service_code: str | None
    operator: str
    station: str
    details: dict[str, Any]


@dataclass(frozen=True)
class BindingEntry:
    """A period during which a card was a line's card."""

    service_code: str
    iccid: str
    reason: str
    fee: str | None
    bound_at: datetime
    unbound_at: datetime | None


@dataclass(frozen=True)
class CardRecord:
    """A card: vendor facts, state, its line, and its history. No secrets."""

    iccid: str
    imsi: str
    form_factor: FormFactor
    network_type: NetworkType
    batch: str
    state: CardState
    state_changed_at: datetime
    never_reuse: bool
    return_required: bool
    service_code: str | None
    usage_mb: int
    quota_mb: int
    bindings: tuple[BindingEntry, ...]
    history: tuple[HistoryEntry, ...]
    #: The state of the card's current line (a suspended line shows here), else None.
    line_state: LineState | None = None


@dataclass(frozen=True)
class DeviceEntry:
    """A bundled device of a line."""

    imei: str
    maker: str | None
    model: str | None
    firmware: str | None
    apn_profile: str | None
    registered_at: datetime


@dataclass(frozen=True)
class LineRecord:
    """A line: contract facts, state, current card, card history, devices, events."""

    service_code: str
    msisdn: str | None
    customer: str
    network_type: NetworkType
    function_class: FunctionClass
    identity_verified: bool
    state: LineState
    state_changed_at: datetime
    contract_type: str | None
    activation_trigger: str | None
    activation_date: date | None
    delivered_on: date | None
    type_i_valid: bool
    type_i_deadline: date | None
    current_iccid: str | None
    current_card_state: CardState | None
    cards: tuple[BindingEntry, ...]
    devices: tuple[DeviceEntry, ...]
    history: tuple[HistoryEntry, ...]
    #: The SIM size the order asks for (None: given at provisioning).
    form_factor: str | None = None


def _history(session: Session, *conditions: Any) -> tuple[HistoryEntry, ...]:
    events = (
        session.execute(
            select(AuditEvent)
            .where(or_(*conditions))
            .order_by(AuditEvent.seq.desc())
            .limit(_HISTORY_LIMIT)
        )
        .scalars()
        .all()
    )
    return tuple(
        HistoryEntry(
            seq=e.seq,
            at=e.at,
            action=e.action,
            result=e.result,
            iccid=e.iccid,
            service_code=e.service_code,
            operator=e.operator,
            station=e.station,
            details=json.loads(e.details),
        )
        for e in reversed(events)
    )


def _bindings(session: Session, *conditions: Any) -> tuple[BindingEntry, ...]:
    rows = session.execute(
        select(Binding, Line.service_code, Card.iccid)
        .join(Line, Line.id == Binding.line_id)
        .join(Card, Card.id == Binding.card_id)
        .where(*conditions)
        .order_by(Binding.id)
    ).all()
    return tuple(
        BindingEntry(
            service_code=code,
            iccid=iccid,
            reason=b.reason,
            fee=b.fee,
            bound_at=b.bound_at,
            unbound_at=b.unbound_at,
        )
        for b, code, iccid in rows
    )


def card_key(text: str) -> tuple[str, str]:
    """``("iccid", ICCID)`` or ``("imsi", IMSI)`` for a card named by either (checked)."""
    value = text.strip()
    if len(value) == IMSI_LENGTH:
        return "imsi", parse_imsi(value)
    return "iccid", parse_iccid(value)


def show_card(database: Database, key: str) -> CardRecord:
    """A card's record by ICCID or IMSI; :class:`NotFoundError` when it is unknown."""
    kind, value = card_key(key)
    column = Card.imsi if kind == "imsi" else Card.iccid
    with database.read() as session:
        row = session.execute(
            select(Card, StockBatch.name).join(StockBatch).where(column == value)
        ).first()
        if row is None:
            raise NotFoundError(
                f"card {kind.upper()} {value} is not in the database", kind="card", key=value
            )
        card, batch = row
        iccid = card.iccid
        bindings = _bindings(session, Binding.card_id == card.id)
        history = _history(session, AuditEvent.iccid == iccid)
        line_state = session.execute(
            select(Line.state)
            .join(Binding, Binding.line_id == Line.id)
            .where(Binding.card_id == card.id, Binding.unbound_at.is_(None))
        ).scalar_one_or_none()
    current = next((b.service_code for b in bindings if b.unbound_at is None), None)
    return CardRecord(
        iccid=card.iccid,
        imsi=card.imsi,
        form_factor=card.form_factor,
        network_type=card.network_type,
        batch=batch,
        state=card.state,
        state_changed_at=card.state_changed_at,
        never_reuse=card.state in (CardState.LOST, CardState.LOST_FOUND),
        return_required=return_required(card.network_type),
        service_code=current,
        usage_mb=card.usage_mb,
        quota_mb=card.quota_mb,
        bindings=bindings,
        history=history,
        line_state=line_state,
    )


def show_line(database: Database, line_ref: LineRef | str, today: date | None = None) -> LineRecord:
    """A line's record, by service code or phone number (a string is parsed as either).

    :class:`NotFoundError` when no line matches.
    """
    ref = line_ref if isinstance(line_ref, LineRef) else LineRef.parse(line_ref)
    with database.read() as session:
        line = line_by(session, ref)
        service_code = line.service_code
        bindings = _bindings(session, Binding.line_id == line.id)
        current = session.execute(
            select(Card.iccid, Card.state)
            .join(Binding, Binding.card_id == Card.id)
            .where(Binding.line_id == line.id, Binding.unbound_at.is_(None))
        ).first()
        devices = (
            session.execute(select(Device).where(Device.line_id == line.id).order_by(Device.id))
            .scalars()
            .all()
        )
        history = _history(session, AuditEvent.service_code == service_code)
    validity = type_i_validity(
        line.network_type,
        line.contract_type,
        line.delivered_on,
        line.activation_date,
        today or datetime.now(UTC).date(),
    )
    return LineRecord(
        service_code=line.service_code,
        msisdn=format_msisdn(line.msisdn) if line.msisdn else None,
        customer=line.customer,
        network_type=line.network_type,
        function_class=line.function_class,
        identity_verified=line.identity_verified,
        state=line.state,
        state_changed_at=line.state_changed_at,
        contract_type=line.contract_type.value if line.contract_type else None,
        activation_trigger=line.activation_trigger.value if line.activation_trigger else None,
        activation_date=line.activation_date,
        delivered_on=line.delivered_on,
        type_i_valid=validity.valid,
        type_i_deadline=validity.deadline,
        current_iccid=current[0] if current else None,
        current_card_state=current[1] if current else None,
        form_factor=line.form_factor.value if line.form_factor else None,
        cards=bindings,
        devices=tuple(
            DeviceEntry(
                imei=d.imei,
                maker=d.maker,
                model=d.model,
                firmware=d.firmware,
                apn_profile=d.apn_profile,
                registered_at=d.registered_at,
            )
            for d in devices
        ),
        history=history,
    )


PinResult = Literal["done", "failed", "refused"]


def record_pin_operation(
    database: Database,
    actor: Actor,
    iccid: str,
    operation: str,
    which: str,
    result: PinResult,
    *,
    retries_before: int | None,
    retries_after: int | None,
    details: dict[str, Any] | None = None,
) -> bool:
    """Put one PIN operation on a card's record: event ``pin-OPERATION``.

    ``result`` is ``done``, ``failed`` (the card said no: a wrong value, a
    blocked counter, the card gone) or ``refused`` (the station's PIN policy
    sent nothing). ``details`` adds the error's kind or the warehouse check's
    verdict, never a PIN or PUK value. False, and nothing written, when the
    database does not know the card. A database failure is raised: the
    caller decides what it means for the card operation it describes.
    """
    with database.write() as session:
        if session.execute(select(Card.id).where(Card.iccid == iccid)).first() is None:
            return False
        append_event(
            session,
            actor,
            f"pin-{operation}",
            iccid=iccid,
            result=result,
            details={
                "operation": operation,
                "which": which,
                "retries_before": retries_before,
                "retries_after": retries_after,
                **(details or {}),
            },
        )
    return True


def reveal_secret(
    database: Database, keyring: Keyring, actor: Actor, iccid: str, which: RevealableSecret
) -> str:
    """A card's PUK for a technician; the reveal itself is audited (never the value)."""
    if which not in ("puk1", "puk2"):
        raise ValueError(f"only a PUK can be revealed, not {which!r}")
    with database.write() as session:
        card = session.execute(select(Card).where(Card.iccid == iccid)).scalar_one_or_none()
        if card is None:
            raise NotFoundError(f"card {iccid} is not in the database", kind="card", key=iccid)
        secrets = box_for(session, keyring, sealing=False).open(iccid, card.secrets)
        value = secrets.puk1 if which == "puk1" else secrets.puk2
        if value is None:
            raise NotFoundError(
                f"card {iccid} has no {which.upper()} on record", kind=which, key=iccid
            )
        append_event(session, actor, "reveal-secret", iccid=iccid, result=which)
    return value
