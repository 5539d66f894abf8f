"""The audit trail: one hash-chained event per station action.

Every workflow calls :func:`append_event` inside the transaction that changes
state, so the event and the change commit or vanish together. Each event's
hash covers its own fields and the previous event's hash; the ``audit_head``
row names the last event. Appends lock that row, so events from many stations
form one chain in commit order.

:func:`verify_chain` recomputes the chain and names the first event that was
edited, inserted or deleted. Whoever can write the database can also rewrite
the whole chain consistently: compare the head hash with one recorded
elsewhere (the shift report prints it) to catch that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, and_, bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from apdu.errors import UsageError
from provisioning.database import Database
from provisioning.errors import AuditTamperedError
from provisioning.models import (
    AuditEvent,
    AuditHead,
    Binding,
    Card,
    Line,
    StockBatch,
    UtcDateTime,
)

GENESIS_HASH = "0" * 64
#: Where an event keeps the digests of the rows it concerns ("card:ICCID", "line:CODE").
ROWS_KEY = "rows"
#: Set by a stock import whose cards the audit checks (those imported since row digests).
BATCH_CHECKED_KEY = "row_checks"
_HEAD_ID = 1
_CHUNK = 2000


@dataclass(frozen=True)
class Actor:
    """Who acts, and where: the operator's name and the station's id, on every action."""

    operator: str
    station: str

    def __post_init__(self) -> None:
        for name in ("operator", "station"):
            value = getattr(self, name)
            if not value or not value.strip() or len(value) > 100:
                raise UsageError(f"{name} must be 1-100 characters, got {value!r}")


def canonical_details(details: Mapping[str, Any] | None) -> str:
    """The details of an event as the one JSON text that is stored and hashed."""
    return json.dumps(
        dict(details or {}), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def _timestamp(at: datetime) -> str:
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def event_hash(
    seq: int,
    at: datetime,
    station: str,
    operator: str,
    action: str,
    iccid: str | None,
    service_code: str | None,
    result: str,
    details: str,
    prev_hash: str,
) -> str:
    """SHA-256 over the event's fields and its predecessor's hash."""
    payload = json.dumps(
        [
            seq,
            _timestamp(at),
            station,
            operator,
            action,
            iccid,
            service_code,
            result,
            details,
            prev_hash,
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _hash_of(event: AuditEvent) -> str:
    return event_hash(
        event.seq,
        event.at,
        event.station,
        event.operator,
        event.action,
        event.iccid,
        event.service_code,
        event.result,
        event.details,
        event.prev_hash,
    )


def append_event(
    session: Session,
    actor: Actor,
    action: str,
    *,
    result: str = "ok",
    iccid: str | None = None,
    service_code: str | None = None,
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
    also_cards: Sequence[str] = (),
    also_lines: Sequence[str] = (),
) -> AuditEvent:
    """Add one event to the chain, in the caller's transaction.

    Call it last in the transaction: it locks the chain's head until commit.
    ``details`` must not hold secrets; it is stored as canonical JSON.

    The event carries the digests of the state rows it concerns, as they are
    when it commits: the card ``iccid`` and the line ``service_code`` (when
    they exist), and ``also_cards``/``also_lines`` (other rows it changed). So
    :func:`verify_chain` can tell a row edited outside simtool from one the
    trail accounts for.
    """
    session.flush()
    rows = state_digests(
        session,
        cards=[c for c in (iccid, *also_cards) if c],
        lines=[code for code in (service_code, *also_lines) if code],
    )
    if rows:
        details = {**(details or {}), ROWS_KEY: rows}
    when = at or datetime.now(UTC)
    details_text = canonical_details(details)
    # Everything that can be prepared is prepared before the head is locked:
    # from here to the commit every other station's append waits on this row.
    # Core statements, not the unit of work: the ORM flush costs more CPU than
    # the hash, and a station descheduled while holding the lock stalls them all.
    if session.get_bind().dialect.name == "postgresql":
        return _append_on_server(
            session, actor, action, result, iccid, service_code, details_text, when
        )
    last_seq, last_hash = session.execute(_LOCK_HEAD).one()
    event = _event(
        actor, action, result, iccid, service_code, details_text, when, last_seq + 1, last_hash
    )
    session.execute(_INSERT_EVENT, _row_of(event))
    session.execute(_MOVE_HEAD, {"new_seq": event.seq, "new_hash": event.hash})
    return event


def _event(
    actor: Actor,
    action: str,
    result: str,
    iccid: str | None,
    service_code: str | None,
    details: str,
    at: datetime,
    seq: int,
    prev_hash: str,
) -> AuditEvent:
    event = AuditEvent(
        seq=seq,
        at=at,
        station=actor.station,
        operator=actor.operator,
        action=action,
        iccid=iccid,
        service_code=service_code,
        result=result,
        details=details,
        prev_hash=prev_hash,
        hash="",
    )
    event.hash = _hash_of(event)
    return event


def _row_of(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": event.at,
        "station": event.station,
        "operator": event.operator,
        "action": event.action,
        "iccid": event.iccid,
        "service_code": event.service_code,
        "result": event.result,
        "details": event.details,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def _append_on_server(
    session: Session,
    actor: Actor,
    action: str,
    result: str,
    iccid: str | None,
    service_code: str | None,
    details: str,
    at: datetime,
) -> AuditEvent:
    """Lock the head, hash, insert the event and move the head in one statement.

    The lock is then held for this one round trip and the commit's, not for
    four (many stations queue on the head). The hash is :func:`event_hash`'s:
    its JSON text is ``[seq,<middle>"prev_hash"]``, the middle (every field but
    the two the head gives) is made here, the server adds seq and prev_hash and
    takes the SHA-256; :func:`verify_chain` recomputes it in Python, so the two
    cannot silently disagree.
    """
    fields = json.dumps(
        [_timestamp(at), actor.station, actor.operator, action, iccid, service_code, result,
         details],
        separators=(",", ":"),
        ensure_ascii=False,
    )  # fmt: skip
    middle = "," + fields[1:-1] + ',"'
    row = dict(_row_of(_event(actor, action, result, iccid, service_code, details, at, 0, "")))
    del row["seq"], row["prev_hash"], row["hash"]
    seq, prev_hash, digest = session.execute(_APPEND_ON_SERVER, {**row, "middle": middle}).one()
    event = AuditEvent(**row, seq=seq, prev_hash=prev_hash, hash=digest)
    return event


# Built once: building a statement costs more CPU than running it (see
# bench/bench_stations.py); the values are bound at each execution.
_LOCK_HEAD = (
    select(AuditHead.last_seq, AuditHead.last_hash)
    .where(AuditHead.id == _HEAD_ID)
    .with_for_update()
)
_INSERT_EVENT = insert(AuditEvent)
_MOVE_HEAD = (
    update(AuditHead)
    .where(AuditHead.id == _HEAD_ID)
    .values(last_seq=bindparam("new_seq"), last_hash=bindparam("new_hash"))
    .execution_options(synchronize_session=False)
)
# The head row is locked by the sub-select (FOR UPDATE re-reads the newest
# version after waiting), and every new value comes from that locked row.
_APPEND_ON_SERVER = text(
    """
    WITH old AS (
        SELECT last_seq, last_hash FROM audit_head WHERE id = :head_id FOR UPDATE
    ), moved AS (
        UPDATE audit_head AS h
        SET last_seq = old.last_seq + 1,
            last_hash = encode(sha256(convert_to(
                '[' || (old.last_seq + 1)::text || :middle || old.last_hash || '"]', 'UTF8'
            )), 'hex')
        FROM old
        WHERE h.id = :head_id
        RETURNING h.last_seq, h.last_hash, old.last_hash AS prev_hash
    )
    INSERT INTO audit_events
        (seq, at, station, operator, action, iccid, service_code, result, details,
         prev_hash, hash)
    SELECT moved.last_seq, :at, :station, :operator, :action, :iccid, :service_code,
           :result, :details, moved.prev_hash, moved.last_hash
    FROM moved
    RETURNING seq, prev_hash, hash
    """
).bindparams(
    bindparam("head_id", _HEAD_ID),
    bindparam("middle", type_=String()),
    bindparam("at", type_=UtcDateTime()),
    bindparam("iccid", type_=String()),
    bindparam("service_code", type_=String()),
)


# -- digests of the state rows ----------------------------------------------
#
# A row's digest covers the columns that say where a card or a line stands
# (state, its line or card, usage, contract facts). It leaves out the sealed
# secrets, which a key rotation rewrites for every card, and times, which say
# when rather than what.


def _digest(values: Sequence[Any]) -> str:
    text = json.dumps([str(v) if v is not None else None for v in values], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _card_query(condition: Any) -> Any:
    return (
        select(
            Card.iccid,
            Card.imsi,
            Card.form_factor,
            Card.network_type,
            Card.batch_id,
            Card.state,
            Card.usage_mb,
            Card.quota_mb,
            Line.service_code,
        )
        .outerjoin(Binding, and_(Binding.card_id == Card.id, Binding.unbound_at.is_(None)))
        .outerjoin(Line, Line.id == Binding.line_id)
        .where(condition)
    )


def _line_query(condition: Any) -> Any:
    return (
        select(
            Line.service_code,
            Line.msisdn,
            Line.customer,
            Line.network_type,
            Line.function_class,
            Line.identity_verified,
            Line.contract_type,
            Line.activation_trigger,
            Line.activation_date,
            Line.delivered_on,
            Line.form_factor,
            Line.state,
            Card.iccid,
        )
        .outerjoin(Binding, and_(Binding.line_id == Line.id, Binding.unbound_at.is_(None)))
        .outerjoin(Card, Card.id == Binding.card_id)
        .where(condition)
    )


def _line_rows(session: Session, condition: Any) -> Iterator[tuple[str, str]]:
    """("line:CODE", digest) of the lines matching ``condition``."""
    yield from _keyed_digests("line", session.execute(_line_query(condition)))


def _keyed_digests(kind: str, rows: Iterable[Sequence[Any]]) -> Iterator[tuple[str, str]]:
    """("KIND:first column", digest) of each row.

    One place builds the keys, so that what an event records and what
    verify recomputes cannot come to name the same row differently.
    """
    for row in rows:
        yield f"{kind}:{row[0]}", _digest(row)


def state_digests(
    session: Session, *, cards: Iterable[str] = (), lines: Iterable[str] = ()
) -> dict[str, str]:
    """The current digests of the named cards and lines (rows that do not exist are left out)."""
    wanted_cards, wanted_lines = sorted(set(cards)), sorted(set(lines))
    found: dict[str, str] = {}
    if wanted_cards:
        found.update(
            _keyed_digests("card", session.execute(_CARDS_NAMED, {"wanted": wanted_cards}))
        )
    if wanted_lines:
        found.update(
            _keyed_digests("line", session.execute(_LINES_NAMED, {"wanted": wanted_lines}))
        )
    return found


# Built once (every write computes digests): the names are bound at execution.
_CARDS_NAMED = _card_query(Card.iccid.in_(bindparam("wanted", expanding=True)))
_LINES_NAMED = _line_query(Line.service_code.in_(bindparam("wanted", expanding=True)))


@dataclass
class _Accounted:
    """What the trail says about the state rows, gathered while walking the chain."""

    #: "card:ICCID" / "line:CODE" -> the digest the last event about it recorded.
    latest: dict[str, str] = field(default_factory=dict)
    #: stock batch name -> the number of cards its import recorded.
    batches: dict[str, int] = field(default_factory=dict)
    #: When the first event with row digests was written (older rows have none).
    since: datetime | None = None

    def take(self, event: AuditEvent) -> None:
        details = json.loads(event.details)
        if not isinstance(details, dict):
            return
        rows = details.get(ROWS_KEY)
        if isinstance(rows, dict):
            self.latest.update(rows)
            if self.since is None:
                self.since = event.at
        if event.action == "stock-import" and details.get(BATCH_CHECKED_KEY):
            self.batches[str(details.get("batch"))] = int(details.get("cards") or 0)
            if self.since is None:
                self.since = event.at


def _verify_rows(session: Session, accounted: _Accounted) -> tuple[str, str] | None:
    """The first state row the trail does not account for: (key, why), or None.

    - a card or line whose current digest is not the one its last event recorded;
    - a card of a batch imported with digests on, in a state other than in stock,
      with no event about it (it left stock outside simtool);
    - a batch whose number of cards is not the one its import recorded;
    - a line created after digests began with no event about it.
    """
    latest = accounted.latest
    batch_ids: dict[int, int] = {}
    for name, count in sorted(accounted.batches.items()):
        batch_id = session.execute(
            select(StockBatch.id).where(StockBatch.name == name)
        ).scalar_one_or_none()
        if batch_id is None:
            return f"batch:{name}", "the batch was deleted"
        have = session.execute(select(func.count()).where(Card.batch_id == batch_id)).scalar()
        if have != count:
            return f"batch:{name}", f"it holds {have} cards, its import recorded {count}"
        batch_ids[batch_id] = count
    last = ""
    while True:
        chunk = session.execute(
            _card_query(Card.iccid > last).order_by(Card.iccid).limit(_CHUNK * 5)
        ).all()
        if not chunk:
            break
        last = chunk[-1][0]
        for row in chunk:
            key = f"card:{row[0]}"
            if key in latest:
                if _digest(row) != latest[key]:
                    return key, "its state differs from what the last event about it recorded"
            elif row[4] in batch_ids and (str(row[5]), row[6], row[7], row[8]) != _INITIAL:
                return key, "it left stock with no event on the trail"
    for key, digest in _line_rows(session, Line.id.is_not(None)):
        if key in latest and digest != latest[key]:
            return key, "its state differs from what the last event about it recorded"
    if accounted.since is not None:
        created = session.execute(
            select(Line.service_code).where(Line.created_at >= accounted.since)
        ).scalars()
        for code in created:
            if f"line:{code}" not in latest:
                return f"line:{code}", "it was inserted with no event on the trail"
    return None


#: (state, usage, quota, line) of a card from its import until its first event.
_INITIAL = ("in-stock", 0, 0, None)


@dataclass(frozen=True)
class AuditVerification:
    """The result of checking the chain: ``ok``, or the first problem and where."""

    ok: bool
    events: int
    head_seq: int
    head_hash: str
    problem_seq: int | None = None
    problem_kind: str | None = None
    problem: str | None = None

    def raise_if_broken(self) -> None:
        """Raise :class:`AuditTamperedError` describing the first problem, if any."""
        if not self.ok:
            raise AuditTamperedError(
                self.problem or "audit chain broken",
                seq=self.problem_seq or 0,
                kind=self.problem_kind or "",
            )


def verify_chain(session: Session, *, check_rows: bool = True) -> AuditVerification:
    """Recompute the whole chain and report the first edited, inserted or deleted event;
    then (``check_rows``) recompute the state rows' digests and report the first row
    changed outside simtool (kind ``state-edited``)."""
    head = session.execute(select(AuditHead).where(AuditHead.id == _HEAD_ID)).scalar_one()
    expected_seq = 1
    prev_hash = GENESIS_HASH
    count = 0
    last_seq = 0
    accounted = _Accounted()

    def broken(seq: int, kind: str, message: str) -> AuditVerification:
        return AuditVerification(
            ok=False,
            events=count,
            head_seq=head.last_seq,
            head_hash=head.last_hash,
            problem_seq=seq,
            problem_kind=kind,
            problem=message,
        )

    while True:
        chunk = (
            session.execute(
                select(AuditEvent)
                .where(AuditEvent.seq > last_seq)
                .order_by(AuditEvent.seq)
                .limit(_CHUNK)
            )
            .scalars()
            .all()
        )
        if not chunk:
            break
        for event in chunk:
            if event.seq != expected_seq:
                if event.seq > expected_seq:
                    gap = (
                        f"event {expected_seq}"
                        if event.seq == expected_seq + 1
                        else f"events {expected_seq}-{event.seq - 1}"
                    )
                    return broken(
                        expected_seq,
                        "deleted",
                        f"{gap} deleted (the chain jumps from {expected_seq - 1} to {event.seq})",
                    )
                return broken(event.seq, "inserted", f"event {event.seq} inserted out of order")
            if _hash_of(event) != event.hash:
                return broken(
                    event.seq,
                    "edited",
                    f"event {event.seq} ({event.action} at {_timestamp(event.at)}) "
                    f"was edited: its content does not match its hash",
                )
            if event.prev_hash != prev_hash:
                return broken(
                    event.seq,
                    "inserted",
                    f"event {event.seq} ({event.action}) does not follow event "
                    f"{event.seq - 1}: inserted, or the event before it replaced",
                )
            prev_hash = event.hash
            accounted.take(event)
            expected_seq += 1
            count += 1
            last_seq = event.seq
        session.expunge_all()
    if head.last_seq > last_seq:
        return broken(
            last_seq + 1,
            "deleted",
            f"the chain ends at event {last_seq} but its head names event "
            f"{head.last_seq}: the last events were deleted",
        )
    if head.last_seq < last_seq:
        return broken(
            head.last_seq + 1,
            "inserted",
            f"events after {head.last_seq} (the head) were appended outside simtool",
        )
    if head.last_hash != prev_hash:
        return broken(
            last_seq,
            "edited",
            f"event {last_seq} does not match the hash the head recorded: edited",
        )
    if check_rows:
        unaccounted = _verify_rows(session, accounted)
        if unaccounted is not None:
            key, why = unaccounted
            seq = _last_event_about(session, key)
            return broken(
                seq,
                "state-edited",
                f"{key.replace(':', ' ', 1)} was changed outside simtool: {why}"
                + (f" (last event about it: {seq})" if seq else ""),
            )
    return AuditVerification(
        ok=True, events=count, head_seq=head.last_seq, head_hash=head.last_hash
    )


def _last_event_about(session: Session, key: str) -> int:
    kind, _, value = key.partition(":")
    column = {"card": AuditEvent.iccid, "line": AuditEvent.service_code}.get(kind)
    if column is None:
        return 0
    seq = session.execute(select(func.max(AuditEvent.seq)).where(column == value)).scalar()
    return int(seq or 0)


def verify_audit(database: Database) -> AuditVerification:
    """Check the whole audit chain of ``database`` in one consistent snapshot."""
    with database.read() as session:
        return verify_chain(session)
