"""One audit chain per station: interleaving, anchors between chains, the legacy chain.

Each station appends to its own chain, so stations sharing a database do not
queue on one head row. What one station's chain could hide on its own (a
consistent rewrite of it, or its tail cut with its head moved back) shows
through the heads the other stations recorded of it; and the events written
before per-station chains stay verified as the legacy chain every station
chain starts from.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.engine import URL

import provisioning.audit as audit
from provisioning.audit import (
    ANCHORS_KEY,
    GENESIS_HASH,
    Actor,
    append_event,
    chain_heads,
    event_hash,
    hash_of,
    heads_digest,
    verify_audit,
)
from provisioning.database import Database
from provisioning.models import AuditChain, AuditEvent
from provisioning.secrets import Keyring
from provisioning.stock import import_stock
from provisioning.stockfile import example_rows, write_stock_csv
from tests.provisioning.conftest import reset_postgres

STATIONS = ("bench-a", "bench-b", "bench-c")


def _append(database: Database, station: str, number: int) -> None:
    with database.write() as session:
        append_event(
            session,
            Actor(operator=f"op-{station}", station=station),
            "test",
            iccid=f"8981{number:015d}",
            details={"n": number},
        )


def _events(database: Database, station: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.seq)
    if station is not None:
        query = query.where(AuditEvent.station == station)
    with database.read() as session:
        return list(session.execute(query).scalars().all())


@pytest.fixture
def anchor_always(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every append records the other chains' heads (instead of every 16th)."""
    monkeypatch.setattr(audit, "ANCHOR_EVERY", 1)
    yield


def _interleave(database: Database, rounds: int) -> None:
    number = 0
    for _ in range(rounds):
        for station in STATIONS:
            _append(database, station, number)
            number += 1


def test_each_station_has_its_own_chain(database: Database) -> None:
    _interleave(database, 4)
    for station in STATIONS:
        events = _events(database, station)
        assert [e.chain_seq for e in events] == [1, 2, 3, 4]
        # Every chain starts from the legacy chain's end (empty here: genesis).
        assert events[0].prev_hash == GENESIS_HASH
        for before, after in itertools.pairwise(events):
            assert after.prev_hash == before.hash
    with database.read() as session:
        heads = {h.station: h for h in chain_heads(session)}
    assert heads[""].hash == GENESIS_HASH
    for station in STATIONS:
        last = _events(database, station)[-1]
        assert (heads[station].seq, heads[station].hash, heads[station].event) == (
            4,
            last.hash,
            last.seq,
        )
    result = verify_audit(database)
    assert (result.ok, result.events, result.chains) == (True, 12, 3)
    with database.read() as session:
        assert result.head_hash == heads_digest(chain_heads(session))


def test_a_station_anchors_the_other_heads_on_its_first_append(database: Database) -> None:
    _interleave(database, 1)
    firsts = {e.station: json.loads(e.details) for e in _events(database)}
    # bench-a came first: no other chain existed. bench-c saw both others.
    assert ANCHORS_KEY not in firsts["bench-a"]
    assert set(firsts["bench-c"][ANCHORS_KEY]) == {"bench-a", "bench-b"}
    a_first = _events(database, "bench-a")[0]
    assert firsts["bench-c"][ANCHORS_KEY]["bench-a"] == [1, a_first.hash]


def _rewrite_chain(database: Database, station: str, edit_seq: int) -> None:
    """What an attacker with write access does: edit an event, re-hash the whole chain."""
    with database.write() as session:
        events = (
            session.execute(
                select(AuditEvent)
                .where(AuditEvent.station == station)
                .order_by(AuditEvent.chain_seq)
            )
            .scalars()
            .all()
        )
        prev = events[0].prev_hash
        for event in events:
            if event.seq == edit_seq:
                event.operator = "mallory"
            event.prev_hash = prev
            event.hash = hash_of(event)
            prev = event.hash
        session.execute(
            update(AuditChain).where(AuditChain.station == station).values(last_hash=prev)
        )


