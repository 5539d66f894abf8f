"""The hash-chained audit trail: appends in the same transaction, tampering found."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update

from apdu.errors import UsageError
from provisioning.audit import (
    GENESIS_HASH,
    Actor,
    append_event,
    chain_heads,
    event_hash,
    heads_digest,
    verify_audit,
    verify_chain,
)
from provisioning.database import Database
from provisioning.errors import AuditTamperedError
from provisioning.lifecycle import FormFactor
from provisioning.lines import LineSpec, add_line
from provisioning.models import AuditChain, AuditEvent, AuditHead
from provisioning.secrets import Keyring
from provisioning.stock import import_stock
from provisioning.workflows import provision
from tests.provisioning.helpers import Stock, chip


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
        legacy = session.execute(select(AuditHead)).scalar_one()
        head = session.execute(select(AuditChain)).scalar_one()
    assert [(e.seq, e.chain_seq, e.station) for e in events] == [
        (n, n, actor.station) for n in range(1, 6)
    ]
    # A new database has an empty legacy chain: the station's chain starts at genesis.
    assert (legacy.last_seq, legacy.last_hash) == (0, GENESIS_HASH)
    assert events[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
    assert (head.station, head.last_seq, head.last_hash, head.last_event) == (
        actor.station,
        5,
        events[-1].hash,
        5,
    )
    assert json.loads(events[2].details) == {"n": 2, "text": "日本語"}
    result = verify_audit(database)
    assert result.ok and result.events == 5 and result.chains == 1
    with database.read() as session:
        assert result.head_hash == heads_digest(chain_heads(session))


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
    # The event after the gap is named; the chain positions say what is missing.
    assert (result.problem_seq, result.problem_kind) == (5, "deleted")
    assert "events #3-#4 of station" in (result.problem or "")


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
            event.chain_seq,
        )
    result = verify_audit(database)
    assert (result.ok, result.problem_seq) == (False, 3)


def test_actor_is_required() -> None:
    with pytest.raises(UsageError):
        Actor(operator=" ", station="bench-1")
    with pytest.raises(UsageError):
        Actor(operator="tanaka", station="")


# -- the state the trail describes ---------------------------------------------


@pytest.fixture
def worked(
    database: Database, keyring: Keyring, actor: Actor, stock: Callable[..., Stock]
) -> tuple[Database, Stock]:
    """A database where a stock was imported and one card provisioned."""
    file = stock(3)
    import_stock(database, keyring, actor, file.path)
    for code in ("hdd8200001", "hdd8200002"):
        add_line(
            database,
            actor,
            LineSpec.parse(
                service_code=code,
                msisdn=None,
                customer="MA82",
                network_type="D",
                function_class="data",
            ),
        )
    provision(
        database,
        actor,
        service_code="hdd8200001",
        form_factor=FormFactor.NANO,
        card=chip(file.row(0)),
        keyring=keyring,
    )
    assert verify_audit(database).ok
    return database, file


@pytest.mark.parametrize(
    ("statement", "key"),
    [
        ("UPDATE cards SET state = 'in-stock' WHERE iccid = '{bound}'", "card {bound}"),
        ("UPDATE lines SET customer = 'MA66' WHERE service_code = 'hdd8200001'", "line hdd8200001"),
        (
            "UPDATE lines SET state = 'suspended' WHERE service_code = 'hdd8200002'",
            "line hdd8200002",
        ),
        ("UPDATE cards SET state = 'lost' WHERE iccid = '{spare}'", "card {spare}"),
        ("UPDATE cards SET usage_mb = 1 WHERE iccid = '{spare}'", "card {spare}"),
        ("UPDATE bindings SET unbound_at = bound_at", "card {bound}"),
        ("DELETE FROM cards WHERE iccid = '{spare}'", "batch"),
        (
            "INSERT INTO lines (service_code, customer, network_type, function_class, "
            "identity_verified, state, state_changed_at, created_at) VALUES ('hdd8200099', "
            "'MA82', 'D', 'data', false, 'pending', '2999-01-01', '2999-01-01')",
            "line hdd8200099",
        ),
    ],
)
def test_edits_of_state_rows_are_found(
    worked: tuple[Database, Stock], statement: str, key: str
) -> None:
    database, file = worked
    names = {"bound": file.row(0).iccid, "spare": file.row(2).iccid}
    with database.engine.begin() as connection:
        connection.exec_driver_sql(statement.format(**names))
    result = verify_audit(database)
    assert not result.ok and result.problem_kind == "state-edited", result
    assert key.format(**names) in (result.problem or "")
    with pytest.raises(AuditTamperedError):
        result.raise_if_broken()


def test_chain_only_check_skips_the_rows(worked: tuple[Database, Stock]) -> None:
    database, file = worked
    with database.engine.begin() as connection:
        connection.exec_driver_sql(
            f"UPDATE cards SET state = 'lost' WHERE iccid = '{file.row(1).iccid}'"
        )
    with database.read() as session:
        assert verify_chain(session, check_rows=False).ok
