"""The bench's business rules: one card in a reader, one outcome (pass, fail, skip).

A bench (``simtool bench run``) handles every card inserted into its readers.
This module decides, for one card, what happens: which order it goes to (the
scanned one, or the oldest pending order it can serve), the same checks and
transaction as ``simtool provision`` (:func:`provisioning.workflows.provision`),
and what is recorded. The station loop (readers, events, screen) lives in
``simtool.bench``; no business rule does.

Outcomes:

- ``pass``: the card is bound (provision) or taken in (return); the workflow's
  own audit event records it.
- ``fail``: refused by a rule, or the card was pulled mid-way; recorded as an
  audit event (``bench-refusal`` / ``bench-card-pulled``) with the rule, in a
  transaction of its own, so nothing of the workflow is half-written.
- ``skip``: there was nothing to do: the card was already bound (or taken in)
  by an earlier pass. This is what makes a restarted bench repeat nothing.

With ``--assign fifo`` a card goes to the oldest pending order it can serve
(type, function, size), orders for its own size first: a multi-cut card takes
a multi order before it breaks out to a nano one. Several benches may share
one order queue. On PostgreSQL the oldest pending
order is taken with ``SELECT ... FOR UPDATE SKIP LOCKED`` and claimed with a
session advisory lock on its id, held on the queue's own connection until the
card's pass is over; the row lock itself ends with that short transaction, so
the workflow's own transaction (and its PIN journal) runs as it does for
``simtool provision``, never blocked by the claim. A bench that dies loses its
claims with its connection. On SQLite the workflow's optimistic checks
(conditional UPDATEs) make the loser of a race get
:class:`ConcurrentChangeError`, and it takes the next order. Within one bench
process a claimed order is never offered to a second reader.
"""

from __future__ import annotations

import enum
import functools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine, and_, bindparam, case, create_engine, false, or_, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import Executable

from apdu.errors import SimtoolError
from apdu.transport.base import CardTransport
from provisioning.audit import Actor
from provisioning.cardfacts import CardSession
from provisioning.database import Database
from provisioning.devices import DeviceSession
from provisioning.errors import ConcurrentChangeError, RefusedError
from provisioning.lifecycle import (
    RULE_TEXT,
    CardState,
    CardStep,
    FormFactor,
    FunctionClass,
    LineState,
    NetworkType,
    Rule,
    next_card_state,
    orders_served,
)
from provisioning.models import Binding, Card, Line
from provisioning.secrets import Keyring
from provisioning.workflows import provision, record_attempt, return_card

Result = Literal["pass", "fail", "skip"]

#: How many orders a card tries when other benches keep winning the race.
MAX_ORDER_ATTEMPTS = 5
#: How long a card waits while every order it serves is being worked on elsewhere.
CLAIM_WAIT_S = 10.0
_BUSY_POLL_S = 0.05


class _Busy(enum.Enum):
    """Every order the card serves is claimed by another reader or bench right now."""

    BUSY = "busy"


BUSY = _Busy.BUSY


class BenchRule(enum.StrEnum):
    """Outcomes of the bench that are not rules of the lifecycle."""

    NO_ORDER = "no-pending-order"
    ALREADY_DONE = "already-done"
    CARD_REMOVED = "card-removed"
    CARD_ERROR = "card-error"
    CONCURRENT = "concurrent-change"


class BenchMode(enum.StrEnum):
    """What the bench does with each card."""

    PROVISION = "provision"
    RETURN = "return"
    DIAGNOSE = "diagnose"


@dataclass(frozen=True)
class CardOutcome:
    """What happened to one card: ``result``, the ``rule`` behind a fail or skip, and why.

    ``message`` is for the log and the operator's detail line; it never holds a
    secret.
    """

    result: Result
    iccid: str | None
    service_code: str | None = None
    rule: str | None = None
    message: str = ""
    form_factor: str | None = None
    audit_seq: int | None = None
    #: True when the workflow already put this outcome on the record.
    recorded: bool = False