@pytest.mark.usefixtures("anchor_always")
def test_a_consistently_rewritten_chain_breaks_the_others_anchors(database: Database) -> None:
    _interleave(database, 3)
    target = _events(database, "bench-b")[1]
    _rewrite_chain(database, "bench-b", target.seq)
    result = verify_audit(database)
    assert (result.ok, result.problem_kind, result.problem_station) == (False, "edited", "bench-b")
    assert "rewritten" in (result.problem or "")
    # The first anchored event of the rewritten chain that no longer matches.
    assert result.problem_seq == target.seq


@pytest.mark.usefixtures("anchor_always")
def test_a_cut_tail_with_its_head_moved_back_is_found(database: Database) -> None:
    _interleave(database, 3)
    b_events = _events(database, "bench-b")
    # bench-c's last event recorded bench-b's #3; cut #3 and move the head back to #2.
    with database.write() as session:
        session.execute(delete(AuditEvent).where(AuditEvent.seq == b_events[2].seq))
        session.execute(
            update(AuditChain)
            .where(AuditChain.station == "bench-b")
            .values(last_seq=2, last_hash=b_events[1].hash, last_event=b_events[1].seq)
        )
    result = verify_audit(database)
    assert (result.ok, result.problem_kind, result.problem_station) == (False, "deleted", "bench-b")
    assert "#3 of station bench-b's chain" in (result.problem or "")


def test_events_without_a_chain_head_are_found(database: Database) -> None:
    _interleave(database, 1)
    with database.write() as session:
        session.execute(delete(AuditChain).where(AuditChain.station == "bench-c"))
    result = verify_audit(database)
    assert (result.ok, result.problem_kind, result.problem_station) == (
        False,
        "inserted",
        "bench-c",
    )


def test_a_deleted_head_row_of_an_empty_chain_is_harmless(database: Database) -> None:
    """A head row with no events and position 0 (a first append rolled back) verifies."""
    with database.write() as session:
        session.add(AuditChain(station="idle", last_seq=0, last_hash=GENESIS_HASH))
    _interleave(database, 1)
    assert verify_audit(database).ok


def _migrated_with_legacy(db_url: str) -> tuple[Database, list[tuple[int, str]]]:
    """A database at schema 0005 with a legacy chain, then upgraded to the newest schema."""
    from alembic import command

    database = Database(db_url)
    database.init()
    with database.engine.begin() as connection:
        command.downgrade(database._alembic_config(connection), "0005")
    with database.engine.begin() as connection:
        # Schema 0005 has no chain_seq: write the legacy events with plain SQL.
        prev = GENESIS_HASH
        written = []
        at = datetime(2026, 11, 30, 9, 0)
        for seq in range(1, 4):
            digest = event_hash(
                seq, at.replace(tzinfo=UTC), "old-st", "op", "test", None, None, "ok", "{}", prev
            )
            connection.exec_driver_sql(
                "INSERT INTO audit_events (seq, at, station, operator, action, iccid, "
                "service_code, result, details, prev_hash, hash) VALUES "
                f"({seq}, '{at.isoformat(sep=' ')}', 'old-st', 'op', 'test', NULL, NULL, "
                f"'ok', '{{}}', '{prev}', '{digest}')"
            )
            written.append((seq, digest))
            prev = digest
        connection.exec_driver_sql(f"UPDATE audit_head SET last_seq = 3, last_hash = '{prev}'")
    database.upgrade()
    return database, written


def test_upgrade_keeps_the_legacy_chain_and_starts_every_station_from_it(db_url: str) -> None:
    database, legacy = _migrated_with_legacy(db_url)
    try:
        _interleave(database, 2)
        for station in STATIONS:
            first = _events(database, station)[0]
            assert first.prev_hash == legacy[-1][1]
            assert first.seq > legacy[-1][0]
        result = verify_audit(database)
        assert (result.ok, result.events, result.chains) == (True, 3 + 6, 3), result.problem
    finally:
        database.dispose()


def test_the_legacy_chain_is_closed_after_the_upgrade(db_url: str) -> None:
    database, legacy = _migrated_with_legacy(db_url)
    try:
        _interleave(database, 1)
        last_seq = _events(database)[-1].seq
        at = datetime(2026, 12, 1, tzinfo=UTC)
        forged = event_hash(last_seq + 1, at, "x", "mallory", "test", None, None, "ok", "{}", "")
        with database.write() as session:
            session.add(
                AuditEvent(
                    seq=last_seq + 1,
                    chain_seq=None,
                    at=at,
                    station="x",
                    operator="mallory",
                    action="test",
                    iccid=None,
                    service_code=None,
                    result="ok",
                    details="{}",
                    prev_hash=legacy[-1][1],
                    hash=forged,
                )
            )
        result = verify_audit(database)
        assert (result.ok, result.problem_kind, result.problem_seq) == (
            False,
            "inserted",
            last_seq + 1,
        )
        assert "legacy chain" in (result.problem or "")
    finally:
        database.dispose()


