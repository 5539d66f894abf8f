"""Benchmark: the bench station (``simtool bench run``) on lab cards at real cards' speed.

The lab is started with ``--latency`` (default 10 ms per APDU), so the figures
are what a bench does with real SIMs. Measured:

- cards per minute with 1 reader and with N readers (default 8) in one bench
  process, and their ratio (the issue asks for at least 7x with 8 readers);
  each round puts a new card in every reader used, then runs the bench engine
  in this process until every card has an outcome; a round is timed from the
  first card event to the last outcome (the operator's insertion time is not
  the bench's);
- the bench's own CPU per card: this process's CPU time over the rounds
  divided by the cards (the lab's cards run in the lab's process, so this is
  the bench, pyscard and the database client; a card's APDU wait is not CPU);
- start to first PASS on a card already inserted: ``simtool bench run`` as a
  new process, from its start to the first ``pass`` event line.

Usage: .venv/bin/python bench/bench_station.py [--latency 10] [--readers 8] [--rounds 4]
       [--db URL]   (default: a SQLite file; postgresql://... for a shared database)
Writes bench/results/station.json and prints a summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apdu.virtual import CardProfile, lab_profile  # noqa: E402
from provisioning.audit import Actor  # noqa: E402
from provisioning.database import Database  # noqa: E402
from provisioning.lines import LineSpec, add_line  # noqa: E402
from provisioning.secrets import Keyring  # noqa: E402
from provisioning.stock import import_stock  # noqa: E402

ACTOR = Actor(operator="bench", station="bench-station")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=10.0, help="ms per APDU in the lab")
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--db", default=None, help="database URL (default: a SQLite file)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="simtool-bench-station-", dir="/tmp"))
    labdir = work / "lab"
    os.environ["SIMTOOL_LAB_DIR"] = str(labdir)
    from apdu.lab import Lab

    lab = Lab.up(cards=0, slots=max(2, args.readers), labdir=labdir, fresh=True)
    lab.set_latency(args.latency)
    # Before this process's first PC/SC call: libpcsclite reads it once.
    os.environ["PCSCLITE_CSOCK_NAME"] = str(lab.pcsc_socket)
    try:
        results = run(lab, work, args)
    finally:
        lab.down()
        shutil.rmtree(work, ignore_errors=True)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "station.json").write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:46s} {value}")


class Site:
    """The bench's database with stock and one pending order per card."""

    def __init__(self, work: Path, url: str | None) -> None:
        self.work = work
        self.url = url or str(work / "lines.db")
        if url and url.startswith("postgres"):
            _empty_postgres(url)
        self.database = Database(self.url)
        self.database.init()
        self.keyring = Keyring(key_file=work / "secrets.key")
        self.cards = 0

    def new_cards(self, count: int) -> list[CardProfile]:
        from provisioning.labstock import write_stock_file

        profiles = [
            dataclasses.replace(lab_profile(20000 + self.cards + n), form_factor="nano")
            for n in range(count)
        ]
        path = self.work / f"stock-{self.cards}.csv"
        write_stock_file(path, profiles)
        import_stock(self.database, self.keyring, ACTOR, path)
        for n in range(count):
            add_line(
                self.database,
                ACTOR,
                LineSpec.parse(
                    service_code=f"hdd{8000000 + self.cards + n}",
                    msisdn=None,
                    customer="MA800",
                    network_type="D",
                    function_class="data",
                    form_factor="nano",
                ),
            )
        self.cards += count
        return profiles


