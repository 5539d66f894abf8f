"""The fast audit append and the pool without pre-ping, on SQLite and PostgreSQL.

On PostgreSQL an event is hashed by the server (one statement locks the
station's chain head, hashes, inserts and moves the head); these tests prove
that hash is the one :func:`provisioning.audit.event_hash` computes, whatever
the text holds, that many processes appending at once keep every station's
chain verifying, and that a pooled connection the server closed costs one
failed transaction (nothing written), not a station restart.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL

from provisioning.audit import Actor, append_event, event_hash, verify_audit
from provisioning.database import Database
from provisioning.errors import DatabaseError
from provisioning.lines import import_lines
from provisioning.models import AuditEvent, Binding
from provisioning.secrets import Keyring
from provisioning.stock import import_stock
from provisioning.stockfile import StockRow
from provisioning.workflows import provision
from tests.provisioning.conftest import reset_postgres
from tests.provisioning.helpers import Stock, chip

#: Awkward text for a result column (40 characters at most).
SHORT = 'refusé "x" \\ 日本'
#: Text that JSON escapes, or does not (ensure_ascii=False), for the details.
AWKWARD = 'quote " backslash \\ newline \n tab \t 日本語 émoji 🙂 </end>'


def test_stored_hash_is_the_event_hash(database: Database) -> None:
    actor = Actor(operator='田中 "op"', station="bench-ü\\1")
    at = datetime(2026, 12, 2, 12, 0, 0, 123456, tzinfo=UTC)
    returned = []
    for number, (iccid, code) in enumerate([(None, None), ("8981000000000000001", "hdd1")]):
        with database.write() as session:
            returned.append(
                append_event(
                    session,
                    actor,
                    "test",
                    result=SHORT,
                    iccid=iccid,
                    service_code=code,
                    details={"n": number, "text": AWKWARD, "control": "\x00\x1f"},
                    at=at,
                )
            )
    with database.read() as session:
        stored = session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
    assert [e.seq for e in stored] == [1, 2]
    for event, given in zip(stored, returned, strict=True):
        assert event.hash == event_hash(
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
        assert (given.seq, given.hash, given.prev_hash) == (event.seq, event.hash, event.prev_hash)
        assert (event.operator, event.station, event.result) == (
            actor.operator,
            actor.station,
            SHORT,
        )
    assert stored[1].prev_hash == stored[0].hash
    assert verify_audit(database).ok


def _libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.mark.postgres
def test_closed_connection_fails_one_transaction_then_reconnects(
    pg_session_url: URL, actor: Actor
) -> None:
    reset_postgres(pg_session_url)
    database = Database(pg_session_url)
    database.init()
    try:
        assert not database.engine.pool._pre_ping
        with database.read() as session:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with psycopg.connect(_libpq(pg_session_url), autocommit=True) as admin:
            # The timeout (ms) makes it wait until the backend is gone, so the next
            # transaction surely meets a closed connection.
            done = admin.execute("SELECT pg_terminate_backend(%s, 30000)", (pid,)).fetchone()
            assert done == (True,)
        with pytest.raises(DatabaseError), database.write() as session:
            append_event(session, actor, "lost")
        with database.write() as session:
            append_event(session, actor, "kept")
            assert session.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
        with database.read() as session:
            actions = session.execute(select(AuditEvent.action)).scalars().all()
        assert actions == ["kept"]
        assert verify_audit(database).ok
    finally:
        database.dispose()


def _station(url: str, key_file: str, station: str, jobs: list[tuple[str, StockRow]]) -> None:
    """One station provisioning its jobs one after the other (a child process)."""
    database = Database(url)
    actor = Actor(operator=f"op-{station}", station=station)
    try:
        for code, row in jobs:
            provision(
                database, actor, service_code=code, card=chip(row), keyring=Keyring(Path(key_file))
            )
    finally:
        database.dispose()


STATIONS, EACH = 4, 12


def test_several_processes_provisioning_keep_verifying_chains(
    database: Database,
    db_url: str,
    keyring: Keyring,
    actor: Actor,
    stock: Callable[..., Stock],
    tmp_path: Path,
) -> None:
    file = stock(STATIONS * EACH)
    import_stock(database, keyring, actor, file.path)
    codes = [f"hdd{8100000 + n}" for n in range(STATIONS * EACH)]
    lines = tmp_path / "lines.csv"
    lines.write_text(
        "SERVICE_CODE,MSISDN,CUSTOMER,TYPE,FUNCTION,FORM_FACTOR\n"
        + "".join(f"{code},,MA7,D,data,nano\n" for code in codes),
        encoding="utf-8",
    )
    import_lines(database, actor, lines)
    jobs = list(zip(codes, file.rows, strict=True))
    context = multiprocessing.get_context("spawn")
    processes: list[Any] = [
        context.Process(
            target=_station,
            args=(db_url, str(keyring.key_file), f"bench-{n}", jobs[n::STATIONS]),
        )
        for n in range(STATIONS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
        assert process.exitcode == 0
    with database.read() as session:
        bindings = session.execute(
            select(Binding.card_id, Binding.line_id).where(Binding.unbound_at.is_(None))
        ).all()
        seqs = session.execute(select(AuditEvent.seq).order_by(AuditEvent.seq)).scalars().all()
        provisions = session.scalar(select(func.count()).where(AuditEvent.action == "provision"))
    assert len(bindings) == STATIONS * EACH
    assert len({card for card, _ in bindings}) == len({line for _, line in bindings}) == len(jobs)
    assert provisions == STATIONS * EACH
    assert seqs == list(range(1, len(seqs) + 1))
    result = verify_audit(database)
    assert result.ok, result.problem
