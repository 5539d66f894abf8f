"""Benchmark: many stations provisioning on one PostgreSQL, against the bare-SQL floor.

Starts its own PostgreSQL database (as tests/provisioning/conftest.py does: the
packaged cluster via ``pg_ctlcluster`` when nothing listens on 5432, the
``simtool_test`` role, a throw-away database dropped at the end), imports the
cards and the lines, then runs rounds, interleaved:

- **simtool**: N station processes (default 8), each calling
  :func:`provisioning.workflows.provision` with a card given as data (the
  workflow tests' :func:`tests.provisioning.helpers.chip`), taking (line, card)
  jobs from one shared queue;
- **floor**: the same number of processes sending the same statements, in the
  same transactions, through bare psycopg on one connection each: the read of
  the line and the card (autocommit), the move-and-bind statement and the
  audit append to the station's own chain (anchored every 16th event, so the
  audit still verifies), all three the very text SQLAlchemy renders for
  simtool;
- **one station**: simtool with one process, for the scaling ratio.

Every station first makes ``WARM_UP`` provisions of its own, untimed: the
first ``COUNTED`` on a database object that counts round trips, the others on
the one that is timed (a station that has been running has its connection,
compiled statements and the driver's prepared statements). Every process then waits at a barrier; a
round is timed from the release to the last provision. Printed per round:
provisions/s, the ratio simtool/floor; then double bindings (cards or lines
with more than one current binding: must be 0), whether the audit verifies,
the round trips per provision a station sends (statements + BEGIN +
COMMIT/ROLLBACK + pool pre-pings, counted through SQLAlchemy's events on a
separate engine, so that the counting costs nothing in the timed loop) and the CPU
time per provision of a station process (the workflow, the driver; the card
being data).

Usage: .venv/bin/python bench/bench_stations.py [--stations 8] [--per-round 1600] [--rounds 3]
Set BENCH_PROFILE_DIR=DIR to write a CPU-time cProfile of station 0 of each round.
Writes bench/results/stations.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

ROLE = "simtool_test"
#: Provisions each station makes before the timing starts (not timed): the
#: first COUNTED on a Database that counts the round trips, the rest to warm up.
WARM_UP = 10
COUNTED = 4
HOST = "127.0.0.1"
PORT = 5432


# -- the database ---------------------------------------------------------


def _port_open() -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((HOST, PORT)) == 0


def _start_postgres() -> None:
    """Start the packaged cluster when nothing listens on 5432 (needs root)."""
    if _port_open():
        return
    if os.geteuid() != 0 or shutil.which("pg_ctlcluster") is None:
        raise SystemExit("PostgreSQL is not running and cannot be started (root, pg_ctlcluster)")
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], check=False, capture_output=True, text=True
    )
    version, name = listing.stdout.split()[:2]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "start"], check=False
    )
    deadline = time.monotonic() + 30
    while not _port_open():
        if time.monotonic() > deadline:
            raise SystemExit("PostgreSQL did not start")
        time.sleep(0.2)


def _ensure_role(password: str) -> None:
    sql = (
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') "
        f"THEN CREATE ROLE {ROLE} LOGIN CREATEDB; END IF; END $$; "
        f"ALTER ROLE {ROLE} PASSWORD '{password}';"
    )
    command = ["su", "postgres", "-c", f"psql -v ON_ERROR_STOP=1 -q -c {shlex.quote(sql)}"]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"cannot create the role {ROLE}: {done.stderr}")


def _libpq(database: str, password: str) -> str:
    return f"postgresql://{ROLE}:{password}@{HOST}:{PORT}/{database}"


# -- the stations -----------------------------------------------------------


Job = tuple[str, Any]  # (service code, StockRow)


def _simtool_station(
    url: str, key_file: str, station: str, warm: list[Job], jobs: Any, barrier: Any, results: Any
) -> None:
    """One station: provision() until the job queue is empty; reports its figures."""
    from sqlalchemy import event

    from provisioning.audit import Actor
    from provisioning.database import Database
    from provisioning.secrets import Keyring
    from provisioning.workflows import provision
    from tests.provisioning.helpers import chip

    database = Database(url)
    keyring = Keyring(Path(key_file))
    actor = Actor(operator=f"op-{station}", station=station)
    trips = [0]

    def count(*_args: Any) -> None:
        trips[0] += 1

    def count_end(connection: Any) -> None:
        # COMMIT or ROLLBACK, sent by the driver; a lookup has no transaction to end.
        if not connection.get_execution_options().get("simtool_lookup", False):
            trips[0] += 1

    # The round trips are counted on a Database of their own, over a few
    # provisions after its first (which also creates the station's chain
    # head): any engine listener would make SQLAlchemy dispatch events around
    # every statement, a cost the timed loop must not carry (the floor has none).
    # BEGIN is a statement simtool sends (the driver is in autocommit).
    counting = Database(url)
    counted, warm = warm[:COUNTED], warm[COUNTED:]
    provision(
        counting, actor, service_code=counted[0][0], card=chip(counted[0][1]), keyring=keyring
    )
    engine = counting.engine
    listeners: list[tuple[Any, str, Any]] = [
        (engine, "before_cursor_execute", count),
        (engine, "commit", count_end),
        (engine, "rollback", count_end),
    ]
    if getattr(engine.pool, "_pre_ping", False):
        # A pre-ping is one round trip at every checkout.
        listeners.append((engine.pool, "checkout", count))
    for target, name, listener in listeners:
        event.listen(target, name, listener)
    for code, row in counted[1:]:
        provision(counting, actor, service_code=code, card=chip(row), keyring=keyring)
    counting.dispose()
    trips_each = trips[0] / max(len(counted) - 1, 1)
    # Warm up outside the timing, as a station that has been running is: a
    # connection, the compiled statements, the driver's prepared statements.
    for code, row in warm:
        provision(database, actor, service_code=code, card=chip(row), keyring=keyring)
    done = 0
    errors: list[str] = []
    profile_dir = os.environ.get("BENCH_PROFILE_DIR")
    profiler = None
    if profile_dir and station.endswith("-0"):
        import cProfile

        profiler = cProfile.Profile(time.process_time)
    barrier.wait(timeout=300)
    started, cpu = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    while True:
        job: Job | None = jobs.get()
        if job is None:
            break
        code, row = job
        try:
            provision(database, actor, service_code=code, card=chip(row), keyring=keyring)
            done += 1
        except Exception as error:  # counted and reported: a bench must not stop
            errors.append(f"{type(error).__name__}: {error}")
    ended, cpu = time.perf_counter(), time.process_time() - cpu
    if profiler is not None and profile_dir:
        profiler.disable()
        profiler.dump_stats(str(Path(profile_dir) / f"{station}.prof"))
    database.dispose()
    results.put((station, started, ended, done, cpu, trips_each * done, errors[:3], len(errors)))


def _floor_station(
    url: str, key_file: str, station: str, warm: list[Job], jobs: Any, barrier: Any, results: Any
) -> None:
    """The same statements and transactions as provision(), through bare psycopg."""
    from sqlalchemy.dialects import postgresql

    from provisioning.audit import (
        _APPEND_ON_SERVER,
        ANCHOR_EVERY,
        _digest,
        _timestamp,
        canonical_details,
    )
    from provisioning.workflows import _BIND_NEW_CARD_PG, _LINE_AND_CARD_TO_PROVISION

    del key_file
    # simtool's statement that reads the line and the card, and the one that
    # moves them and binds them, as SQLAlchemy renders them for PostgreSQL:
    # the floor sends the same texts (with their constant parameters).
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    lookup = _LINE_AND_CARD_TO_PROVISION.compile(dialect=dialect)
    bind = _BIND_NEW_CARD_PG.compile(dialect=dialect)
    lookup_sql, bind_sql = str(lookup), str(bind)
    # ... and the audit append to the station's chain, hashed by the server.
    append_sql = str(_APPEND_ON_SERVER.compile(dialect=dialect))
    # Autocommit: the two lookups run without a transaction, as simtool's do.
    connection = psycopg.connect(url, autocommit=True)
    with connection.transaction():
        # The station's chain head, as simtool's first append makes it.
        connection.execute(
            "INSERT INTO audit_chains (station, last_seq, last_hash) "
            "SELECT %s, 0, last_hash FROM audit_head ON CONFLICT (station) DO NOTHING",
            (station,),
        )
    anchor_due = 0
    operator = f"op-{station}"

    def one(code: str, row: Any) -> int:
        """One provision; returns the round trips it took."""
        nonlocal anchor_due
        trips = 0
        found = connection.execute(
            lookup_sql, {**lookup.params, "code": code, "iccid": row.iccid}
        ).fetchone()
        assert found is not None and found[8] is not None
        line, card = found[:8], found[8:]
        now = datetime.now(UTC)
        naive = now.replace(tzinfo=None)
        with connection.transaction():
            moved = connection.execute(
                bind_sql,
                {
                    **bind.params,
                    "card_id": card[0],
                    "line_id": line[0],
                    "card_before": "in-stock",
                    "card_after": "active",
                    "line_before": "pending",
                    "line_after": "active",
                    "now": naive,
                },
            ).fetchone()
            assert moved is not None
            card_row, line_row = moved[:8], moved[8:]
            if card_row[0] is None or line_row[0] is None:
                raise RuntimeError("the card or the line moved under us")
            rows = {
                f"card:{row.iccid}": _digest((*card_row, code)),
                f"line:{code}": _digest((*line_row, row.iccid)),
            }
            with_anchors: dict[str, Any] = {
                "form_factor": row.form_factor,
                "pin1": "already-default",
                "checks": [],
                "device_imei": None,
                "device_verified": None,
                "rows": rows,
            }
            if anchor_due == 0:
                heads = connection.execute(
                    "SELECT station, last_seq, last_hash FROM audit_chains WHERE station <> %s",
                    (station,),
                ).fetchall()
                if heads:
                    with_anchors["anchors"] = {h[0]: [h[1], h[2]] for h in heads}
                trips += 1
            anchor_due = (anchor_due + 1) % ANCHOR_EVERY
            details = canonical_details(with_anchors)
            fields = json.dumps(
                [_timestamp(now), station, operator, "provision", row.iccid, code, "passed",
                 details],
                separators=(",", ":"),
                ensure_ascii=False,
            )  # fmt: skip
            connection.execute(
                append_sql,
                {
                    "station": station,
                    "middle": "," + fields[1:-1] + ',"',
                    "at": naive,
                    "operator": operator,
                    "action": "provision",
                    "iccid": row.iccid,
                    "service_code": code,
                    "result": "passed",
                    "details": details,
                },
            ).fetchone()
        # The lookup; BEGIN, the moves and the binding, the append, COMMIT.
        return trips + 5

    for code, row in warm:
        one(code, row)
    trips = 0
    done = 0
    errors: list[str] = []
    barrier.wait(timeout=300)
    started, cpu = time.perf_counter(), time.process_time()
    while True:
        job: Job | None = jobs.get()
        if job is None:
            break
        try:
            trips += one(*job)
            done += 1
        except Exception as error:  # counted and reported
            errors.append(f"{type(error).__name__}: {error}")
    ended, cpu = time.perf_counter(), time.process_time() - cpu
    connection.close()
    results.put((station, started, ended, done, cpu, trips, errors[:3], len(errors)))


def _round(
    kind: str, stations: int, url: str, key_file: str, jobs_list: list[Job], warm: list[Job]
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    jobs = context.Queue()
    for job in jobs_list:
        jobs.put(job)
    for _ in range(stations):
        jobs.put(None)
    barrier = context.Barrier(stations)
    results = context.Queue()
    target = _simtool_station if kind != "floor" else _floor_station
    processes = [
        context.Process(
            target=target,
            args=(url, key_file, f"st-{kind}-{n}", warm[n::stations], jobs, barrier, results),
        )
        for n in range(stations)
    ]
    for process in processes:
        process.start()
    reports = [results.get(timeout=900) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    start = min(r[1] for r in reports)
    end = max(r[2] for r in reports)
    done = sum(r[3] for r in reports)
    failed = sum(r[7] for r in reports)
    return {
        "kind": kind,
        "stations": stations,
        "provisions": done,
        "failed": failed,
        "errors": [e for r in reports for e in r[6]][:3],
        "seconds": end - start,
        "per_s": done / (end - start),
        "cpu_ms_per_provision": 1000 * sum(r[4] for r in reports) / max(done, 1),
        "round_trips_per_provision": sum(r[5] for r in reports) / max(done, 1),
    }


def _settle(libpq: str) -> None:
    """VACUUM ANALYZE the tables a round writes, before it (untimed).

    The setup's bulk import and each round's updates would otherwise have
    autovacuum start at a moment of its choosing, inside whichever round runs
    then (the first round's simtool, mostly), and the planner work from the
    statistics of an empty table.
    """
    with psycopg.connect(libpq, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE cards, lines, bindings, audit_events, audit_chains")


def _setup(url: str, key_file: Path, work: Path, count: int) -> list[Job]:
    from provisioning.audit import Actor
    from provisioning.database import Database
    from provisioning.lifecycle import FormFactor
    from provisioning.lines import import_lines
    from provisioning.secrets import Keyring
    from provisioning.stock import import_stock
    from provisioning.stockfile import example_rows, write_stock_csv

    database = Database(url)
    database.init()
    actor = Actor(operator="bench", station="bench-setup")
    rows = list(example_rows(count, first_serial=1, form_factor=FormFactor.NANO))
    write_stock_csv(work / "stock.csv", rows)
    import_stock(database, Keyring(key_file), actor, work / "stock.csv")
    codes = [f"hdd{1000000 + n}" for n in range(count)]
    with (work / "lines.csv").open("w", encoding="utf-8") as out:
        out.write("SERVICE_CODE,MSISDN,CUSTOMER,TYPE,FUNCTION,FORM_FACTOR\n")
        out.writelines(f"{code},,MA1,D,data,nano\n" for code in codes)
    import_lines(database, actor, work / "lines.csv")
    database.dispose()
    return list(zip(codes, rows, strict=True))


def _check(url: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from provisioning.audit import verify_audit
    from provisioning.database import Database
    from provisioning.models import Binding

    database = Database(url)
    with database.read() as session:
        doubles = 0
        for column in (Binding.card_id, Binding.line_id):
            many = (
                select(column)
                .where(Binding.unbound_at.is_(None))
                .group_by(column)
                .having(func.count() > 1)
            )
            doubles += len(session.execute(many).all())
    verified = verify_audit(database)
    database.dispose()
    return {"double_bindings": doubles, "audit_ok": verified.ok, "audit_problem": verified.problem}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stations", type=int, default=8)
    parser.add_argument("--per-round", type=int, default=1600)
    parser.add_argument("--single", type=int, default=300, help="provisions of the 1-station round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    _start_postgres()
    password = os.environ.get("SIMTOOL_TEST_PG_PASSWORD", "simtool_test")
    _ensure_role(password)
    name = f"simtool_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(_libpq("postgres", password), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    libpq = _libpq(name, password)
    url = libpq.replace("postgresql://", "postgresql+psycopg://", 1)
    rounds: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-stations-") as tmp:
            work = Path(tmp)
            key_file = work / "keys" / "secrets.key"
            warm_each = args.stations * WARM_UP
            total = args.rounds * (2 * (args.per_round + warm_each) + args.single + WARM_UP)
            print(f"setup: {total} cards and lines ...", flush=True)
            jobs = _setup(url, key_file, work, total)
            for number in range(args.rounds):
                plan = [
                    ("simtool", args.stations, args.per_round),
                    ("floor", args.stations, args.per_round),
                    ("single", 1, args.single),
                ]
                if number % 2:  # interleave: the floor first every other round
                    plan[0], plan[1] = plan[1], plan[0]
                for kind, stations, size in plan:
                    _settle(libpq)
                    batch, jobs = jobs[:size], jobs[size:]
                    warm, jobs = jobs[: stations * WARM_UP], jobs[stations * WARM_UP :]
                    result = _round(
                        kind,
                        stations,
                        libpq if kind == "floor" else url,
                        str(key_file),
                        batch,
                        warm,
                    )
                    result["round"] = number + 1
                    rounds.append(result)
                    print(
                        f"round {number + 1} {kind:7} x{stations}: {result['per_s']:7.1f} "
                        f"provisions/s ({result['provisions']} in {result['seconds']:.2f} s, "
                        f"{result['failed']} failed) cpu {result['cpu_ms_per_provision']:.2f} "
                        f"ms/provision, {result['round_trips_per_provision']:.1f} round trips"
                        + (f" errors: {result['errors']}" if result["errors"] else ""),
                        flush=True,
                    )
            checks = _check(url)
    finally:
        with psycopg.connect(_libpq("postgres", password), autocommit=True) as admin:
            for _ in range(40):
                try:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
                    break
                except psycopg.errors.ObjectInUse:
                    time.sleep(0.5)

    def of(kind: str) -> list[dict[str, Any]]:
        return [r for r in rounds if r["kind"] == kind]

    ratios = [s["per_s"] / f["per_s"] for s, f in zip(of("simtool"), of("floor"), strict=True)]
    scaling = [s["per_s"] / o["per_s"] for s, o in zip(of("simtool"), of("single"), strict=True)]
    summary = {
        "stations": args.stations,
        "simtool_per_s": [round(r["per_s"], 1) for r in of("simtool")],
        "floor_per_s": [round(r["per_s"], 1) for r in of("floor")],
        "single_per_s": [round(r["per_s"], 1) for r in of("single")],
        "ratio_to_floor": [round(r, 2) for r in ratios],
        "scaling_vs_one_station": [round(r, 2) for r in scaling],
        "cpu_ms_per_provision_single": [round(r["cpu_ms_per_provision"], 2) for r in of("single")],
        "round_trips_per_provision": statistics.median(
            r["round_trips_per_provision"] for r in of("simtool")
        ),
        **checks,
        "rounds": rounds,
    }
    out = ROOT / "bench" / "results" / "stations.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print()
    for key, value in summary.items():
        if key != "rounds":
            print(f"{key}: {value}")
    ok = checks["double_bindings"] == 0 and checks["audit_ok"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
