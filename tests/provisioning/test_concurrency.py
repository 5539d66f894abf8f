"""Many stations at the same moment: exactly one wins a card or a line.

Real processes (one per station) race on a real database. Each does its
checks, then waits at a barrier inside the PIN step, so that all of them hit
the write transaction together. Runs on PostgreSQL (the shared database of many
stations) and on SQLite.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable

from sqlalchemy import func, select

from provisioning.audit import Actor, verify_audit
from provisioning.database import Database
from provisioning.lines import LineSpec, add_line
from provisioning.models import AuditEvent, Binding
from provisioning.records import show_card, show_line
from provisioning.secrets import Keyring
from provisioning.stock import import_stock
from tests.provisioning.helpers import Stock
from tests.provisioning.stations import race_provision

STATIONS = 4


def add_lines(database: Database, actor: Actor, count: int) -> list[str]:
    codes = [f"hdd{9100000 + n}" for n in range(count)]
    for code in codes:
        add_line(
            database,
            actor,
            LineSpec.parse(
                service_code=code,
                msisdn=None,
                customer="MA7",
                network_type="D",
                function_class="data",
            ),
        )
    return codes


def race(
    db_url: str, keyring: Keyring, jobs: list[tuple[str, object]]
) -> list[tuple[str, str, str, str]]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(jobs))
    results = context.Queue()
    processes = [
        context.Process(
            target=race_provision,
            args=(db_url, str(keyring.key_file), f"bench-{n}", code, row, barrier, results),
        )
        for n, (code, row) in enumerate(jobs)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return outcomes


def provision_events(database: Database) -> int:
    with database.read() as session:
        return (
            session.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "provision")
            )
            or 0
        )


def test_same_card_on_many_stations(
    database: Database, db_url: str, keyring: Keyring, actor: Actor, stock: Callable[..., Stock]
) -> None:
    file = stock(3)
    import_stock(database, keyring, actor, file.path)
    codes = add_lines(database, actor, STATIONS)
    outcomes = race(db_url, keyring, [(code, file.row(0)) for code in codes])
    won = [o for o in outcomes if o[1] == "won"]
    lost = [o for o in outcomes if o[1] == "lost"]
    assert len(won) == 1 and len(lost) == STATIONS - 1, outcomes
    assert {o[2] for o in lost} == {"ConcurrentChangeError"}, lost
    assert all("another station" in o[3] for o in lost)
    winner_line = codes[int(won[0][0].split("-")[1])]
    assert show_card(database, file.row(0).iccid).service_code == winner_line
    states = sorted(show_line(database, code).state.value for code in codes)
    assert states == ["active"] + ["pending"] * (STATIONS - 1)
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(Binding)) == 1
    assert provision_events(database) == 1
    assert verify_audit(database).ok


def test_same_line_on_many_stations(
    database: Database, db_url: str, keyring: Keyring, actor: Actor, stock: Callable[..., Stock]
) -> None:
    file = stock(STATIONS)
    import_stock(database, keyring, actor, file.path)
    [code] = add_lines(database, actor, 1)
    outcomes = race(db_url, keyring, [(code, row) for row in file.rows])
    assert sorted(o[1] for o in outcomes) == ["lost"] * (STATIONS - 1) + ["won"], outcomes
    assert {o[2] for o in outcomes if o[1] == "lost"} == {"ConcurrentChangeError"}
    line = show_line(database, code)
    assert len(line.cards) == 1 and line.state.value == "active"
    states = sorted(show_card(database, row.iccid).state.value for row in file.rows)
    assert states == ["active"] + ["in-stock"] * (STATIONS - 1)
    assert provision_events(database) == 1
    assert verify_audit(database).ok


def test_many_stations_append_one_audit_chain(
    database: Database, db_url: str, keyring: Keyring, actor: Actor, stock: Callable[..., Stock]
) -> None:
    """Different cards on different lines at once: all win, one unbroken chain."""
    file = stock(STATIONS)
    import_stock(database, keyring, actor, file.path)
    codes = add_lines(database, actor, STATIONS)
    outcomes = race(db_url, keyring, list(zip(codes, file.rows, strict=True)))
    assert [o[1] for o in outcomes] == ["won"] * STATIONS, outcomes
    assert provision_events(database) == STATIONS
    assert verify_audit(database).ok