def test_an_edited_legacy_event_is_still_found(db_url: str) -> None:
    database, _legacy = _migrated_with_legacy(db_url)
    try:
        _interleave(database, 1)
        with database.write() as session:
            session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(operator="m"))
        result = verify_audit(database)
        assert (result.ok, result.problem_kind, result.problem_seq) == (False, "edited", 2)
    finally:
        database.dispose()


def test_downgrade_is_refused_once_station_chains_hold_events(db_url: str) -> None:
    from alembic import command

    database = Database(db_url)
    database.init()
    try:
        _interleave(database, 1)
        with (
            pytest.raises(RuntimeError, match="per-station chains"),
            database.engine.begin() as connection,
        ):
            command.downgrade(database._alembic_config(connection), "0005")
        assert verify_audit(database).ok
    finally:
        database.dispose()


def _same_station(url: str, count: int, barrier: Any) -> None:
    database = Database(url)
    barrier.wait(timeout=60)
    for number in range(count):
        _append(database, "shared-st", number)
    database.dispose()


@pytest.mark.postgres
def test_processes_sharing_a_station_name_share_its_chain(pg_session_url: URL) -> None:
    """Two processes of one station race to create its head, then queue on it.

    PostgreSQL only: SQLite lets one writer in at a time, so there is no race.
    """
    reset_postgres(pg_session_url)
    url = pg_session_url.render_as_string(hide_password=False)
    database = Database(url)
    database.init()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(3)
    processes = [context.Process(target=_same_station, args=(url, 15, barrier)) for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    events = _events(database, "shared-st")
    assert [e.chain_seq for e in events] == list(range(1, 46))
    result = verify_audit(database)
    assert (result.ok, result.events, result.chains) == (True, 45, 1), result.problem
    database.dispose()


@pytest.mark.postgres
def test_events_about_one_card_commit_in_id_order_across_chains(
    pg_session_url: URL, tmp_path: Path
) -> None:
    """A second station's event about a card waits for the first one's commit.

    The digests are read with the row locked, and the event id is taken
    after, so the later event about a row always has the higher id: verify
    can take the highest id as the last word on the row, though the two
    stations' chains interleave.
    """
    reset_postgres(pg_session_url)
    url = pg_session_url.render_as_string(hide_password=False)
    first, second = Database(url), Database(url)
    first.init()
    keyring = Keyring(key_file=tmp_path / "keys" / "secrets.key")
    stock_file = tmp_path / "stock.csv"
    write_stock_csv(stock_file, list(example_rows(1, first_serial=1)))
    import_stock(first, keyring, Actor("op", "setup"), stock_file)
    iccid = next(example_rows(1, first_serial=1)).iccid
    appended, release = threading.Event(), threading.Event()
    done: dict[str, float] = {}

    def station_a() -> None:
        with first.write() as session:
            append_event(session, Actor("op-a", "bench-a"), "test", iccid=iccid)
            appended.set()
            release.wait(timeout=30)
        done["a"] = time.monotonic()

    def station_b() -> None:
        appended.wait(timeout=30)
        with second.write() as session:
            append_event(session, Actor("op-b", "bench-b"), "test", iccid=iccid)
        done["b"] = time.monotonic()

    threads = [threading.Thread(target=station_a), threading.Thread(target=station_b)]
    for thread in threads:
        thread.start()
    try:
        assert appended.wait(timeout=30)
        time.sleep(0.5)
        b_waited = "b" not in done  # waiting on the card's row
    finally:
        release.set()
        for thread in threads:
            thread.join(timeout=30)
    assert b_waited
    assert done["a"] <= done["b"]
    a_event, b_event = _events(first, "bench-a")[0], _events(first, "bench-b")[0]
    assert a_event.seq < b_event.seq
    assert verify_audit(first).ok
    first.dispose()
    second.dispose()
