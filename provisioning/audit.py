"""The audit trail: one hash-chained event per station action.

Every workflow calls :func:`append_event` inside the transaction that changes
state, so the event and the change commit or vanish together. Each station
appends to a chain of its own: an event's hash covers its fields and the hash
of the station's previous event, and the station's ``audit_chains`` row names
its last event. Appends lock only their own station's row, so stations
sharing a database do not queue on each other. Now and then an event carries
the other stations' current heads (``anchors``), so one station's chain
cannot be rewritten without breaking what the others recorded.

The events written before per-station chains (schema 0006) form the legacy
single chain; its head (``audit_head``) no longer moves, and every station
chain starts from its hash.

:func:`verify_chain` recomputes every chain and the anchors, and names the
first event that was edited, inserted or deleted. Whoever can write the
database can also rewrite every chain consistently: compare the heads'
digest with one recorded elsewhere (the shift report prints it) to catch that.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, and_, bindparam, func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from apdu.errors import UsageError
from provisioning.database import Database
from provisioning.errors import AuditTamperedError
from provisioning.models import (
    AuditChain,
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
    chain_seq: int | None = None,
) -> str:
    """SHA-256 over the event's fields and its predecessor's hash.

    ``chain_seq`` is the event's place in its station's chain; it is None for
    the legacy single chain, whose events were hashed without it.
    """
    head: list[Any] = [seq] if chain_seq is None else [seq, chain_seq]
    payload = json.dumps(
        [
            *head,
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


def hash_of(event: AuditEvent) -> str:
    """:func:`event_hash` of a stored event's own fields (what verify recomputes)."""
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
        event.chain_seq,
    )


#: Every this many appends a station process records the other chains' heads.
ANCHOR_EVERY = 16
#: Where an event keeps the other chains' heads: {station: [chain_seq, hash]}.
ANCHORS_KEY = "anchors"
# Appends since the last anchor, per engine and station in this process: a
# station anchors on its first append and every ANCHOR_EVERY-th after. Weak
# keys: an engine a caller dropped takes its counts with it.
_since_anchor: weakref.WeakKeyDictionary[Engine, dict[str, int]] = weakref.WeakKeyDictionary()


def append_event(
    session: Session | Connection,
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
    rows: Mapping[str, str] | None = None,
) -> AppendedEvent:
    """Add one event to the station's chain, in the caller's transaction.

    Call it last in the transaction: it locks the station's chain head (and
    the state rows it names) until commit. ``details`` must not hold secrets;
    it is stored as canonical JSON.

    The event carries the digests of the state rows it concerns, as they are
    when it commits: the card ``iccid`` and the line ``service_code`` (when
    they exist), and ``also_cards``/``also_lines`` (other rows it changed). So
    :func:`verify_chain` can tell a row edited outside simtool from one the
    trail accounts for. A caller that already holds those rows' digests (read
    with the rows locked, see :func:`digests_of`) passes them as ``rows``.
    """
    if isinstance(session, Session):
        session.flush()
    if rows is None:
        rows = state_digests(
            session,
            cards=[c for c in (iccid, *also_cards) if c],
            lines=[code for code in (service_code, *also_lines) if code],
        )
    extra: dict[str, Any] = {}
    if rows:
        extra[ROWS_KEY] = dict(rows)
    anchors = _anchors_due(session, actor.station)
    if anchors:
        extra[ANCHORS_KEY] = anchors
    if extra:
        details = {**(details or {}), **extra}
    when = at or datetime.now(UTC)
    details_text = canonical_details(details)
    # Everything that can be prepared is prepared before the chain's head is
    # locked: from here to the commit this station's other appends wait on it.
    # Core statements, not the unit of work: the ORM flush costs more CPU than
    # the hash.
    if _bind_of(session).dialect.name == "postgresql":
        return _append_on_server(
            session, actor, action, result, iccid, service_code, details_text, when
        )
    found = session.execute(_LOCK_CHAIN, {"station": actor.station}).one_or_none()
    if found is None:
        last_seq, last_hash = 0, _legacy_head(session)[1]
        session.execute(
            _NEW_CHAIN, {"station": actor.station, "last_seq": 0, "last_hash": last_hash}
        )
    else:
        last_seq, last_hash = int(found[0]), str(found[1])
    # SQLite: this transaction holds the database's write lock (BEGIN IMMEDIATE).
    seq = session.execute(_NEXT_SEQ_SQLITE).scalar_one()
    row = _fields(actor, action, result, iccid, service_code, details_text, when)
    chain_seq = last_seq + 1
    digest = event_hash(
        seq, when, actor.station, actor.operator, action, iccid, service_code, result,
        details_text, last_hash, chain_seq,
    )  # fmt: skip
    session.execute(
        _INSERT_EVENT,
        {**row, "seq": seq, "chain_seq": chain_seq, "prev_hash": last_hash, "hash": digest},
    )
    moved = {"new_seq": chain_seq, "new_hash": digest, "event": seq}
    session.execute(_MOVE_CHAIN, {"chain": actor.station, **moved})
    return AppendedEvent(seq, chain_seq, actor.station, last_hash, digest)