@dataclass(frozen=True)
class CardOnFile:
    """What the line database knows of a card: its type, size, state and current line."""

    iccid: str
    network_type: NetworkType
    form_factor: FormFactor
    state: CardState
    service_code: str | None


# Built once: constructing a statement costs more CPU than running it, and the
# bench looks every card up.
_CARD_ON_FILE = (
    select(Card.iccid, Card.network_type, Card.form_factor, Card.state, Line.service_code)
    .outerjoin(Binding, and_(Binding.card_id == Card.id, Binding.unbound_at.is_(None)))
    .outerjoin(Line, Line.id == Binding.line_id)
    .where(Card.iccid == bindparam("iccid"))
)


def _rows(
    database: Database, statement: Executable, params: dict[str, Any] | None = None
) -> list[Any]:
    """The rows of one read, on a plain connection: no ORM session, whose set-up
    costs more CPU than these small reads the bench makes for every card, and
    no transaction (one statement)."""
    with database.lookup() as connection:
        return list(connection.execute(statement, params or {}))


def card_on_file(database: Database, iccid: str) -> CardOnFile | None:
    """The card's record, or None when it is not in the database."""
    rows = _rows(database, _CARD_ON_FILE, {"iccid": iccid})
    if not rows:
        return None
    return CardOnFile(*rows[0])


def _eligible(card: CardOnFile) -> ColumnElement[bool]:
    """The SQL condition: pending lines this card can serve (type, function, size)."""
    served = orders_served(card.network_type, card.form_factor)
    by_function: list[ColumnElement[bool]] = []
    for function, sizes in served.items():
        size_ok: ColumnElement[bool] = Line.form_factor.in_(sorted(sizes))
        if card.form_factor in sizes:
            # An order that names no size takes the card's own size.
            size_ok = or_(size_ok, Line.form_factor.is_(None))
        condition = and_(Line.function_class == function, size_ok)
        if function is FunctionClass.VOICE:
            # A voice order without the identity check cannot ship yet (§9-8).
            condition = and_(condition, Line.identity_verified.is_(True))
        by_function.append(condition)
    return and_(
        Line.state == LineState.PENDING,
        Line.network_type == card.network_type,
        or_(*by_function) if by_function else false(),
    )


@functools.cache
def _fifo_query(
    network_type: NetworkType, form_factor: FormFactor
) -> Select[int, str, FormFactor | None]:
    """The pending orders a card of this type and size serves, in queue order.

    Built once per (type, size): building the expression costs more CPU than
    running the compiled statement, and a bench reads the queue for every card.
    """
    card = CardOnFile("", network_type, form_factor, CardState.IN_STOCK, None)
    return (
        select(Line.id, Line.service_code, Line.form_factor)
        .where(_eligible(card))
        .order_by(*_fifo_order(card))
    )


@functools.cache
def _fifo_first(
    network_type: NetworkType, form_factor: FormFactor
) -> Select[int, str, FormFactor | None]:
    """The first orders of :func:`_fifo_query` (enough for the readers of a bench)."""
    return _fifo_query(network_type, form_factor).limit(20)


def _fifo_order(card: CardOnFile) -> tuple[Any, ...]:
    """Oldest first, but orders for the card's own size before those it breaks out to:
    a multi-cut card goes to a multi order before it takes a nano one."""
    own_size = case(
        (Line.form_factor == card.form_factor, 0), (Line.form_factor.is_(None), 0), else_=1
    )
    return (own_size, Line.created_at, Line.id)