def _empty_postgres(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")


def rounds(lab: Any, site: Site, readers: int, count: int) -> dict[str, Any]:
    """``count`` rounds of a new card in each of ``readers`` readers; throughput and CPU.

    A round is timed from the moment the first card's pass began (its outcome
    time minus its ``seconds``) to the last outcome; the CPU is this process's
    over the same window (sampled by the event sink, in the bench's threads).
    """
    from simtool.bench.station import BenchConfig, BenchEvent, BenchStation

    slots = list(range(readers))
    names = [lab.reader_name(slot) for slot in slots]
    busy = 0.0
    cpu = 0.0
    cards = 0
    seconds: list[float] = []
    results: dict[str, int] = {}
    for _round in range(count):
        for slot, profile in zip(slots, site.new_cards(readers), strict=True):
            if lab.slot(slot).present:
                lab.remove(slot)
            lab.insert(slot, profile)
        starts: list[tuple[float, float]] = []
        ends: list[tuple[float, float]] = []

        def sink(
            event: BenchEvent,
            starts: list[tuple[float, float]] = starts,
            ends: list[tuple[float, float]] = ends,
        ) -> None:
            now, cpu_now = time.perf_counter(), time.process_time()
            if event.event == "inserted" and not starts:
                starts.append((now, cpu_now))
            if event.event == "card":
                results[event.result or "?"] = results.get(event.result or "?", 0) + 1
                seconds.append(event.seconds or 0.0)
                starts.append((now - (event.seconds or 0.0), cpu_now))
                ends.append((now, cpu_now))

        config = BenchConfig(
            database=site.database,
            actor=ACTOR,
            assign="fifo",
            keyring=site.keyring,
            exit_after=readers,
        )
        station = BenchStation(config, names, [sink])
        station.run()
        busy += max(e[0] for e in ends) - min(s[0] for s in starts)
        # CPU from the first card event to the last outcome (the pass of the
        # first card started a few ms before its first event: not counted).
        cpu += max(e[1] for e in ends) - starts[0][1]
        cards += readers
    return {
        "cards": cards,
        "results": results,
        "cards_per_minute": round(60.0 * cards / busy, 1),
        "cpu_ms_per_card": round(1000.0 * cpu / cards, 1),
        "seconds_per_card_median": round(statistics.median(seconds), 3),
    }


def steady(lab: Any, site: Site, readers: int, per_reader: int) -> dict[str, Any]:
    """One bench running while cards come and go as fast as a hand could swap them.

    A driver per reader inserts a new card, waits for its outcome, pulls it,
    waits until the bench saw it go, and inserts the next (the lab's insert and
    remove return at once; pcscd reports each within its ~0.4 s poll, as with a
    real reader). Timed from the first insertion to the last outcome.
    """
    import threading

    from simtool.bench.station import BenchConfig, BenchEvent, BenchStation

    slots = list(range(readers))
    names = [lab.reader_name(slot) for slot in slots]
    for slot in slots:
        if lab.slot(slot).present:
            lab.remove(slot)
    cards = {slot: site.new_cards(per_reader) for slot in slots}
    outcome = {name: threading.Semaphore(0) for name in names}
    gone = {name: threading.Semaphore(0) for name in names}
    results: dict[str, int] = {}
    seconds: list[float] = []
    last: list[tuple[float, float]] = []

    def sink(event: BenchEvent) -> None:
        if event.reader in outcome and event.event == "card":
            results[event.result or "?"] = results.get(event.result or "?", 0) + 1
            seconds.append(event.seconds or 0.0)
            last.append((time.perf_counter(), time.process_time()))
            outcome[event.reader].release()
        elif event.reader in gone and event.event == "removed":
            gone[event.reader].release()

    config = BenchConfig(database=site.database, actor=ACTOR, assign="fifo", keyring=site.keyring)
    station = BenchStation(config, names, [sink])
    station.start()
    while station.idle_for() < 0.5:
        time.sleep(0.05)

    harness_cpu: list[float] = []

    def drive(slot: int) -> None:
        # The driver's own CPU (staging profiles, the lab's socket) is not the
        # bench's: measured per thread and taken out.
        name = names[slot]
        for profile in cards[slot]:
            before = time.thread_time()
            lab.insert(slot, profile, wait=False)
            harness_cpu.append(time.thread_time() - before)
            outcome[name].acquire(timeout=30)
            before = time.thread_time()
            lab.remove(slot, wait=False)
            harness_cpu.append(time.thread_time() - before)
            gone[name].acquire(timeout=30)

    drivers = [threading.Thread(target=drive, args=(slot,)) for slot in slots]
    started, cpu_started = time.perf_counter(), time.process_time()
    for driver in drivers:
        driver.start()
    for driver in drivers:
        driver.join()
    station.stop()
    ended, cpu_ended = max(last)
    total = readers * per_reader
    return {
        "cards": total,
        "results": results,
        "cards_per_minute": round(60.0 * total / (ended - started), 1),
        "cpu_ms_per_card": round(1000.0 * (cpu_ended - cpu_started - sum(harness_cpu)) / total, 1),
        "seconds_per_card_median": round(statistics.median(seconds), 3),
    }


def first_pass(lab: Any, site: Site) -> float:
    """Seconds from starting ``simtool bench run`` to the first pass event (card in)."""
    [profile] = site.new_cards(1)
    if lab.slot(0).present:
        lab.remove(0)
    lab.insert(0, profile)
    env = {
        **os.environ,
        "SIMTOOL_DB": site.url,
        "SIMTOOL_KEY_FILE": str(site.work / "secrets.key"),
        "SIMTOOL_CONFIG": str(site.work / "none.toml"),
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "simtool", "bench", "run", "--headless"),
            *("--reader", "lab:0", "--assign", "fifo", "--events", "-", "--exit-after", "1"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    elapsed = float("nan")
    for line in process.stdout:
        event = json.loads(line)
        if event["event"] == "card":
            if event["result"] == "pass":
                elapsed = time.perf_counter() - started
            break
    process.wait(30)
    return elapsed


def run(lab: Any, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    site = Site(work, args.db)
    n = args.readers
    one = rounds(lab, site, 1, args.rounds * 2)
    many = rounds(lab, site, n, args.rounds)
    flow_one = steady(lab, site, 1, args.rounds * 2)
    flow_many = steady(lab, site, n, args.rounds * 2)
    starts = [first_pass(lab, site) for _ in range(3)]
    return {
        "latency_ms_per_apdu": args.latency,
        "database": site.database.dialect,
        "steady_1_reader_cards_per_minute": flow_one["cards_per_minute"],
        f"steady_{n}_readers_cards_per_minute": flow_many["cards_per_minute"],
        "steady_ratio": round(flow_many["cards_per_minute"] / flow_one["cards_per_minute"], 2),
        "steady_seconds_per_pass_median": [
            flow_one["seconds_per_card_median"],
            flow_many["seconds_per_card_median"],
        ],
        "steady_cpu_ms_per_card": [flow_one["cpu_ms_per_card"], flow_many["cpu_ms_per_card"]],
        "burst_1_reader_cards_per_minute": one["cards_per_minute"],
        f"burst_{n}_readers_cards_per_minute": many["cards_per_minute"],
        "burst_ratio": round(many["cards_per_minute"] / one["cards_per_minute"], 2),
        "burst_seconds_per_pass_median": [
            one["seconds_per_card_median"],
            many["seconds_per_card_median"],
        ],
        "burst_cpu_ms_per_card": [one["cpu_ms_per_card"], many["cpu_ms_per_card"]],
        "start_to_first_pass_s": [round(s, 3) for s in starts],
        "results": {
            "burst": [one["results"], many["results"]],
            "steady": [flow_one["results"], flow_many["results"]],
        },
    }


if __name__ == "__main__":
    main()