def _bind_of(session: Session | Connection) -> Engine | Connection:
    return session if isinstance(session, Connection) else session.get_bind()


def _anchors_due(session: Session | Connection, station: str) -> dict[str, list[Any]]:
    """The other chains' heads, when this station is due to anchor them; else {}."""
    counts = _since_anchor.setdefault(_bind_of(session).engine, {})
    count = counts.get(station, 0)
    counts[station] = (count + 1) % ANCHOR_EVERY
    if count:
        return {}
    return {
        other: [last_seq, last_hash]
        for other, last_seq, last_hash in session.execute(_OTHER_HEADS, {"station": station})
    }


def _legacy_head(session: Session | Connection) -> tuple[int, str]:
    """The last position and hash of the legacy single chain (frozen since schema 0006)."""
    row = session.execute(select(AuditHead.last_seq, AuditHead.last_hash)).first()
    return (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))


@dataclass(frozen=True)
class AppendedEvent:
    """What :func:`append_event` wrote: the event's id, its place in its chain, its hashes."""

    seq: int
    chain_seq: int
    station: str
    prev_hash: str
    hash: str


def _fields(
    actor: Actor,
    action: str,
    result: str,
    iccid: str | None,
    service_code: str | None,
    details: str,
    at: datetime,
) -> dict[str, Any]:
    """An event's columns but the four the chain gives (seq, chain_seq, prev_hash, hash)."""
    return {
        "at": at,
        "station": actor.station,
        "operator": actor.operator,
        "action": action,
        "iccid": iccid,
        "service_code": service_code,
        "result": result,
        "details": details,
    }


def _append_on_server(
    session: Session | Connection,
    actor: Actor,
    action: str,
    result: str,
    iccid: str | None,
    service_code: str | None,
    details: str,
    at: datetime,
) -> AppendedEvent:
    """Lock the station's head, hash, insert the event and move the head in one statement.

    The head is then held for this one round trip and the commit's, not for
    four. The hash is :func:`event_hash`'s: its JSON text is
    ``[seq,chain_seq<middle>"prev_hash"]``; the middle (every field but the
    three the server gives) is made here, the server adds the event id, the
    chain position and the previous hash and takes the SHA-256;
    :func:`verify_chain` recomputes it in Python, so the two cannot silently
    disagree. A station's first event finds no head row: the row is created
    (starting from the legacy chain's head) and the statement runs again.
    """
    fields = json.dumps(
        [_timestamp(at), actor.station, actor.operator, action, iccid, service_code, result,
         details],
        separators=(",", ":"),
        ensure_ascii=False,
    )  # fmt: skip
    middle = "," + fields[1:-1] + ',"'
    params = {**_fields(actor, action, result, iccid, service_code, details, at), "middle": middle}
    done = session.execute(_APPEND_ON_SERVER, params).one_or_none()
    if done is None:
        session.execute(
            _NEW_CHAIN_PG,
            {"station": actor.station, "last_seq": 0, "last_hash": _legacy_head(session)[1]},
        )
        done = session.execute(_APPEND_ON_SERVER, params).one()
    seq, chain_seq, prev_hash, digest = done
    return AppendedEvent(seq, chain_seq, actor.station, prev_hash, digest)