class OrderQueue:
    """The pending orders, oldest first, shared by every reader of a bench.

    :meth:`provision_next` binds a card to the oldest pending order it can
    serve; see the module documentation for how benches never take one order
    twice.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._lock = threading.Lock()
        self._claimed: set[int] = set()
        self._engine: Engine | None = None

    @contextmanager
    def _claim_local(self, line_id: int) -> Iterator[bool]:
        with self._lock:
            taken = line_id in self._claimed
            if not taken:
                self._claimed.add(line_id)
        try:
            yield not taken
        finally:
            if not taken:
                with self._lock:
                    self._claimed.discard(line_id)

    def _candidates(
        self, card: CardOnFile, skip: set[int]
    ) -> list[tuple[int, str, FormFactor | None]]:
        query = _fifo_query(card.network_type, card.form_factor)
        if skip:
            query = query.where(Line.id.not_in(sorted(skip))).limit(len(skip) + 20)
        else:
            query = _fifo_first(card.network_type, card.form_factor)
        return [(i, c, f) for i, c, f in _rows(self.database, query)]

    def why_none(self, card: CardOnFile) -> CardOutcome:
        """The fail outcome of a card no pending order can take, with the closest rule."""
        with self.database.read() as session:
            same_type = session.execute(
                select(Line.id).where(
                    Line.state == LineState.PENDING, Line.network_type == card.network_type
                )
            ).first()
        if same_type is not None:
            return CardOutcome(
                "fail",
                card.iccid,
                rule=Rule.FORM_FACTOR_MATCH.value,
                message=f"no pending type {card.network_type} order takes a "
                f"{card.form_factor} SIM ({RULE_TEXT[Rule.FORM_FACTOR_MATCH]})",
                form_factor=card.form_factor.value,
            )
        return CardOutcome(
            "fail",
            card.iccid,
            rule=BenchRule.NO_ORDER.value,
            message=f"no pending type {card.network_type} order",
            form_factor=card.form_factor.value,
        )

    def provision_next(
        self,
        actor: Actor,
        card: CardOnFile,
        session_card: CardSession,
        *,
        keyring: Keyring | None,
        bundled_modem: DeviceSession | None = None,
    ) -> CardOutcome:
        """Bind the card to the oldest pending order it serves; the outcome.

        While every order the card could take is being worked on by another
        reader or bench, it waits (up to :data:`CLAIM_WAIT_S`): those passes may
        fail and free their order, or have bound this very card (a skip).
        """
        tried: set[int] = set()
        lost_races = 0
        deadline = time.monotonic() + CLAIM_WAIT_S
        while True:
            if self.database.dialect == "postgresql":
                outcome = self._provision_locked(
                    actor, card, session_card, keyring, bundled_modem, tried
                )
            else:
                outcome = self._provision_optimistic(
                    actor, card, session_card, keyring, bundled_modem, tried
                )
            if isinstance(outcome, CardOutcome):
                return outcome
            if outcome is None:
                lost_races += 1
                if lost_races < MAX_ORDER_ATTEMPTS:
                    continue
            settled = precheck(
                card_on_file(self.database, card.iccid), card.iccid, BenchMode.PROVISION
            )
            if settled is not None:
                return settled
            if outcome is None or time.monotonic() > deadline:
                return CardOutcome(
                    "fail",
                    card.iccid,
                    rule=BenchRule.CONCURRENT.value,
                    message="other stations kept taking the orders this card serves; "
                    "try the card again",
                )
            time.sleep(_BUSY_POLL_S)

    def _provision_optimistic(
        self,
        actor: Actor,
        card: CardOnFile,
        session_card: CardSession,
        keyring: Keyring | None,
        bundled_modem: DeviceSession | None,
        tried: set[int],
    ) -> CardOutcome | _Busy | None:
        candidates = self._candidates(card, tried)
        if not candidates:
            return self.why_none(card)
        busy = False
        for line_id, service_code, ordered in candidates:
            with self._claim_local(line_id) as mine:
                if not mine:
                    busy = True
                    continue
                tried.add(line_id)
                return self._provision_claimed(
                    actor, card, session_card, keyring, bundled_modem, service_code, ordered
                )
        # Every candidate is being worked on by another reader of this bench.
        return BUSY if busy else self.why_none(card)

    def _provision_locked(
        self,
        actor: Actor,
        card: CardOnFile,
        session_card: CardSession,
        keyring: Keyring | None,
        bundled_modem: DeviceSession | None,
        tried: set[int],
    ) -> CardOutcome | _Busy | None:
        with self.database.translate_errors(), self._claims().connect() as connection:
            claimed = _claim_postgres(connection, card, tried)
            if claimed is None:
                return self.why_none(card)
            if claimed is BUSY:
                return BUSY
            line_id, service_code, ordered = claimed
            try:
                return self._provision_claimed(
                    actor, card, session_card, keyring, bundled_modem, service_code, ordered
                )
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:ns, :id)"), {"ns": _CLAIM_NS, "id": line_id}
                )
                connection.commit()

    def _provision_claimed(
        self,
        actor: Actor,
        card: CardOnFile,
        session_card: CardSession,
        keyring: Keyring | None,
        bundled_modem: DeviceSession | None,
        service_code: str,
        ordered: FormFactor | None,
    ) -> CardOutcome | None:
        """Provision the card to the order this reader claimed; None when it lost a race.

        Both claim strategies end here, so that a lost race is told from a
        taken card the same way whichever database the bench runs on.
        """
        try:
            return _provision(
                self.database,
                actor,
                service_code,
                card,
                session_card,
                keyring,
                bundled_modem,
                size=None if ordered is not None else card.form_factor,
                size_known=True,
            )
        except ConcurrentChangeError:
            # Another bench bound this order (or this card) first.
            if _card_taken(self.database, card.iccid):
                raise
            return None

    def _claims(self) -> Engine:
        """The queue's own connections (one per reader at most), apart from the workflow's."""
        with self._lock:
            if self._engine is None:
                self._engine = create_engine(
                    self.database.url, pool_size=8, max_overflow=24, pool_pre_ping=True
                )
            return self._engine

    def close(self) -> None:
        """Close the queue's connections."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None


