"""The warehouse workflows: provision, reissue, form-factor change, return, loss,
suspend, resume and cancel.

Each workflow works in two phases. First it reads the card (once) and the
database and runs every check; the card's PIN is touched only after every
database check has passed. Then one transaction writes everything: each state
change is a conditional UPDATE (``... WHERE state = <the state checked>``) whose
row count proves that no other station changed the card or line in between, the
binding rows are guarded by unique indexes, and the audit event is appended in
the same transaction. Whoever loses a race gets :class:`ConcurrentChangeError`
and nothing of theirs is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NamedTuple, NoReturn

from sqlalchemy import bindparam, insert, join, literal, select, true, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from apdu.errors import ParseError, SimtoolError, UsageError
from modem.errors import ModemError
from provisioning.audit import (
    CARD_DIGEST_COLUMNS,
    LINE_DIGEST_COLUMNS,
    Actor,
    append_event,
    digests_of,
)
from provisioning.cardfacts import CardFacts, CardSession, PinOutcome, PinOutcomeKind
from provisioning.database import Database
from provisioning.devices import DeviceFacts, DeviceSession
from provisioning.errors import (
    Check,
    CheckFailedError,
    ConcurrentChangeError,
    LifecycleError,
    NotFoundError,
    RefusedError,
)
from provisioning.identifiers import parse_iccid, parse_imei, parse_msisdn, parse_service_code
from provisioning.keys import KEY_ID_OF_DATABASE, box_for_key_id
from provisioning.lifecycle import (
    RULE_TEXT,
    CardState,
    CardStep,
    FormFactor,
    FunctionClass,
    LineState,
    LineStep,
    NetworkType,
    ReissueReason,
    Rule,
    card_serves,
    check_combination,
    check_identity,
    check_network_type,
    check_resume,
    check_type_i_validity,
    next_card_state,
    next_line_state,
    refuse,
    return_required,
)
from provisioning.models import (
    Binding,
    Card,
    Device,
    Line,
    PinJournal,
    PinJournalState,
    StockBatch,
    UtcDateTime,
)
from provisioning.secrets import Keyring

#: The PIN1 a card leaves the warehouse with.
DEFAULT_PIN1 = "0000"
REISSUE_FEE = "reissue"
log = logging.getLogger(__name__)
FORM_FACTOR_CHANGE_FEE = "form-factor-change"


@dataclass(frozen=True)
class LineRef:
    """A line named by exactly one of its service code, phone number, or current card."""

    service_code: str | None = None
    msisdn: str | None = None
    iccid: str | None = None

    def __post_init__(self) -> None:
        given = [v for v in (self.service_code, self.msisdn, self.iccid) if v]
        if len(given) != 1:
            raise UsageError("name the line by one of: service code, phone number, ICCID")
        # Checked (format and length) before the database ever sees them.
        if self.service_code:
            object.__setattr__(self, "service_code", parse_service_code(self.service_code))
        if self.msisdn:
            object.__setattr__(self, "msisdn", parse_msisdn(self.msisdn))
        if self.iccid:
            object.__setattr__(self, "iccid", parse_iccid(self.iccid))

    @classmethod
    def parse(cls, text: str) -> LineRef:
        """A line named by a service code (``hdd...``) or a phone number (with or
        without hyphens)."""
        value = text.strip()
        if value.lower().startswith("hdd"):
            return cls(service_code=value)
        if value[:1].isdigit():
            return cls(msisdn=value)
        raise ParseError(
            "name the line by its service code (hdd...) or its phone number "
            "(070-1234-5678 or 07012345678)",
            data=value[:40],
        )

    def __str__(self) -> str:
        if self.service_code:
            return f"line {self.service_code}"
        if self.msisdn:
            return f"the line of {self.msisdn}"
        return f"the line of card {self.iccid}"


@dataclass(frozen=True)
class BindResult:
    """A card bound to a line: by provision, reissue or form-factor change.

    ``old_*`` describe the card it replaced; ``carried_over`` the usage and
    quota figures the new card took over.
    """

    action: str
    service_code: str
    msisdn: str | None
    iccid: str
    form_factor: FormFactor
    line_state: LineState
    checks: tuple[Check, ...]
    pin: PinOutcome
    audit_seq: int
    old_iccid: str | None = None
    old_card_state: CardState | None = None
    fee: str | None = None
    carried_over: dict[str, int] | None = None
    device_imei: str | None = None


@dataclass(frozen=True)
class LineActionResult:
    """A line or its card changed state (loss, suspend, resume, cancel)."""

    action: str
    service_code: str
    msisdn: str | None
    line_state: LineState
    iccid: str | None
    card_state: CardState | None
    audit_seq: int
    note: str | None = None


@dataclass(frozen=True)
class ReturnResult:
    """A card taken back in: its state before and after, and where it goes now."""

    iccid: str
    previous_state: CardState
    state: CardState
    never_reuse: bool
    disposition: str
    service_code: str | None
    audit_seq: int


# -- reading what the checks need ---------------------------------------------


def line_by(session: Session, ref: LineRef) -> Line:
    """The line ``ref`` names; :class:`NotFoundError` when none does."""
    query = select(Line)
    params: dict[str, Any] = {}
    if ref.service_code:
        query, params = _LINE_BY_CODE, {"code": ref.service_code}
    elif ref.msisdn:
        query = query.where(Line.msisdn == ref.msisdn)
    else:
        query = (
            query.join(Binding, Binding.line_id == Line.id)
            .join(Card, Card.id == Binding.card_id)
            .where(Card.iccid == ref.iccid, Binding.unbound_at.is_(None))
        )
    line = session.execute(query, params).scalar_one_or_none()
    if line is None:
        key = ref.service_code or ref.msisdn or ref.iccid or ""
        if ref.service_code:
            missing = f"no line {ref.service_code} in the database"
        elif ref.msisdn:
            missing = f"no line has phone number {ref.msisdn} in the database"
        else:
            missing = f"no line has card {ref.iccid} in the database"
        raise NotFoundError(missing, kind="line", key=key)
    return line


def _current_card(session: Session, line_id: int) -> tuple[Card, Binding] | None:
    row = session.execute(
        select(Card, Binding)
        .join(Binding, Binding.card_id == Card.id)
        .where(Binding.line_id == line_id, Binding.unbound_at.is_(None))
    ).first()
    return None if row is None else (row[0], row[1])


def _card_by_iccid(session: Session, iccid: str) -> Card | None:
    return session.execute(_CARD_BY_ICCID, {"iccid": iccid}).scalar_one_or_none()


# The lookups and moves of every provision, built once: building a statement
# costs more CPU than running it (bench/bench_stations.py); values are bound.
_LINE_BY_CODE = select(Line).where(Line.service_code == bindparam("code"))
_CARD_BY_ICCID = select(Card).where(Card.iccid == bindparam("iccid"))
_MOVE_CARD = (
    update(Card)
    .where(Card.id == bindparam("card_id"), Card.state == bindparam("before"))
    .values(state=bindparam("after"), state_changed_at=bindparam("now"))
)
_MOVE_LINE = (
    update(Line)
    .where(Line.id == bindparam("line_id"), Line.state == bindparam("before"))
    .values(state=bindparam("after"), state_changed_at=bindparam("now"))
)


@dataclass(frozen=True)
class _LineFacts:
    """What a provision needs of its line (read in one statement, no ORM object)."""

    id: int
    service_code: str
    msisdn: str | None
    state: LineState
    form_factor: FormFactor | None
    network_type: NetworkType
    function_class: FunctionClass
    identity_verified: bool


_LINE_COLUMNS = (
    Line.id,
    Line.service_code,
    Line.msisdn,
    Line.state,
    Line.form_factor,
    Line.network_type,
    Line.function_class,
    Line.identity_verified,
)


class _CardRow(NamedTuple):
    """What the checks of a new card need of its record (one statement's row)."""

    id: int
    iccid: str
    imsi: str
    state: CardState
    network_type: NetworkType
    form_factor: FormFactor
    secrets: bytes
    batch: str
    journal: PinJournalState | None
    key_id: str | None


_CARD_COLUMNS = (
    Card.id,
    Card.iccid,
    Card.imsi,
    Card.state,
    Card.network_type,
    Card.form_factor,
    Card.secrets,
    StockBatch.name,
    PinJournal.state,
    KEY_ID_OF_DATABASE,
)
_CARD_SIDE = join(Card, StockBatch, StockBatch.id == Card.batch_id).outerjoin(
    PinJournal, PinJournal.card_id == Card.id
)
# The card with its batch, its PIN journal and the database's key id.
_CARD_TO_PROVISION = (
    select(*_CARD_COLUMNS).select_from(_CARD_SIDE).where(Card.iccid == bindparam("iccid"))
)
# A provision reads its line and its card in one statement: the line's row,
# with the card's columns (NULL when the ICCID is not in stock) beside it.
_LINE_AND_CARD_TO_PROVISION = (
    select(*_LINE_COLUMNS, *_CARD_COLUMNS)
    .select_from(Line)
    .outerjoin(_CARD_SIDE, Card.iccid == bindparam("iccid"))
    .where(Line.service_code == bindparam("code"))
)
# A provision's moves return the rows' digest columns: the rows are locked by
# the update itself, so the digests are those the commit leaves (audit.digests_of).
_MOVE_CARD_RETURNING = _MOVE_CARD.returning(*CARD_DIGEST_COLUMNS)
_MOVE_LINE_RETURNING = _MOVE_LINE.returning(*LINE_DIGEST_COLUMNS)
_INSERT_BINDING = insert(Binding)


# -- conditional writes -------------------------------------------------------


def _move_card(
    session: Session | Connection,
    card_id: int,
    iccid: str,
    before: CardState,
    after: CardState,
    now: datetime,
    returning: Any = None,
    **values: Any,
) -> Sequence[Any]:
    """Set a card's state, only if it is still ``before``; else another station won.

    Returns the columns of ``returning`` (a :data:`_MOVE_CARD` with a RETURNING
    clause), else an empty row.
    """
    statement = (
        (returning if returning is not None else _MOVE_CARD)
        if not values
        else update(Card)
        .where(Card.id == card_id, Card.state == before)
        .values(state=after, state_changed_at=now, **values)
    )
    result = _core(session).execute(
        statement, {"card_id": card_id, "before": before, "after": after, "now": now}
    )
    moved = _moved_row(result, returning is not None)
    if moved is None:
        _lost_race(session, Card, card_id, iccid, before)
    return moved


def _lost_race(
    session: Session | Connection,
    table: type[Card] | type[Line],
    row_id: int,
    key: str,
    before: CardState | LineState,
) -> NoReturn:
    """Another station moved the card or line first: say where it is now."""
    kind = "card" if table is Card else "line"
    now_state = session.execute(select(table.state).where(table.id == row_id)).scalar()
    raise ConcurrentChangeError(
        f"{kind} {key} changed while this station worked: it is now {now_state}, not "
        f"{before} (another station got it first); nothing was written",
        kind=kind,
        key=key,
    )


def _core(session: Session | Connection) -> Connection:
    """The connection under ``session``: conditional moves are Core statements either way."""
    return session if isinstance(session, Connection) else session.connection()


def _moved_row(result: Any, returning: bool) -> Sequence[Any] | None:
    """The row a conditional update returned (an empty one without RETURNING); None: no row."""
    if returning:
        row = result.first()
        return None if row is None else tuple(row)
    return () if result.rowcount == 1 else None


def _move_line(
    session: Session | Connection,
    line_id: int,
    service_code: str,
    before: LineState,
    after: LineState,
    now: datetime,
    returning: Any = None,
) -> Sequence[Any]:
    """Set a line's state, only if it is still ``before``; else another station won.

    Returns the columns of ``returning`` (a :data:`_MOVE_LINE` with a RETURNING
    clause), else an empty row.
    """
    result = _core(session).execute(
        returning if returning is not None else _MOVE_LINE,
        {"line_id": line_id, "before": before, "after": after, "now": now},
    )
    moved = _moved_row(result, returning is not None)
    if moved is None:
        _lost_race(session, Line, line_id, service_code, before)
    return moved


def _close_binding(session: Session, binding_id: int, service_code: str, now: datetime) -> None:
    result = session.connection().execute(
        update(Binding)
        .where(Binding.id == binding_id, Binding.unbound_at.is_(None))
        .values(unbound_at=now)
    )
    if result.rowcount != 1:
        raise ConcurrentChangeError(
            f"line {service_code}'s card was changed by another station meanwhile; nothing "
            f"was written",
            kind="line",
            key=service_code,
        )


# -- the checks of a new card -------------------------------------------------


@dataclass
class _Checklist:
    """The checks of one provisioning pass; the first failure ends it."""

    service_code: str
    iccid: str | None = None
    checks: list[Check] = field(default_factory=list)

    def passed(self, name: str, detail: str) -> None:
        self.checks.append(Check(name, True, detail))

    def fail(self, name: str, rule: Rule, message: str) -> NoReturn:
        text = f"{message} (rule {rule.value}: {RULE_TEXT[rule]})"
        self.checks.append(Check(name, False, text))
        raise CheckFailedError(
            text,
            rule=rule.value,
            checks=self.checks,
            iccid=self.iccid,
            service_code=self.service_code,
        )

    def run(self, name: str, detail: str, check: Callable[[], object]) -> None:
        """Run one lifecycle rule as a check: its refusal fails the pass."""
        try:
            check()
        except LifecycleError as error:
            self.checks.append(Check(name, False, str(error)))
            raise CheckFailedError(
                str(error),
                rule=error.rule,
                checks=self.checks,
                iccid=self.iccid,
                service_code=self.service_code,
            ) from error
        self.passed(name, detail)


@dataclass(frozen=True)
class _NewCard:
    card_id: int
    iccid: str
    pin: PinOutcome
    checklist: _Checklist

    @property
    def checks(self) -> tuple[Check, ...]:
        return tuple(self.checklist.checks)


def _check_new_card(
    database: Database,
    actor: Actor,
    keyring: Keyring | None,
    line: Line | _LineFacts,
    card: CardSession,
    form_factor: FormFactor,
    scanned_iccid: str | None,
    device: DeviceFacts | None,
    *,
    read: tuple[CardFacts, _CardRow | None] | None = None,
) -> _NewCard:
    """Every check of a card about to be bound to ``line``; the PIN is touched last.

    ``read``: the chip's facts and the card's record (None: not in stock) when
    the caller has read them already.
    """
    checklist = _Checklist(service_code=line.service_code)
    facts = read[0] if read is not None else card.read_facts()
    checklist.iccid = facts.iccid
    _check_chip_iccid(checklist, facts)
    if scanned_iccid is not None:
        scanned = scanned_iccid.strip().replace(" ", "")
        if scanned != facts.iccid:
            checklist.fail(
                "label", Rule.LABEL_MATCH, f"the chip says {facts.iccid}, the label says {scanned}"
            )
        checklist.passed("label", f"label and chip agree: {facts.iccid}")
    # One statement reads the card with its batch, its PIN journal and the
    # database's key id: one snapshot, and no transaction of its own (the
    # write re-checks the card's state).
    if read is not None:
        row = read[1]
    else:
        with database.lookup() as connection:
            found = connection.execute(_CARD_TO_PROVISION, {"iccid": facts.iccid}).one_or_none()
        row = None if found is None else _CardRow(*found)
    if row is None:
        checklist.fail(
            "in-stock", Rule.STOCK_ONLY, f"card {facts.iccid} is not in the stock database"
        )
    checklist.run(
        "in-stock",
        f"card {facts.iccid} is in stock (batch {row.batch})",
        lambda: next_card_state(
            row.state, CardStep.PROVISION, iccid=row.iccid, network_type=row.network_type
        ),
    )
    checklist.run(
        "network-type",
        f"type {row.network_type} card for a type {line.network_type} line",
        lambda: check_network_type(row.network_type, line.network_type, iccid=row.iccid),
    )
    if not card_serves(row.form_factor, form_factor, line.network_type, line.function_class):
        checklist.fail(
            "form-factor",
            Rule.FORM_FACTOR_MATCH,
            f"card {row.iccid} is a {row.form_factor} SIM, the order asks for {form_factor}",
        )
    checklist.passed(
        "form-factor",
        f"{form_factor} SIM, as ordered"
        if row.form_factor is form_factor
        else f"multi-cut card, breaks out to the {form_factor} SIM ordered",
    )
    checklist.run(
        "combination",
        f"type {line.network_type} {line.function_class} {form_factor} is offered",
        lambda: check_combination(line.network_type, line.function_class, form_factor),
    )
    checklist.run(
        "identity",
        "voice identity verified"
        if line.identity_verified
        else f"{line.function_class} line: no identity check needed",
        lambda: check_identity(
            line.function_class, line.identity_verified, service_code=line.service_code
        ),
    )
    if device is not None:
        with database.lookup() as connection:
            _check_device(connection, checklist, device)
    known_pin = None
    if keyring is not None:
        known_pin = box_for_key_id(keyring, row.key_id).open(row.iccid, row.secrets).pin1
    journal = row.journal
    expected_imsi = row.imsi
    card_id, iccid = row.id, row.iccid
    _check_pin1_state(checklist, facts)
    if facts.imsi is not None:
        _check_imsi(checklist, facts.imsi, expected_imsi)
    pin = _ensure_default_journaled(database, actor, card, card_id, iccid, known_pin, journal)
    if not pin.is_default:
        checklist.fail(
            "pin1-default", Rule.PIN_DEFAULT, f"PIN1 cannot be proven to be 0000: {pin.reason}"
        )
    checklist.passed("pin1-default", f"PIN1 is 0000 ({pin.outcome})")
    if facts.imsi is None:
        _check_imsi(checklist, card.read_imsi(), expected_imsi)
    return _NewCard(card_id=card_id, iccid=iccid, pin=pin, checklist=checklist)


def _ensure_default_journaled(
    database: Database,
    actor: Actor,
    card: CardSession,
    card_id: int,
    iccid: str,
    vendor_pin: str | None,
    journal: PinJournalState | None,
) -> PinOutcome:
    """Leave the card at PIN1 = 0000 without ever spending an attempt on a retry.

    Changing the vendor's PIN1 to the default is journaled: the intent is
    committed before the card is touched (``changing``) and the card's answer
    after (``at-default``). A retry reads the journal, so it knows which PIN
    the card holds, whatever failed after the change (router, crash, another
    station, the database):

    - ``at-default``: only VERIFY 0000, and only on a full counter;
    - ``changing`` (the station stopped between the intent and the card's
      answer): the card holds the vendor's PIN or the default; VERIFY 0000 is
      tried on a full counter only (the likelier one: the change is one APDU).
      If the card refuses it, the card holds the vendor's PIN; that is used
      again only on a full counter, so nothing more is risked without a person;
    - no journal: the vendor's PIN (or the default) as the PIN policy allows.

    Every PIN operation sent is recorded in the audit trail.
    """
    if journal is PinJournalState.AT_DEFAULT:
        return _record_pin(database, actor, iccid, card.ensure_default_pin(None), "at-default")
    if journal is PinJournalState.CHANGING:
        probe = card.ensure_default_pin(None)
        if probe.is_default:
            _set_journal(database, actor, card_id, PinJournalState.AT_DEFAULT, iccid, probe)
            return probe
        _record_pin(database, actor, iccid, probe, "changing")
        if probe.attempt_spent or vendor_pin is None:
            # 0000 refused: the card holds the vendor's PIN, but its counter is
            # no longer full; a person decides (simtool pin ensure-default).
            return PinOutcome(
                PinOutcomeKind.CANNOT_PROVE,
                f"{probe.reason}; the card holds the vendor's PIN1 (an earlier change did "
                "not reach the card); change it with 'simtool pin ensure-default --pin'",
                probe.retries_before,
                probe.retries_after,
            )
        # Nothing was sent (the counter was not full): the vendor's PIN is not
        # tried either, by the same rule.
        return probe
    if vendor_pin is None or vendor_pin == DEFAULT_PIN1:
        return _record_pin(database, actor, iccid, card.ensure_default_pin(vendor_pin), None)
    _set_journal(database, actor, card_id, PinJournalState.CHANGING)
    outcome = card.ensure_default_pin(vendor_pin)
    if outcome.outcome is PinOutcomeKind.CHANGED_TO_DEFAULT:
        _set_journal(database, actor, card_id, PinJournalState.AT_DEFAULT, iccid, outcome)
    else:
        # The card answered and kept its PIN (wrong vendor PIN, policy refusal):
        # nothing is in doubt, so the intent goes.
        _set_journal(database, actor, card_id, None, iccid, outcome)
    return outcome


def _set_journal(
    database: Database,
    actor: Actor,
    card_id: int,
    state: PinJournalState | None,
    iccid: str | None = None,
    outcome: PinOutcome | None = None,
) -> None:
    """Commit the card's PIN journal state (None: no change pending or made), with the
    audit event of the PIN operation that led to it, in one transaction."""
    now = datetime.now(UTC)
    with database.write() as session:
        row = session.execute(
            select(PinJournal).where(PinJournal.card_id == card_id)
        ).scalar_one_or_none()
        if state is None:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(
                PinJournal(card_id=card_id, state=state, station=actor.station, started_at=now)
            )
        else:
            row.state = state
            row.station = actor.station
            row.resolved_at = now if state is PinJournalState.AT_DEFAULT else None
        if iccid is not None and outcome is not None and _worth_recording(outcome):
            _append_pin_event(session, actor, iccid, outcome, state.value if state else None)


def _worth_recording(outcome: PinOutcome) -> bool:
    """A PIN operation that changed the card or spent an attempt gets its own event.

    A plain VERIFY 0000 that succeeded is recorded in the workflow's own event
    (``pin1``); a refusal by the policy sent nothing.
    """
    return outcome.outcome is PinOutcomeKind.CHANGED_TO_DEFAULT or outcome.attempt_spent


def _append_pin_event(
    session: Session, actor: Actor, iccid: str, outcome: PinOutcome, journal: str | None
) -> None:
    append_event(
        session,
        actor,
        "pin1-ensure-default",
        iccid=iccid,
        result=outcome.outcome.value,
        details={
            "retries_before": outcome.retries_before,
            "retries_after": outcome.retries_after,
            "journal": journal,
        },
    )


def _record_pin(
    database: Database, actor: Actor, iccid: str, outcome: PinOutcome, journal: str | None
) -> PinOutcome:
    """Audit a PIN1 operation the station performed on the card (never the PIN)."""
    if _worth_recording(outcome):
        with database.write() as session:
            _append_pin_event(session, actor, iccid, outcome, journal)
    return outcome


def _check_device(
    session: Session | Connection, checklist: _Checklist, device: DeviceFacts
) -> None:
    owner = session.execute(
        select(Line.service_code)
        .join(Device)
        .where(Device.imei == device.imei, Device.released_at.is_(None))
    ).scalar_one_or_none()
    if owner is not None:
        checklist.fail(
            "device",
            Rule.DEVICE_ONCE,
            f"device {device.imei} is already registered with line {owner}",
        )
    if device.verified is False:
        checklist.fail(
            "device",
            Rule.DEVICE_CONFIGURED,
            f"device {device.imei}: its connection settings did not read back as "
            f"{device.apn_profile}",
        )
    proven = "settings read back" if device.verified else "described by hand"
    checklist.passed("device", f"device {device.imei} ({proven})")


def _configure_device(
    database: Database, checklist: _Checklist, bundled: DeviceSession
) -> DeviceFacts:
    """Configure the bundled modem (after the card passed), then check it like any device."""
    device = bundled.configure()
    with database.read() as session:
        _check_device(session, checklist, device)
    return device


def _check_chip_iccid(checklist: _Checklist, facts: CardFacts) -> None:
    try:
        parse_iccid(facts.iccid)
    except ParseError as error:
        checklist.fail("chip-iccid", Rule.CHIP_ICCID, f"the chip's ICCID is not valid: {error}")
    if not facts.iccid_luhn_ok:
        checklist.fail(
            "chip-iccid", Rule.CHIP_ICCID, f"the chip's ICCID {facts.iccid} fails its Luhn check"
        )
    checklist.passed("chip-iccid", f"chip ICCID {facts.iccid}")


def _check_pin1_state(checklist: _Checklist, facts: CardFacts) -> None:
    if facts.puk1 is not None and facts.puk1.blocked:
        checklist.fail("pin1-state", Rule.PIN_DEFAULT, "PUK1 is blocked: the card is dead")
    if facts.pin1.blocked:
        checklist.fail("pin1-state", Rule.PIN_DEFAULT, "PIN1 is blocked")
    checklist.passed("pin1-state", f"PIN1 not blocked ({facts.pin1.retries} tries left)")


def _check_imsi(checklist: _Checklist, chip_imsi: str | None, expected: str) -> None:
    if chip_imsi is None:
        checklist.fail("imsi", Rule.IMSI_MATCH, "the chip's IMSI cannot be read")
    if chip_imsi != expected:
        checklist.fail(
            "imsi", Rule.IMSI_MATCH, f"the chip's IMSI {chip_imsi} is not the vendor's {expected}"
        )
    checklist.passed("imsi", f"IMSI {chip_imsi} matches the vendor record")


# -- provision ------------------------------------------------------------


def _provision(
    database: Database,
    actor: Actor,
    *,
    service_code: str,
    form_factor: FormFactor | None = None,
    card: CardSession,
    keyring: Keyring | None = None,
    scanned_iccid: str | None = None,
    device: DeviceFacts | None = None,
    bundled_modem: DeviceSession | None = None,
) -> BindResult:
    """Bind the card in the reader to a pending line, after every check passed.

    ``form_factor`` is the size the order asks for; a line whose order names
    one needs none (a different one is refused). ``keyring`` opens the card's
    vendor PIN1 for the PIN policy; without it the
    policy works from the default alone. A bundled device is either described
    (``device``) or configured here (``bundled_modem``, once the card passed);
    either way it is registered with the line in the same transaction. Raises
    :class:`CheckFailedError` with the checks made (nothing written) or
    :class:`ConcurrentChangeError`.
    """
    if device is not None and bundled_modem is not None:
        raise UsageError("describe the bundled device or configure it, not both")
    # The chip's facts first (no PIN is touched), so that one statement reads
    # the line and the card's record.
    facts = card.read_facts()
    with database.lookup() as connection:
        found = connection.execute(
            _LINE_AND_CARD_TO_PROVISION, {"code": service_code, "iccid": facts.iccid}
        ).one_or_none()
    if found is None:
        raise NotFoundError(
            f"no line {service_code} in the database", kind="line", key=service_code
        )
    width = len(_LINE_COLUMNS)
    line = _LineFacts(*found[:width])
    record = None if found[width] is None else _CardRow(*found[width:])
    if line.state is not LineState.PENDING:
        raise refuse(
            Rule.LINE_STATE,
            f"line {service_code} is {line.state}; provision binds a "
            f"pending line's first card (use reissue or change-form-factor)",
            state=line.state,
            service_code=service_code,
        )
    form_factor = order_form_factor(line, form_factor)
    new = _check_new_card(
        database, actor, keyring, line, card, form_factor, scanned_iccid, device,
        read=(facts, record),
    )  # fmt: skip
    if bundled_modem is not None:
        device = _configure_device(database, new.checklist, bundled_modem)
    # Core only, no ORM session: every row this writes is a statement's.
    with database.write_rows() as session:
        now = datetime.now(UTC)
        card_row, line_row = _bind_new_card(session, new, line, now)
        _register_device_row(session, device, line.id, now)
        event = append_event(
            session,
            actor,
            "provision",
            iccid=new.iccid,
            service_code=service_code,
            result="passed",
            at=now,
            rows=digests_of(
                card=card_row, service_code=service_code, line=line_row, iccid=new.iccid
            ),
            details={
                "form_factor": form_factor.value,
                "pin1": new.pin.outcome.value,
                "checks": [c.name for c in new.checks],
                "device_imei": device.imei if device else None,
                "device_verified": device.verified if device else None,
            },
        )
    return BindResult(
        action="provision",
        service_code=service_code,
        msisdn=line.msisdn,
        iccid=new.iccid,
        form_factor=form_factor,
        line_state=LineState.ACTIVE,
        checks=new.checks,
        pin=new.pin,
        audit_seq=event.seq,
        device_imei=device.imei if device else None,
    )


def _bind_new_card(
    connection: Connection, new: _NewCard, line: _LineFacts, now: datetime
) -> tuple[Sequence[Any], Sequence[Any]]:
    """Move the card to active and the line to active, and bind them; the rows' digest columns.

    On PostgreSQL one statement does the three (its data-modifying parts run
    together; the binding is inserted only when both moves matched), so a
    provision's write is one round trip shorter by two. SQLite has no
    data-modifying WITH: three statements. Either way, when the card or the
    line is no longer where the checks saw it, another station got there
    first: :class:`ConcurrentChangeError`, and the transaction rolls back.
    """
    if connection.dialect.name == "postgresql":
        params = {
            "card_id": new.card_id,
            "line_id": line.id,
            "card_before": CardState.IN_STOCK,
            "card_after": CardState.ACTIVE,
            "line_before": LineState.PENDING,
            "line_after": LineState.ACTIVE,
            "now": now,
        }
        row = connection.execute(_BIND_NEW_CARD_PG, params).one()
        width = len(CARD_DIGEST_COLUMNS)
        card_row: Sequence[Any] = tuple(row[:width])
        line_row: Sequence[Any] = tuple(row[width:])
        # A move that matched no row returns NULLs; the other one's change is
        # rolled back with the transaction. Neither row was changed by this
        # one where it reads NULL, so its state now is the other station's.
        if card_row[0] is None:
            _lost_race(connection, Card, new.card_id, new.iccid, CardState.IN_STOCK)
        if line_row[0] is None:
            _lost_race(connection, Line, line.id, line.service_code, LineState.PENDING)
        return card_row, line_row
    card_row = _move_card(
        connection, new.card_id, new.iccid, CardState.IN_STOCK, CardState.ACTIVE, now,
        returning=_MOVE_CARD_RETURNING,
    )  # fmt: skip
    line_row = _move_line(
        connection, line.id, line.service_code, LineState.PENDING, LineState.ACTIVE, now,
        returning=_MOVE_LINE_RETURNING,
    )  # fmt: skip
    connection.execute(
        _INSERT_BINDING,
        {"line_id": line.id, "card_id": new.card_id, "reason": "provision", "bound_at": now},
    )
    return card_row, line_row


def _move_returning(table: type[Card] | type[Line], name: str, returning: Sequence[Any]) -> Any:
    """A conditional state move of ``table`` as a CTE ``moved_<name>``, returning its id and
    ``returning``; bound as ``<name>_id``, ``<name>_before``, ``<name>_after`` and ``now``."""
    return (
        update(table)
        .where(table.id == bindparam(f"{name}_id"), table.state == bindparam(f"{name}_before"))
        .values(state=bindparam(f"{name}_after"), state_changed_at=bindparam("now"))
        .returning(table.id, *returning)
        .cte(f"moved_{name}")
    )


def _bind_new_card_statement() -> Any:
    """PostgreSQL: both moves and the binding in one statement, returning the digest columns."""
    card = _move_returning(Card, "card", CARD_DIGEST_COLUMNS)
    line = _move_returning(Line, "line", LINE_DIGEST_COLUMNS)
    bound = (
        insert(Binding)
        .from_select(
            ["line_id", "card_id", "reason", "bound_at"],
            select(
                line.c.id, card.c.id, literal("provision"), bindparam("now", type_=UtcDateTime())
            ).select_from(card.join(line, true())),
        )
        .returning(Binding.id)
        .cte("bound")
    )
    # From one constant row, outer-joined: the statement always returns a row,
    # with NULLs for a move that matched nothing (so the caller can say which).
    one = select(literal(1).label("one")).cte("one")
    return select(
        *(card.c[column.key] for column in CARD_DIGEST_COLUMNS),
        *(line.c[column.key] for column in LINE_DIGEST_COLUMNS),
    ).select_from(one.outerjoin(card, true()).outerjoin(line, true()).outerjoin(bound, true()))


_BIND_NEW_CARD_PG = _bind_new_card_statement()


def order_form_factor(line: Line | _LineFacts, given: FormFactor | None) -> FormFactor:
    """The size a line's card must have: the order's, else the one the station gives."""
    if line.form_factor is None:
        if given is None:
            raise UsageError(
                f"line {line.service_code}'s order names no form factor; give --form-factor"
            )
        return given
    if given is not None and given is not line.form_factor:
        raise refuse(
            Rule.FORM_FACTOR_MATCH,
            f"line {line.service_code}'s order asks for a {line.form_factor} SIM, not {given}",
            service_code=line.service_code,
        )
    return line.form_factor


def _register_device_row(
    session: Session | Connection, device: DeviceFacts | None, line_id: int, now: datetime
) -> None:
    if device is not None:
        _core(session).execute(
            _INSERT_DEVICE,
            {
                "imei": device.imei,
                "maker": device.maker,
                "model": device.model,
                "firmware": device.firmware,
                "apn_profile": device.apn_profile,
                "verified": device.verified,
                "connection_proven": device.connection_proven,
                "line_id": line_id,
                "registered_at": now,
            },
        )


_INSERT_DEVICE = insert(Device)


@dataclass(frozen=True)
class DeviceRegistration:
    """A bundled device recorded against a line (new, or updated after a re-configure)."""

    service_code: str
    imei: str
    verified: bool | None
    created: bool
    audit_seq: int


def _register_device_workflow(
    database: Database,
    actor: Actor,
    ref: LineRef,
    device: DeviceFacts,
    sim_iccid: str | None = None,
) -> DeviceRegistration:
    """Record a device configured on the bench against a line, with an audit event.

    One transaction. A device already recorded with the same line is updated
    (a re-run of ``modem configure`` after fixing something); a device of
    another line is refused (§11-2-4: one line per device). An unproven
    device (``verified`` False) is recorded as such, so the trail shows it.
    """
    now = datetime.now(UTC)
    with database.write() as session:
        line = line_by(session, ref)
        if line.state not in (LineState.PENDING, LineState.ACTIVE):
            raise refuse(
                Rule.LINE_STATE,
                f"line {line.service_code} is {line.state}; a device "
                "is registered with a pending or active line",
                state=line.state,
                service_code=line.service_code,
            )
        existing = session.execute(
            select(Device).where(Device.imei == device.imei, Device.released_at.is_(None))
        ).scalar_one_or_none()
        if existing is not None and existing.line_id != line.id:
            owner = session.get(Line, existing.line_id)
            raise refuse(
                Rule.DEVICE_ONCE,
                f"device {device.imei} is already registered with "
                f"line {owner.service_code if owner else existing.line_id}",
                service_code=line.service_code,
            )
        if existing is None:
            _register_device_row(session, device, line.id, now)
        else:
            existing.maker, existing.model = device.maker, device.model
            existing.firmware, existing.apn_profile = device.firmware, device.apn_profile
            existing.verified, existing.registered_at = device.verified, now
            existing.connection_proven = device.connection_proven
        event = append_event(
            session,
            actor,
            "register-device",
            service_code=line.service_code,
            result="verified" if device.verified else "not-verified",
            at=now,
            details={
                "imei": device.imei,
                "maker": device.maker,
                "model": device.model,
                "firmware": device.firmware,
                "apn_profile": device.apn_profile,
                "verified": device.verified,
                "connection_proven": device.connection_proven,
                "updated": existing is not None,
                "sim_iccid": sim_iccid,
            },
        )
        return DeviceRegistration(
            service_code=line.service_code,
            imei=device.imei,
            verified=device.verified,
            created=existing is None,
            audit_seq=event.seq,
        )


# -- replacing a line's card ------------------------------------------------


@dataclass(frozen=True)
class _Replacement:
    line: Line
    old: Card
    binding_id: int


def _replacement(
    database: Database, service_code: str, step: CardStep, line_step: LineStep, today: date
) -> _Replacement:
    with database.read() as session:
        line = line_by(session, LineRef(service_code=service_code))
        next_line_state(line.state, line_step, service_code=service_code)
        current = _current_card(session, line.id)
    if current is None:
        raise refuse(
            Rule.LINE_STATE,
            f"line {service_code} has no card yet; provision it",
            state=line.state,
            service_code=service_code,
        )
    old, binding = current
    next_card_state(old.state, step, iccid=old.iccid, network_type=old.network_type)
    check_type_i_validity(
        line.network_type,
        line.contract_type,
        line.delivered_on,
        line.activation_date,
        today,
        service_code=service_code,
    )
    return _Replacement(line=line, old=old, binding_id=binding.id)


def _swap_cards(
    session: Session,
    plan: _Replacement,
    new: _NewCard,
    old_after: CardState,
    reason: str,
    fee: str,
    now: datetime,
) -> dict[str, int]:
    """Retire the old card, bind the new one; the new card takes over usage and quota."""
    line, old = plan.line, plan.old
    _move_card(session, old.id, old.iccid, old.state, old_after, now)
    usage, quota = session.execute(
        select(Card.usage_mb, Card.quota_mb).where(Card.id == old.id)
    ).one()
    _move_card(
        session,
        new.card_id,
        new.iccid,
        CardState.IN_STOCK,
        CardState.ACTIVE,
        now,
        usage_mb=usage,
        quota_mb=quota,
    )
    session.connection().execute(
        update(Card).where(Card.id == old.id).values(usage_mb=0, quota_mb=0)
    )
    _close_binding(session, plan.binding_id, line.service_code, now)
    session.add(Binding(line_id=line.id, card_id=new.card_id, reason=reason, fee=fee, bound_at=now))
    return {"usage_mb": usage, "quota_mb": quota}


def _reissue(
    database: Database,
    actor: Actor,
    *,
    service_code: str,
    reason: ReissueReason,
    card: CardSession,
    keyring: Keyring | None = None,
    form_factor: FormFactor | None = None,
    scanned_iccid: str | None = None,
    today: date | None = None,
    evidence: str | None = None,
) -> BindResult:
    """A new card with the same phone number, for a faulty or a lost card.

    The old card becomes ``faulty`` (or stays ``lost``); a line suspended for a
    loss resumes with its new card. The reissue fee is recorded on the binding.
    """
    step = CardStep.REISSUE_FAULTY if reason is ReissueReason.FAULTY else CardStep.REISSUE_LOST
    if evidence is not None and reason is not ReissueReason.FAULTY:
        raise UsageError("a diagnosis report (--evidence) goes with --reason faulty only")
    plan = _replacement(
        database, service_code, step, LineStep.REISSUE, today or datetime.now(UTC).date()
    )
    report = None if evidence is None else _faulty_evidence(database, evidence, plan.old.iccid)
    wanted = form_factor or plan.old.form_factor
    new = _check_new_card(database, actor, keyring, plan.line, card, wanted, scanned_iccid, None)
    old_after = next_card_state(
        plan.old.state, step, iccid=plan.old.iccid, network_type=plan.old.network_type
    )
    line_after = plan.line.state
    with database.write() as session:
        now = datetime.now(UTC)
        carried = _swap_cards(
            session, plan, new, old_after, f"reissue-{reason.value}", REISSUE_FEE, now
        )
        if reason is ReissueReason.LOST and plan.line.state is LineState.SUSPENDED:
            line_after = next_line_state(
                plan.line.state, LineStep.RESUME, service_code=service_code
            )
        _move_line(session, plan.line.id, service_code, plan.line.state, line_after, now)
        event = append_event(
            session,
            actor,
            "reissue",
            iccid=new.iccid,
            service_code=service_code,
            result="passed",
            at=now,
            also_cards=[plan.old.iccid],
            details={
                "reason": reason.value,
                "old_iccid": plan.old.iccid,
                "old_card_state": old_after.value,
                "fee": REISSUE_FEE,
                "form_factor": wanted.value,
                "pin1": new.pin.outcome.value,
                "carried_over": carried,
                "line_state": line_after.value,
                **({"evidence": report} if report is not None else {}),
            },
        )
    return BindResult(
        action="reissue",
        service_code=service_code,
        msisdn=plan.line.msisdn,
        iccid=new.iccid,
        form_factor=wanted,
        line_state=line_after,
        checks=new.checks,
        pin=new.pin,
        audit_seq=event.seq,
        old_iccid=plan.old.iccid,
        old_card_state=old_after,
        fee=REISSUE_FEE,
        carried_over=carried,
    )


def _faulty_evidence(database: Database, report_id: str, iccid: str) -> str:
    """The diagnosis report that judged card ``iccid`` faulty; refused otherwise."""
    from provisioning.diagnosis import find_diagnosis

    found = find_diagnosis(database, report_id)
    if found.iccid != iccid or found.verdict != "faulty":
        raise refuse(
            Rule.CARD_STATE,
            f"diagnosis {found.report_id} judged card {found.iccid} {found.verdict}, "
            f"not the line's card {iccid} faulty",
            state=found.verdict,
            iccid=iccid,
        )
    return found.report_id


def _change_form_factor(
    database: Database,
    actor: Actor,
    *,
    service_code: str,
    form_factor: FormFactor,
    card: CardSession,
    keyring: Keyring | None = None,
    scanned_iccid: str | None = None,
    today: date | None = None,
) -> BindResult:
    """A card of another form factor for the same line; the old card stops working.

    Usage and quota move to the new card; the change fee is recorded. A change
    is final once done (it cannot be cancelled).
    """
    plan = _replacement(
        database,
        service_code,
        CardStep.CHANGE_FORM_FACTOR,
        LineStep.CHANGE_FORM_FACTOR,
        today or datetime.now(UTC).date(),
    )
    if plan.old.form_factor is form_factor:
        raise refuse(
            Rule.FORM_FACTOR_CHANGE,
            f"line {service_code}'s card is already a {form_factor} SIM",
            service_code=service_code,
        )
    new = _check_new_card(
        database, actor, keyring, plan.line, card, form_factor, scanned_iccid, None
    )
    with database.write() as session:
        now = datetime.now(UTC)
        carried = _swap_cards(
            session,
            plan,
            new,
            CardState.REPLACED,
            "form-factor-change",
            FORM_FACTOR_CHANGE_FEE,
            now,
        )
        _move_line(session, plan.line.id, service_code, plan.line.state, plan.line.state, now)
        event = append_event(
            session,
            actor,
            "change-form-factor",
            iccid=new.iccid,
            service_code=service_code,
            result="passed",
            at=now,
            also_cards=[plan.old.iccid],
            details={
                "old_iccid": plan.old.iccid,
                "old_form_factor": plan.old.form_factor.value,
                "form_factor": form_factor.value,
                "fee": FORM_FACTOR_CHANGE_FEE,
                "pin1": new.pin.outcome.value,
                "carried_over": carried,
            },
        )
    return BindResult(
        action="change-form-factor",
        service_code=service_code,
        msisdn=plan.line.msisdn,
        iccid=new.iccid,
        form_factor=form_factor,
        line_state=plan.line.state,
        checks=new.checks,
        pin=new.pin,
        audit_seq=event.seq,
        old_iccid=plan.old.iccid,
        old_card_state=CardState.REPLACED,
        fee=FORM_FACTOR_CHANGE_FEE,
        carried_over=carried,
    )


# -- return intake --------------------------------------------------------


def _return_card(
    database: Database, actor: Actor, *, iccid: str | None = None, card: CardSession | None = None
) -> ReturnResult:
    """Take a returned card in, by ICCID or read from the card in the reader.

    A card that was reported lost is flagged ``lost-found``: never reused, sent
    to disposal. Every other returned card is closed.
    """
    if (iccid is None) == (card is None):
        raise UsageError("give the returned card's ICCID or a reader, not both")
    if card is not None:
        iccid = card.read_facts().iccid
    assert iccid is not None
    iccid = parse_iccid(iccid)
    with database.write() as session:
        row = _card_by_iccid(session, iccid)
        if row is None:
            raise NotFoundError(f"card {iccid} is not in the database", kind="card", key=iccid)
        after = next_card_state(
            row.state, CardStep.RETURN, iccid=iccid, network_type=row.network_type
        )
        now = datetime.now(UTC)
        _move_card(session, row.id, iccid, row.state, after, now)
        service_code = session.execute(
            select(Line.service_code).join(Binding).where(Binding.card_id == row.id)
        ).scalar_one_or_none()
        never_reuse = after is CardState.LOST_FOUND
        disposition = "disposal (lost-found: never reuse)" if never_reuse else "closed"
        event = append_event(
            session,
            actor,
            "return",
            iccid=iccid,
            service_code=service_code,
            result=after.value,
            at=now,
            details={
                "previous_state": row.state.value,
                "never_reuse": never_reuse,
                "disposition": disposition,
            },
        )
    return ReturnResult(
        iccid=iccid,
        previous_state=row.state,
        state=after,
        never_reuse=never_reuse,
        disposition=disposition,
        service_code=service_code,
        audit_seq=event.seq,
    )


# -- loss, suspend, resume, cancel ----------------------------------------


def _report_lost(database: Database, actor: Actor, ref: LineRef) -> LineActionResult:
    """The customer lost the card: suspend the line, mark the card lost for good."""
    with database.write() as session:
        line = line_by(session, ref)
        current = _current_card(session, line.id)
        if current is None:
            raise refuse(
                Rule.LINE_STATE,
                f"line {line.service_code} has no card",
                state=line.state,
                service_code=line.service_code,
            )
        old, _binding = current
        card_after = next_card_state(
            old.state, CardStep.REPORT_LOST, iccid=old.iccid, network_type=old.network_type
        )
        line_after = next_line_state(
            line.state, LineStep.REPORT_LOST, service_code=line.service_code
        )
        now = datetime.now(UTC)
        _move_card(session, old.id, old.iccid, old.state, card_after, now)
        _move_line(session, line.id, line.service_code, line.state, line_after, now)
        event = append_event(
            session,
            actor,
            "report-lost",
            iccid=old.iccid,
            service_code=line.service_code,
            result=card_after.value,
            at=now,
            details={"line_state": line_after.value},
        )
    return LineActionResult(
        action="report-lost",
        service_code=line.service_code,
        msisdn=line.msisdn,
        line_state=line_after,
        iccid=old.iccid,
        card_state=card_after,
        audit_seq=event.seq,
        note="reissue a card with 'simtool reissue --reason lost'; the line resumes with it",
    )


def suspend(database: Database, actor: Actor, ref: LineRef) -> LineActionResult:
    """Suspend (中断) a line: its card stops working; the line still pays its fee."""
    return _line_step(database, actor, ref, LineStep.SUSPEND, "suspend")


def resume(
    database: Database, actor: Actor, ref: LineRef, today: date | None = None
) -> LineActionResult:
    """Resume a suspended line; refused while its card is lost (reissue first)."""
    return _line_step(
        database, actor, ref, LineStep.RESUME, "resume", today=today or datetime.now(UTC).date()
    )


def _line_step_unrecorded(
    database: Database,
    actor: Actor,
    ref: LineRef,
    step: LineStep,
    action: str,
    today: date | None = None,
) -> LineActionResult:
    with database.write() as session:
        line = line_by(session, ref)
        after = next_line_state(line.state, step, service_code=line.service_code)
        current = _current_card(session, line.id)
        card = current[0] if current else None
        if step is LineStep.RESUME:
            check_resume(card.state if card else None, service_code=line.service_code)
            if today is not None:
                check_type_i_validity(
                    line.network_type,
                    line.contract_type,
                    line.delivered_on,
                    line.activation_date,
                    today,
                    service_code=line.service_code,
                )
        now = datetime.now(UTC)
        _move_line(session, line.id, line.service_code, line.state, after, now)
        event = append_event(
            session,
            actor,
            action,
            iccid=card.iccid if card else None,
            service_code=line.service_code,
            result=after.value,
            at=now,
        )
    return LineActionResult(
        action=action,
        service_code=line.service_code,
        msisdn=line.msisdn,
        line_state=after,
        iccid=card.iccid if card else None,
        card_state=card.state if card else None,
        audit_seq=event.seq,
    )


def _cancel_line(database: Database, actor: Actor, ref: LineRef) -> LineActionResult:
    """Cancel a line: its card must come back (types D and K) or is simply retired (I)."""
    with database.write() as session:
        line = line_by(session, ref)
        after = next_line_state(line.state, LineStep.CANCEL, service_code=line.service_code)
        now = datetime.now(UTC)
        current = _current_card(session, line.id)
        card_after: CardState | None = None
        card: Card | None = None
        if current is not None:
            card, binding = current
            card_after = next_card_state(
                card.state, CardStep.CANCEL_LINE, iccid=card.iccid, network_type=card.network_type
            )
            _move_card(session, card.id, card.iccid, card.state, card_after, now)
            _close_binding(session, binding.id, line.service_code, now)
        _move_line(session, line.id, line.service_code, line.state, after, now)
        needs_return = card is not None and card_after is CardState.AWAITING_RETURN
        event = append_event(
            session,
            actor,
            "cancel-line",
            iccid=card.iccid if card else None,
            service_code=line.service_code,
            result=after.value,
            at=now,
            details={
                "card_state": card_after.value if card_after else None,
                "return_required": needs_return,
            },
        )
    note = None
    if card is not None:
        note = (
            "the card must be returned"
            if return_required(card.network_type) and card_after is CardState.AWAITING_RETURN
            else "the card need not be returned"
        )
    return LineActionResult(
        action="cancel-line",
        service_code=line.service_code,
        msisdn=line.msisdn,
        line_state=after,
        iccid=card.iccid if card else None,
        card_state=card_after,
        audit_seq=event.seq,
        note=note,
    )


# -- every attempt on the record --------------------------------------------

_MESSAGE_LIMIT = 500


def record_attempt(
    database: Database,
    actor: Actor,
    action: str,
    *,
    result: str,
    rule: str | None = None,
    iccid: str | None = None,
    service_code: str | None = None,
    details: dict[str, Any] | None = None,
) -> int | None:
    """Record an attempt that changed nothing (refused, failed), in its own transaction.

    For workflows here and for other commands that act on a line (modem
    configure, diagnosis). ``details`` must hold no secret. Returns the event's
    sequence number, or None when the database could not take it: the
    original error matters more than its record, so this never raises.
    """
    try:
        with database.write() as session:
            event = append_event(
                session,
                actor,
                action,
                result=result,
                iccid=_fits(iccid, 20),
                service_code=_fits(service_code, 20),
                details={"rule": rule, **(details or {})},
            )
            return event.seq
    except SimtoolError as error:
        log.warning("the %s attempt could not be recorded: %s", action, error)
        return None


def _fits(value: str | None, limit: int) -> str | None:
    return value if value is None or len(value) <= limit else None


@contextmanager
def _recorded(
    database: Database,
    actor: Actor,
    action: str,
    *,
    service_code: str | None = None,
    iccid: str | None = None,
) -> Iterator[None]:
    """Record a refusal by a rule, or a failed router configuration, then let it go on."""
    try:
        yield
    except RefusedError as error:
        checks = getattr(error, "checks", ())
        record_attempt(
            database,
            actor,
            action,
            result="refused",
            rule=error.rule,
            iccid=error.iccid or iccid,
            service_code=error.service_code or service_code,
            details={
                "message": str(error)[:_MESSAGE_LIMIT],
                "checks": [{"name": c.name, "passed": c.passed} for c in checks],
            },
        )
        raise
    except ModemError as error:
        # Only the kind of failure and the settings names written: a modem's
        # raw answer may echo credentials.
        record_attempt(
            database,
            actor,
            "configure-device",
            result="failed",
            rule=None,
            iccid=iccid,
            service_code=service_code,
            details={
                "during": action,
                "error": type(error).__name__,
                "written": list(getattr(error, "written", ())),
            },
        )
        raise


def provision(
    database: Database,
    actor: Actor,
    *,
    service_code: str,
    form_factor: FormFactor | None = None,
    card: CardSession,
    keyring: Keyring | None = None,
    scanned_iccid: str | None = None,
    device: DeviceFacts | None = None,
    bundled_modem: DeviceSession | None = None,
) -> BindResult:
    """Bind the card in the reader to a pending line, after every check passed.

    ``form_factor`` is the size the order asks for; a line whose order names
    one needs none (a different one is refused). ``keyring`` opens the card's
    vendor PIN1 for the PIN policy; without it the policy works from the
    default alone. A bundled device is either described (``device``) or
    configured here (``bundled_modem``, once the card passed); either way it is
    registered with the line in the same transaction. Raises
    :class:`CheckFailedError` with the checks made (nothing written but the
    refusal's audit event) or :class:`ConcurrentChangeError`.
    """
    with _recorded(database, actor, "provision", service_code=service_code):
        return _provision(
            database,
            actor,
            service_code=service_code,
            form_factor=form_factor,
            card=card,
            keyring=keyring,
            scanned_iccid=scanned_iccid,
            device=device,
            bundled_modem=bundled_modem,
        )


def reissue(
    database: Database,
    actor: Actor,
    *,
    service_code: str,
    reason: ReissueReason,
    card: CardSession,
    keyring: Keyring | None = None,
    form_factor: FormFactor | None = None,
    scanned_iccid: str | None = None,
    today: date | None = None,
    evidence: str | None = None,
) -> BindResult:
    """A new card with the same phone number, for a faulty or a lost card.

    The old card becomes ``faulty`` (or stays ``lost``); a line suspended for a
    loss resumes with its new card. The reissue fee is recorded on the
    binding. A refusal is recorded in the audit trail. ``evidence`` (reason
    faulty only) is the id of the diagnosis report that judged the old card
    faulty; it must be in the audit trail and is recorded with the reissue.
    """
    with _recorded(database, actor, "reissue", service_code=service_code):
        return _reissue(
            database,
            actor,
            service_code=service_code,
            reason=reason,
            card=card,
            keyring=keyring,
            form_factor=form_factor,
            scanned_iccid=scanned_iccid,
            today=today,
            evidence=evidence,
        )


def change_form_factor(
    database: Database,
    actor: Actor,
    *,
    service_code: str,
    form_factor: FormFactor,
    card: CardSession,
    keyring: Keyring | None = None,
    scanned_iccid: str | None = None,
    today: date | None = None,
) -> BindResult:
    """A card of another form factor for the same line; the old card stops working.

    Usage and quota move to the new card; the change fee is recorded. A change
    is final once done (it cannot be cancelled). A refusal is recorded.
    """
    with _recorded(database, actor, "change-form-factor", service_code=service_code):
        return _change_form_factor(
            database,
            actor,
            service_code=service_code,
            form_factor=form_factor,
            card=card,
            keyring=keyring,
            scanned_iccid=scanned_iccid,
            today=today,
        )


def return_card(
    database: Database, actor: Actor, *, iccid: str | None = None, card: CardSession | None = None
) -> ReturnResult:
    """Take a returned card in, by ICCID or read from the card in the reader.

    A card that was reported lost is flagged ``lost-found``: never reused, sent
    to disposal. Every other returned card is closed. A refused return is
    recorded.
    """
    with _recorded(database, actor, "return", iccid=iccid):
        return _return_card(database, actor, iccid=iccid, card=card)


def register_device(
    database: Database,
    actor: Actor,
    ref: LineRef,
    device: DeviceFacts,
    *,
    sim_iccid: str | None = None,
) -> DeviceRegistration:
    """Record a device configured on the bench against a line, with an audit event.

    ``sim_iccid``: the line's card, found in the router by :func:`check_modem_sim`
    (recorded with the event). See :func:`_register_device_workflow`; a refusal
    is recorded too.
    """
    with _recorded(database, actor, "register-device", service_code=ref.service_code):
        return _register_device_workflow(database, actor, ref, device, sim_iccid)


def report_lost(database: Database, actor: Actor, ref: LineRef) -> LineActionResult:
    """The customer lost the card: suspend the line, mark the card lost for good."""
    with _recorded(database, actor, "report-lost", service_code=ref.service_code):
        return _report_lost(database, actor, ref)


def cancel_line(database: Database, actor: Actor, ref: LineRef) -> LineActionResult:
    """Cancel a line: its card must come back (types D and K) or is simply retired (I)."""
    with _recorded(database, actor, "cancel-line", service_code=ref.service_code):
        return _cancel_line(database, actor, ref)


def _line_step(
    database: Database,
    actor: Actor,
    ref: LineRef,
    step: LineStep,
    action: str,
    today: date | None = None,
) -> LineActionResult:
    with _recorded(database, actor, action, service_code=ref.service_code):
        return _line_step_unrecorded(database, actor, ref, step, action, today)


# -- lent devices -----------------------------------------------------------


@dataclass(frozen=True)
class DeviceRelease:
    """A lent device taken back from its line: it may ship with another line now."""

    imei: str
    service_code: str
    released_at: datetime
    audit_seq: int


def release_device(database: Database, actor: Actor, imei: str) -> DeviceRelease:
    """Take a returned lent device back (§13-2): it leaves its line and may ship again.

    Only once the line is cancelled; a refusal is recorded like any other.
    """
    imei = parse_imei(imei)
    with _recorded(database, actor, "return-device"):
        with database.write() as session:
            row = session.execute(
                select(Device, Line)
                .join(Line, Line.id == Device.line_id)
                .where(Device.imei == imei, Device.released_at.is_(None))
            ).first()
            if row is None:
                raise NotFoundError(
                    f"device {imei} is not bound to any line", kind="device", key=imei
                )
            device, line = row
            if line.state is not LineState.CANCELLED:
                raise refuse(
                    Rule.DEVICE_RETURN,
                    f"device {imei} belongs to line {line.service_code}, which is {line.state}",
                    state=line.state,
                    service_code=line.service_code,
                )
            now = datetime.now(UTC)
            released = session.connection().execute(
                update(Device)
                .where(Device.id == device.id, Device.released_at.is_(None))
                .values(released_at=now)
            )
            if released.rowcount != 1:
                raise ConcurrentChangeError(
                    f"device {imei} was taken back by another station meanwhile",
                    kind="device",
                    key=imei,
                )
            event = append_event(
                session,
                actor,
                "return-device",
                service_code=line.service_code,
                result="released",
                at=now,
                details={"imei": imei},
            )
        return DeviceRelease(
            imei=imei, service_code=line.service_code, released_at=now, audit_seq=event.seq
        )


def check_modem_sim(database: Database, ref: LineRef, modem_iccid: str | None) -> str | None:
    """Refuse to register a router with a line unless the line's card is in it.

    ``modem_iccid`` is what the modem reports for its SIM (``AT+CCID`` or
    ``AT+ICCID``; None when it could not be read). Returns the line's card's
    ICCID (the one in the router), or None for a line that has no card yet
    (nothing to compare: the router is registered ahead of its card). Raises
    :class:`LifecycleError` (rule ``device-sim-match``) on a mismatch or an
    unreadable SIM. For ``modem configure --service-code``: call it before
    configuring, inside :func:`sim_checked` so that a refusal is recorded, and
    give the ICCID to :func:`register_device`.
    """
    with database.read() as session:
        line = line_by(session, ref)
        current = _current_card(session, line.id)
    if current is None:
        return None
    expected = current[0].iccid
    seen = (modem_iccid or "").strip().upper().rstrip("F")
    if not seen:
        raise refuse(
            Rule.DEVICE_SIM_MATCH,
            f"the router's SIM cannot be read; line {line.service_code}'s card is {expected}",
            service_code=line.service_code,
            iccid=expected,
        )
    if seen != expected:
        raise refuse(
            Rule.DEVICE_SIM_MATCH,
            f"the router holds SIM {_fits(seen, 22) or seen[:22] + '...'}, but line "
            f"{line.service_code}'s card is {expected}",
            service_code=line.service_code,
            iccid=expected,
        )
    return expected


@contextmanager
def sim_checked(database: Database, actor: Actor, ref: LineRef) -> Iterator[None]:
    """Record a refusal of :func:`check_modem_sim` (or of the registration) on the trail."""
    with _recorded(database, actor, "register-device", service_code=ref.service_code):
        yield