# Built once: building a statement costs more CPU than running it (see
# bench/bench_stations.py); the values are bound at each execution.
_LOCK_CHAIN = (
    select(AuditChain.last_seq, AuditChain.last_hash)
    .where(AuditChain.station == bindparam("station"))
    .with_for_update()
)
_NEW_CHAIN = insert(AuditChain)
# Two processes of one station may both find no head: the second one's insert
# does nothing, and its append then waits on the first one's row.
_NEW_CHAIN_PG = text(
    "INSERT INTO audit_chains (station, last_seq, last_hash) "
    "VALUES (:station, :last_seq, :last_hash) ON CONFLICT (station) DO NOTHING"
)
_NEXT_SEQ_SQLITE = select(func.coalesce(func.max(AuditEvent.seq), 0) + 1)
_OTHER_HEADS = select(AuditChain.station, AuditChain.last_seq, AuditChain.last_hash).where(
    AuditChain.station != bindparam("station")
)
_INSERT_EVENT = insert(AuditEvent)
_MOVE_CHAIN = (
    update(AuditChain)
    .where(AuditChain.station == bindparam("chain"))
    .values(
        last_seq=bindparam("new_seq"),
        last_hash=bindparam("new_hash"),
        last_event=bindparam("event"),
    )
    .execution_options(synchronize_session=False)
)
# The station's head row is locked by the sub-select (FOR UPDATE re-reads the
# newest version after waiting), and every new value comes from that locked
# row; the event id comes from the sequence, so ids have gaps (rolled-back
# appends) but grow with commit order for the events about any one row (see
# :func:`state_digests`).
_APPEND_ON_SERVER = text(
    """
    WITH old AS (
        SELECT last_seq, last_hash FROM audit_chains WHERE station = :station FOR UPDATE
    ), ids AS (
        SELECT nextval('audit_event_ids') AS seq FROM old
    ), moved AS (
        UPDATE audit_chains AS c
        SET last_seq = old.last_seq + 1,
            last_event = ids.seq,
            last_hash = encode(sha256(convert_to(
                '[' || ids.seq::text || ',' || (old.last_seq + 1)::text || :middle
                || old.last_hash || '"]', 'UTF8'
            )), 'hex')
        FROM old, ids
        WHERE c.station = :station
        RETURNING c.last_event, c.last_seq, c.last_hash, old.last_hash AS prev_hash
    )
    INSERT INTO audit_events
        (seq, chain_seq, at, station, operator, action, iccid, service_code, result, details,
         prev_hash, hash)
    SELECT moved.last_event, moved.last_seq, :at, :station, :operator, :action, :iccid,
           :service_code, :result, :details, moved.prev_hash, moved.last_hash
    FROM moved
    RETURNING seq, chain_seq, prev_hash, hash
    """
).bindparams(
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


#: The columns of a card's digest on its own row; its current line's code follows.
CARD_DIGEST_COLUMNS = (
    Card.iccid,
    Card.imsi,
    Card.form_factor,
    Card.network_type,
    Card.batch_id,
    Card.state,
    Card.usage_mb,
    Card.quota_mb,
)
#: The columns of a line's digest on its own row; its current card's ICCID follows.
LINE_DIGEST_COLUMNS = (
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
)


def _card_query(condition: Any) -> Any:
    return (
        select(*CARD_DIGEST_COLUMNS, Line.service_code)
        .outerjoin(Binding, and_(Binding.card_id == Card.id, Binding.unbound_at.is_(None)))
        .outerjoin(Line, Line.id == Binding.line_id)
        .where(condition)
    )


def _line_query(condition: Any) -> Any:
    return (
        select(*LINE_DIGEST_COLUMNS, Card.iccid)
        .outerjoin(Binding, and_(Binding.line_id == Line.id, Binding.unbound_at.is_(None)))
        .outerjoin(Card, Card.id == Binding.card_id)
        .where(condition)
    )


def digests_of(
    *, card: Sequence[Any], service_code: str | None, line: Sequence[Any], iccid: str | None
) -> dict[str, str]:
    """The digests of one card and one line from their own rows and their binding.

    ``card``/``line`` hold :data:`CARD_DIGEST_COLUMNS`/:data:`LINE_DIGEST_COLUMNS`
    (an ``UPDATE ... RETURNING`` of the rows a workflow holds locked);
    ``service_code``/``iccid`` name what each is bound to when the transaction
    commits. The result is what :func:`state_digests` would read, one query fewer.
    """
    return dict(
        [
            *_keyed_digests("card", [(*card, service_code)]),
            *_keyed_digests("line", [(*line, iccid)]),
        ]
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
    session: Session | Connection, *, cards: Iterable[str] = (), lines: Iterable[str] = ()
) -> dict[str, str]:
    """The current digests of the named cards and lines (rows that do not exist are left out).

    The rows are locked until the transaction ends (FOR UPDATE; SQLite's
    write lock already covers the whole database). Two events about one row
    therefore commit one after the other, and the later one gets the higher
    event id: verify takes the event with the highest id about a row as the
    last word on it, though the stations' chains interleave.
    """
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
_CARDS_NAMED = _card_query(Card.iccid.in_(bindparam("wanted", expanding=True))).with_for_update(
    of=Card
)
_LINES_NAMED = _line_query(
    Line.service_code.in_(bindparam("wanted", expanding=True))
).with_for_update(of=Line)


@dataclass
class _Accounted:
    """What the trail says about the state rows, gathered while walking the chain."""

    #: "card:ICCID" / "line:CODE" -> the digest the last event about it recorded.
    latest: dict[str, str] = field(default_factory=dict)
    #: stock batch name -> the number of cards its import recorded.
    batches: dict[str, int] = field(default_factory=dict)
    #: When the first event with row digests was written (older rows have none).
    since: datetime | None = None

    def take(self, event: AuditEvent, details: Mapping[str, Any]) -> None:
        """Note what ``event`` (walked in id order) says about the rows."""
        rows = details.get(ROWS_KEY)
        if isinstance(rows, dict):
            self.latest.update(rows)
            self._began(event.at)
        if event.action == "stock-import" and details.get(BATCH_CHECKED_KEY):
            self.batches[str(details.get("batch"))] = int(details.get("cards") or 0)
            self._began(event.at)

    def _began(self, at: datetime) -> None:
        # The stations' clocks and chains interleave: the earliest time counts.
        if self.since is None or at < self.since:
            self.since = at


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
class ChainHead:
    """Where one chain ends: its station ("" for the legacy chain), position and hash."""

    station: str
    seq: int
    hash: str
    #: The id of the event the head names (0: none).
    event: int = 0


def chain_heads(session: Session) -> list[ChainHead]:
    """The legacy chain's head, then every station chain's head by station name."""
    legacy_seq, legacy_hash = _legacy_head(session)
    heads = [ChainHead("", legacy_seq, legacy_hash, legacy_seq)]
    for station, last_seq, last_hash, last_event in session.execute(
        select(
            AuditChain.station, AuditChain.last_seq, AuditChain.last_hash, AuditChain.last_event
        ).order_by(AuditChain.station)
    ):
        heads.append(ChainHead(station, last_seq, last_hash, last_event or 0))
    return heads


def heads_digest(heads: Sequence[ChainHead]) -> str:
    """One SHA-256 over every chain's head: kept outside the database, it pins the trail."""
    text = json.dumps([[h.station, h.seq, h.hash] for h in heads], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class AuditVerification:
    """The result of checking the chains: ``ok``, or the first problem and where.

    ``head_seq`` is the id of the last event; ``head_hash`` is
    :func:`heads_digest` of every chain's head (the value to keep elsewhere).
    """

    ok: bool
    events: int
    head_seq: int
    head_hash: str
    problem_seq: int | None = None
    problem_kind: str | None = None
    problem: str | None = None
    #: The station whose chain holds the problem ("" for the legacy chain).
    problem_station: str | None = None
    #: The station chains walked (the legacy chain not counted).
    chains: int = 0

    def raise_if_broken(self) -> None:
        """Raise :class:`AuditTamperedError` describing the first problem, if any."""
        if not self.ok:
            raise AuditTamperedError(
                self.problem or "audit chain broken",
                seq=self.problem_seq or 0,
                kind=self.problem_kind or "",
            )


class _BrokenError(Exception):
    """The first problem found while walking: (global seq, kind, station, message)."""

    def __init__(self, seq: int, kind: str, station: str, message: str) -> None:
        super().__init__(message)
        self.seq, self.kind, self.station, self.message = seq, kind, station, message


@dataclass
class _Walk:
    """One chain as walked so far: the position and hash the next event must follow."""

    name: str
    expected: int
    prev_hash: str
    last_event: int = 0

    def follow(self, event: AuditEvent, position: int) -> None:
        """Check that ``event`` comes next in this chain; raise :class:`_BrokenError` if not."""
        where = f"station {self.name}'s chain" if self.name else "the legacy chain"
        if position > self.expected:
            gap = (
                f"#{self.expected}"
                if position == self.expected + 1
                else f"#{self.expected}-#{position - 1}"
            )
            raise _BrokenError(
                event.seq,
                "deleted",
                self.name,
                f"events {gap} of {where} deleted (it jumps from #{self.expected - 1} to "
                f"#{position}, event {event.seq})",
            )
        if position < self.expected:
            raise _BrokenError(
                event.seq, "inserted", self.name, f"event {event.seq} inserted out of order"
            )
        if hash_of(event) != event.hash:
            raise _BrokenError(
                event.seq,
                "edited",
                self.name,
                f"event {event.seq} ({event.action} at {_timestamp(event.at)}) was edited: "
                f"its content does not match its hash",
            )
        if event.prev_hash != self.prev_hash:
            raise _BrokenError(
                event.seq,
                "inserted",
                self.name,
                f"event {event.seq} ({event.action}) does not follow #{position - 1} of "
                f"{where}: inserted, or the event before it replaced",
            )
        self.prev_hash = event.hash
        self.expected += 1
        self.last_event = event.seq


@dataclass
class _Anchors:
    """Heads of other chains recorded by events: checked against the stored events."""

    #: (station, chain_seq) -> (hash recorded, id of the event that recorded it)
    pending: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)

    def take(self, event: AuditEvent, details: Mapping[str, Any]) -> None:
        anchors = details.get(ANCHORS_KEY)
        if not isinstance(anchors, dict):
            return
        for station, head in anchors.items():
            if not (isinstance(head, list) and len(head) == 2) or not head[0]:
                continue
            key, value = (str(station), int(head[0])), (str(head[1]), event.seq)
            known = self.pending.setdefault(key, value)
            if known[0] != value[0]:
                raise _BrokenError(
                    event.seq,
                    "edited",
                    str(station),
                    f"events {known[1]} and {event.seq} recorded different hashes for "
                    f"#{key[1]} of station {station}'s chain: one of them was rewritten",
                )

    def check(self, session: Session) -> None:
        """Compare every pending anchor with the event it names; raise :class:`_BrokenError`."""
        by_station: dict[str, list[int]] = {}
        for station, position in self.pending:
            by_station.setdefault(station, []).append(position)
        for station, positions in sorted(by_station.items()):
            for start in range(0, len(positions), _CHUNK):
                wanted = positions[start : start + _CHUNK]
                stored = {
                    position: (seq, digest)
                    for position, seq, digest in session.execute(
                        select(AuditEvent.chain_seq, AuditEvent.seq, AuditEvent.hash).where(
                            AuditEvent.station == station, AuditEvent.chain_seq.in_(wanted)
                        )
                    )
                }
                for position in sorted(wanted):
                    recorded, by = self.pending[(station, position)]
                    if position not in stored:
                        raise _BrokenError(
                            by,
                            "deleted",
                            station,
                            f"event {by} recorded #{position} of station {station}'s chain, "
                            f"which is gone: the end of that chain was deleted",
                        )
                    seq, digest = stored[position]
                    if digest != recorded:
                        raise _BrokenError(
                            seq,
                            "edited",
                            station,
                            f"station {station}'s chain was rewritten: its #{position} "
                            f"(event {seq}) is not the one event {by} recorded",
                        )
        self.pending.clear()


def verify_chain(session: Session, *, check_rows: bool = True) -> AuditVerification:
    """Recompute every chain and report the first edited, inserted or deleted event;
    check the heads the chains recorded of each other; then (``check_rows``)
    recompute the state rows' digests and report the first row changed outside
    simtool (kind ``state-edited``)."""
    heads = chain_heads(session)
    legacy_head, station_heads = heads[0], heads[1:]
    head_hash = heads_digest(heads)
    walks: dict[str, _Walk] = {}
    legacy = _Walk("", 1, GENESIS_HASH)
    chains_began = False
    accounted = _Accounted()
    anchors = _Anchors()
    count = last_seq = 0
    try:
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
                if event.chain_seq is None:
                    if chains_began:
                        raise _BrokenError(
                            event.seq,
                            "inserted",
                            "",
                            f"event {event.seq} was added to the legacy chain, which was "
                            f"closed when the station chains began",
                        )
                    legacy.follow(event, event.seq)
                else:
                    if not chains_began:
                        # Every station chain starts from the legacy chain's end.
                        chains_began = True
                    walk = walks.get(event.station)
                    if walk is None:
                        walk = walks[event.station] = _Walk(event.station, 1, legacy.prev_hash)
                    walk.follow(event, event.chain_seq)
                details = json.loads(event.details)
                if isinstance(details, dict):
                    accounted.take(event, details)
                    anchors.take(event, details)
                count += 1
                last_seq = event.seq
            session.expunge_all()
            if len(anchors.pending) > _CHUNK * 5:
                anchors.check(session)
        _check_heads(legacy, legacy_head, walks, station_heads)
        anchors.check(session)
    except _BrokenError as broken:
        return AuditVerification(
            ok=False,
            events=count,
            head_seq=last_seq,
            head_hash=head_hash,
            problem_seq=broken.seq,
            problem_kind=broken.kind,
            problem=broken.message,
            problem_station=broken.station,
            chains=len(walks),
        )
    if check_rows:
        unaccounted = _verify_rows(session, accounted)
        if unaccounted is not None:
            key, why = unaccounted
            seq = _last_event_about(session, key)
            return AuditVerification(
                ok=False,
                events=count,
                head_seq=last_seq,
                head_hash=head_hash,
                problem_seq=seq,
                problem_kind="state-edited",
                problem=f"{key.replace(':', ' ', 1)} was changed outside simtool: {why}"
                + (f" (last event about it: {seq})" if seq else ""),
                chains=len(walks),
            )
    return AuditVerification(
        ok=True, events=count, head_seq=last_seq, head_hash=head_hash, chains=len(walks)
    )


def _check_heads(
    legacy: _Walk, legacy_head: ChainHead, walks: Mapping[str, _Walk], heads: Sequence[ChainHead]
) -> None:
    """Compare where each chain's walk ended with its head row; raise :class:`_BrokenError`."""
    ends = [(legacy, legacy_head)]
    named = {head.station: head for head in heads}
    for station in sorted(set(walks) - set(named)):
        walk = walks[station]
        raise _BrokenError(
            walk.last_event,
            "inserted",
            station,
            f"station {station}'s events have no chain head: they were written outside simtool",
        )
    for head in heads:
        ends.append((walks.get(head.station) or _Walk(head.station, 1, ""), head))
    for walk, head in ends:
        where = f"station {head.station}'s chain" if head.station else "the legacy chain"
        walked = walk.expected - 1
        if head.seq > walked:
            raise _BrokenError(
                head.event,
                "deleted",
                head.station,
                f"{where} ends at #{walked} but its head names #{head.seq}: "
                f"the last events were deleted",
            )
        if head.seq < walked:
            raise _BrokenError(
                walk.last_event,
                "inserted",
                head.station,
                f"events after #{head.seq} of {where} (its head) were appended outside simtool",
            )
        if walked and head.hash != walk.prev_hash:
            raise _BrokenError(
                walk.last_event,
                "edited",
                head.station,
                f"event {walk.last_event} does not match the hash {where}'s head recorded: edited",
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