#: The advisory-lock namespace of order claims ("SIMQ").
_CLAIM_NS = 0x53494D51


def _claim_postgres(
    connection: Connection, card: CardOnFile, tried: set[int]
) -> tuple[int, str, FormFactor | None] | _Busy | None:
    """Claim the oldest pending order the card serves that no other bench holds.

    None: no pending order serves the card; BUSY: every one is claimed now.
    """
    with connection.begin():
        query = _fifo_query(card.network_type, card.form_factor)
        if tried:
            query = query.where(Line.id.not_in(sorted(tried)))
        rows = connection.execute(query.limit(32).with_for_update(skip_locked=True, of=Line)).all()
        for line_id, service_code, ordered in rows:
            got = connection.execute(
                text("SELECT pg_try_advisory_lock(:ns, :id)"), {"ns": _CLAIM_NS, "id": line_id}
            ).scalar()
            if got:
                tried.add(line_id)
                return line_id, service_code, ordered
        if rows:
            return BUSY
        # Rows locked this instant by another bench's claim are skipped: busy too.
        locked = connection.execute(query.limit(1)).first()
        return BUSY if locked is not None else None


def _card_taken(database: Database, iccid: str) -> bool:
    on_file = card_on_file(database, iccid)
    return on_file is not None and on_file.state is not CardState.IN_STOCK


def _size_for(database: Database, service_code: str, card: CardOnFile) -> FormFactor | None:
    """The size to give ``provision``: none when the order names one (it is checked
    against the card), else the card's own size, recorded in stock."""
    with database.read() as session:
        ordered = session.execute(
            select(Line.form_factor).where(Line.service_code == service_code)
        ).scalar_one_or_none()
    return None if ordered is not None else card.form_factor


