"""The hash-chained audit trail: appends in the same transaction, tampering found."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update

from apdu.errors import UsageError
from provisioning.audit import (
    GENESIS_HASH,
    Actor,
    append_event,
    event_hash,
    verify_audit,
)
from provisioning.database import Database
from provisioning.errors import AuditTamperedError
from provisioning.models import AuditEvent, AuditHead


def append(database: Database, actor: Actor, count: int) -> None:
    for number in range(count):
        with database.write() as session:
            append_event(
                session,
                actor,
                "test",
                iccid=f"8981{number:015d}",
                details={"n": number, "text": "日本語"},
            )


def test_chain_links_every_event(database: Database, actor: Actor) -> None:
    append(database, actor, 5)
    with database.read() as session:
        events = session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
        head = session.execute(select(AuditHead)).scalar_one()
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
    assert (head.last_seq, head.last_hash) == (5, events[-1].hash)
    assert json.loads(events[2].details) == {"n": 2, "text": "日本語"}
    result = verify_audit(database)
    assert result.ok and result.events == 5 and result.head_hash == events[-1].hash


def test_rolled_back_action_leaves_no_event(database: Database, actor: Actor) -> None:
    append(database, actor, 1)
    with pytest.raises(RuntimeError), database.write() as session:
        append_event(session, actor, "doomed")
        raise RuntimeError("the state change failed")
    assert verify_audit(database).events == 1


def test_hash_covers_every_field() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 5, 1, tzinfo=UTC)
    fields = [3, at, "st", "op", "act", "8981", "hdd1", "ok", "{}", "0" * 64]
    base = event_hash(*fields)  # type: ignore[arg-type]
    for index in range(len(fields)):
        changed = list(fields)
        value = changed[index]
        changed[index] = (
            value + 1
            if isinstance(value, int)
            else value + timedelta(microseconds=1)
            if isinstance(value, datetime)
            else str(value) + "x"
        )
        assert event_hash(*changed) != base, index  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("column", "value"),
    [("details", '{"n":99}'), ("operator", "mallory"), ("result", "failed"), ("iccid", None)],
)
def test_edited_event_is_named(
    database: Database, actor: Actor, column: str, value: object
) -> None:
    append(database, actor, 6)
    with database.write() as session:
        session.execute(update(AuditEvent).where(AuditEvent.seq == 4).values({column: value}))
    result = verify_audit(database)
    assert (result.ok, result.problem_seq, result.problem_kind) == (False, 4, "edited")
    with pytest.raises(AuditTamperedError) as broken:
        result.raise_if_broken()
    assert broken.value.seq == 4 and broken.value.kind == "edited"


def test_deleted_events_are_named(database: Database, actor: Actor) -> None:
    append(database, actor, 6)
    with database.write() as session:
        session.execute(delete(AuditEvent).where(AuditEvent.seq.in_([3, 4])))
    result = verify_audit(database)
    assert (result.problem_seq, result.problem_kind) == (3, "deleted")
    assert "events 3-4 deleted" in (result.problem or "")


def test_deleted_last_event_is_named(database: Database, actor: Actor) -> None:
    append(database, actor, 4)
    with database.write() as session:
        session.execute(delete(AuditEvent).where(AuditEvent.seq == 4))
    result = verify_audit(database)
    assert (result.problem_seq, result.problem_kind) == (4, "deleted")


def test_inserted_event_is_named(database: Database, actor: Actor) -> None:
    append(database, actor, 3)
    with database.read() as session:
        last = session.execute(select(AuditEvent).where(AuditEvent.seq == 3)).scalar_one()
    forged = AuditEvent(
        seq=4,
        at=last.at,
        station="st",
        operator="mallory",
        action="provision",
        iccid=None,
        service_code=None,
        result="passed",
        details="{}",
        prev_hash=last.hash,
        hash="",
    )
    forged.hash = event_hash(
        4, forged.at, "st", "mallory", "provision", None, None, "passed", "{}", last.hash
    )
    with database.write() as session:
        session.add(forged)
    result = verify_audit(database)
    assert (result.problem_seq, result.problem_kind) == (4, "inserted")


def test_replaced_event_with_recomputed_hash_breaks_the_next_link(
    database: Database, actor: Actor
) -> None:
    append(database, actor, 5)
    with database.write() as session:
        event = session.execute(select(AuditEvent).where(AuditEvent.seq == 2)).scalar_one()
        event.operator = "mallory"
        event.hash = event_hash(
            2,
            event.at,
            event.station,
            "mallory",
            event.action,
            event.iccid,
            event.service_code,
            event.result,
            event.details,
            event.prev_hash,
        )
    result = verify_audit(database)
    assert (result.ok, result.problem_seq) == (False, 3)


def test_actor_is_required() -> None:
    with pytest.raises(UsageError):
        Actor(operator=" ", station="bench-1")
    with pytest.raises(UsageError):
        Actor(operator="tanaka", station="")
