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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from apdu.errors import UsageError
from provisioning.database import Database
from provisioning.errors import AuditTamperedError
from provisioning.models import AuditEvent, AuditHead

GENESIS_HASH = "0" * 64
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
) -> AuditEvent:
    """Add one event to the chain, in the caller's transaction.

    Call it last in the transaction: it locks the chain's head until commit.
    ``details`` must not hold secrets; it is stored as canonical JSON.
    """
    head = session.execute(
        select(AuditHead).where(AuditHead.id == _HEAD_ID).with_for_update()
    ).scalar_one()
    when = at or datetime.now(UTC)
    event = AuditEvent(
        seq=head.last_seq + 1,
        at=when,
        station=actor.station,
        operator=actor.operator,
        action=action,
        iccid=iccid,
        service_code=service_code,
        result=result,
        details=canonical_details(details),
        prev_hash=head.last_hash,
        hash="",
    )
    event.hash = _hash_of(event)
    session.add(event)
    head.last_seq = event.seq
    head.last_hash = event.hash
    session.flush()
    return event


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


def verify_chain(session: Session) -> AuditVerification:
    """Recompute the whole chain and report the first edited, inserted or deleted event."""
    head = session.execute(select(AuditHead).where(AuditHead.id == _HEAD_ID)).scalar_one()
    expected_seq = 1
    prev_hash = GENESIS_HASH
    count = 0
    last_seq = 0

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
    return AuditVerification(
        ok=True, events=count, head_seq=head.last_seq, head_hash=head.last_hash
    )


def verify_audit(database: Database) -> AuditVerification:
    """Check the whole audit chain of ``database`` in one consistent snapshot."""
    with database.read() as session:
        return verify_chain(session)