def _provision(
    database: Database,
    actor: Actor,
    service_code: str,
    card: CardOnFile,
    session_card: CardSession,
    keyring: Keyring | None,
    bundled_modem: DeviceSession | None,
    scanned_iccid: str | None = None,
    *,
    size: FormFactor | None = None,
    size_known: bool = False,
) -> CardOutcome:
    """``size`` (when ``size_known``): what to give ``provision`` as the size."""
    result = provision(
        database,
        actor,
        service_code=service_code,
        form_factor=size if size_known else _size_for(database, service_code, card),
        card=session_card,
        keyring=keyring,
        scanned_iccid=scanned_iccid,
        bundled_modem=bundled_modem,
    )
    return CardOutcome(
        "pass",
        result.iccid,
        service_code=result.service_code,
        message=f"bound to line {result.service_code} ({result.form_factor})",
        form_factor=result.form_factor.value,
        audit_seq=result.audit_seq,
    )


def precheck(card: CardOnFile | None, iccid: str, mode: BenchMode) -> CardOutcome | None:
    """The outcome decided by the card's record alone (unknown, done before, out of use).

    None when the card may go on to its workflow.
    """
    if card is None:
        return CardOutcome(
            "fail",
            iccid,
            rule=Rule.STOCK_ONLY.value,
            message=f"card {iccid} is not in the stock database",
        )
    if mode is BenchMode.PROVISION:
        if card.state is CardState.IN_STOCK:
            return None
        if card.state is CardState.ACTIVE and card.service_code is not None:
            return CardOutcome(
                "skip",
                iccid,
                service_code=card.service_code,
                rule=BenchRule.ALREADY_DONE.value,
                message=f"already the card of line {card.service_code}",
                form_factor=card.form_factor.value,
            )
        step = CardStep.PROVISION
    else:
        if card.state in (CardState.RETURNED, CardState.LOST_FOUND):
            return CardOutcome(
                "skip",
                iccid,
                service_code=card.service_code,
                rule=BenchRule.ALREADY_DONE.value,
                message=f"already taken in ({card.state})",
            )
        step = CardStep.RETURN
    try:
        next_card_state(card.state, step, iccid=iccid, network_type=card.network_type)
    except RefusedError as refusal:
        return CardOutcome(
            "fail",
            iccid,
            service_code=card.service_code,
            rule=refusal.rule,
            message=str(refusal),
            form_factor=card.form_factor.value,
        )
    return None


def provision_card(
    database: Database,
    actor: Actor,
    iccid: str,
    session_card: CardSession,
    *,
    queue: OrderQueue | None,
    service_code: str | None = None,
    scanned_iccid: str | None = None,
    keyring: Keyring | None = None,
    bundled_modem: DeviceSession | None = None,
) -> CardOutcome:
    """Provision one card: to ``service_code`` (scanned), else the queue's oldest order.

    Refusals are returned as ``fail`` outcomes (not raised); card and transport
    errors propagate, for the station to report the card as pulled.
    """
    on_file = card_on_file(database, iccid)
    decided = precheck(on_file, iccid, BenchMode.PROVISION)
    if decided is not None:
        return decided
    assert on_file is not None
    try:
        if service_code is not None:
            return _provision(
                database,
                actor,
                service_code,
                on_file,
                session_card,
                keyring,
                bundled_modem,
                scanned_iccid,
            )
        if queue is None:
            raise ValueError("a bench without an order queue needs a scanned service code")
        return queue.provision_next(
            actor, on_file, session_card, keyring=keyring, bundled_modem=bundled_modem
        )
    except RefusedError as refusal:
        if refusal.rule == Rule.STOCK_ONLY.value:
            # Bound by another station between the first look and the checks.
            settled = precheck(card_on_file(database, iccid), iccid, BenchMode.PROVISION)
            if settled is not None and settled.result == "skip":
                return settled
        # The workflow put its refusal on the record itself.
        return CardOutcome(
            "fail",
            iccid,
            service_code=refusal.service_code or service_code,
            rule=refusal.rule,
            message=str(refusal),
            form_factor=on_file.form_factor.value,
            recorded=True,
        )
    except ConcurrentChangeError as error:
        # Another station bound this very card meanwhile: nothing is left to do.
        settled = precheck(card_on_file(database, iccid), iccid, BenchMode.PROVISION)
        if settled is not None and settled.result == "skip":
            return settled
        return CardOutcome(
            "fail",
            iccid,
            service_code=service_code,
            rule=BenchRule.CONCURRENT.value,
            message=str(error),
        )


def return_card_at_bench(
    database: Database, actor: Actor, iccid: str, session_card: CardSession
) -> CardOutcome:
    """Take a returned card in (a lost one is flagged never-reuse); the outcome."""
    decided = precheck(card_on_file(database, iccid), iccid, BenchMode.RETURN)
    if decided is not None:
        return decided
    try:
        result = return_card(database, actor, card=session_card)
    except RefusedError as refusal:
        return CardOutcome("fail", iccid, rule=refusal.rule, message=str(refusal), recorded=True)
    except ConcurrentChangeError as error:
        return CardOutcome("fail", iccid, rule=BenchRule.CONCURRENT.value, message=str(error))
    return CardOutcome(
        "pass",
        result.iccid,
        service_code=result.service_code,
        message=f"{result.previous_state} -> {result.state}: {result.disposition}",
        audit_seq=result.audit_seq,
    )


def diagnose_at_bench(
    database: Database, actor: Actor, keyring: Keyring, transport: CardTransport
) -> CardOutcome:
    """The technician's verdict on the card (:func:`provisioning.diagnosis.diagnose_card`).

    ``pass`` for a card found healthy (the fault is elsewhere); ``fail`` with the
    verdict as the rule (recoverable, blocked, faulty, not-ours) otherwise. The
    diagnosis records its own audit event, with its report id.
    """
    from provisioning.diagnosis import Verdict, diagnose_card

    found = diagnose_card(transport, database, keyring, actor)
    healthy = found.verdict is Verdict.OK
    return CardOutcome(
        "pass" if healthy else "fail",
        found.iccid,
        service_code=found.record.service_code if found.record else None,
        rule=None if healthy else found.verdict.value,
        message=f"{found.verdict}: cause {found.cause}, next {found.next_step}, "
        f"report {found.report_id}",
        audit_seq=found.audit_seq,
        recorded=True,
    )


def record_outcome(
    database: Database,
    actor: Actor,
    outcome: CardOutcome,
    *,
    reader: str,
    mode: BenchMode,
    seconds: float,
) -> int | None:
    """Put a fail on the record with its rule (refused) or as a pulled card (failed).

    Passes and the workflow's own refusals are on the record already; a skip
    changed nothing. Returns the audit event's sequence number, when one was
    written here; never raises (see :func:`record_attempt`).
    """
    if outcome.result != "fail" or outcome.recorded:
        return None
    failed = outcome.rule in (BenchRule.CARD_REMOVED.value, BenchRule.CARD_ERROR.value)
    return record_attempt(
        database,
        actor,
        mode.value,
        result="failed" if failed else "refused",
        rule=outcome.rule,
        iccid=outcome.iccid,
        service_code=outcome.service_code,
        details={
            "station": "bench",
            "reader": reader,
            "message": outcome.message[:200],
            "seconds": round(seconds, 3),
        },
    )


def outcome_of_card_error(iccid: str | None, error: SimtoolError, removed: bool) -> CardOutcome:
    """A card or transport failure mid-way: pulled, or a card that does not answer."""
    if removed:
        return CardOutcome(
            "fail",
            iccid,
            rule=BenchRule.CARD_REMOVED.value,
            message=f"card removed before the pass was done: {error}",
        )
    return CardOutcome("fail", iccid, rule=BenchRule.CARD_ERROR.value, message=str(error))
