"""Benchmark: stock import memory and time against a bare sqlite3 import (issue 10).

Writes a synthetic CSV stock file of ``--rows`` cards, then runs, each in a
fresh process of its own and interleaved ``--rounds`` times:

- **simtool**: ``import_stock`` into a new SQLite line database (every row
  checked, secrets sealed with AES-GCM, rows written in batches, audit event);
- **bare**: the floor, a script with no checks: read the lines, split them,
  seal the same plaintext with the same AES-GCM key and AAD, ``executemany``
  the same INSERT into the same schema (same pragmas, one transaction).

For each it prints the wall time, the process's peak resident memory
(``ru_maxrss`` of the child), the 1-minute load average after the run and the
child's CPU time, the ratio of each round, and the ratio simtool / bare of the medians. Goal (issue
10): at 10M rows, peak memory <= 150 MB and time <= 1.3x.

Usage:
  .venv/bin/python bench/bench_stock_scale.py [--rows 1000000] [--rounds 2] [--keep DIR]

Results also go to bench/results/stock_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provisioning.stockfile import example_rows, write_stock_csv  # noqa: E402

SIMTOOL = """
import sys, time
from pathlib import Path
from provisioning.audit import Actor
from provisioning.database import Database
from provisioning.secrets import Keyring
from provisioning.stock import import_stock
db, key, stock = sys.argv[1:4]
database = Database(db)
database.init()
keyring = Keyring(key_file=Path(key))
started = time.perf_counter()
result = import_stock(database, keyring, Actor("bench", "bench"), Path(stock))
print(time.perf_counter() - started, result.cards)
"""

BARE = """
import sqlite3, sys, time
from pathlib import Path
from provisioning.database import Database
from provisioning.secrets import Keyring
db, key, stock = sys.argv[1:4]
Database(db).init()  # the same schema, made before the clock starts
seal = Keyring(key_file=Path(key)).box(create=True).seal_plaintext
started = time.perf_counter()
connection = sqlite3.connect(db, isolation_level=None)
connection.execute("PRAGMA journal_mode=WAL")
connection.execute("PRAGMA foreign_keys=ON")
connection.execute("BEGIN IMMEDIATE")
connection.execute(
    "INSERT INTO stock_batches (name, file_sha256, source_file, file_layout, network_type, "
    "card_count, imported_at, operator, station) VALUES ('bare', 'x', 'x', 'csv', 'D', 0, "
    "'2026-01-01 00:00:00', 'b', 'b')"
)
insert = (
    "INSERT INTO cards (iccid, imsi, form_factor, network_type, batch_id, state, "
    "state_changed_at, secrets) VALUES (?, ?, ?, 'D', 1, 'in-stock', '2026-01-01 00:00:00', ?)"
)
rows = []
with open(stock, encoding="utf-8") as lines:
    next(lines)
    for text in lines:
        v = text.rstrip("\\n").split(",")
        plaintext = "|".join((v[2], v[3], v[4], v[5], v[8], v[6], v[7])).encode("ascii")
        rows.append((v[0], v[1], v[9], seal(v[0], plaintext)))
        if len(rows) >= 10000:
            connection.executemany(insert, rows)
            rows = []
connection.executemany(insert, rows)
connection.execute("COMMIT")
print(time.perf_counter() - started, 0)
"""


def run(script: str, workdir: Path, stock: Path, tag: str) -> tuple[float, float, float, float]:
    """One import in a child process: seconds, peak RSS in MB, load average after, CPU seconds.

    The CPU seconds (user and system, all threads, the whole process) are less
    at the mercy of the load than the wall time.
    """
    db = workdir / f"{tag}-{time.monotonic_ns()}.db"
    key = workdir / "bench.key"
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(db), str(key), str(stock)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    out = child.stdout.read()
    _pid, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{tag} import failed ({child.returncode})")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    seconds = float(out.split()[0])
    # The machine is shared: the 1-minute load average says how much of the
    # spread between rounds is other people's work.
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, usage.ru_maxrss / 1024, os.getloadavg()[0], cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="Work directory to keep.")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="simtool-bench-stock-"))
    workdir.mkdir(parents=True, exist_ok=True)
    stock = workdir / f"stock-{args.rows}.csv"
    if not stock.exists():
        started = time.perf_counter()
        write_stock_csv(stock, example_rows(args.rows))
        print(f"wrote {args.rows} rows in {time.perf_counter() - started:.1f} s", flush=True)
    results: dict[str, list[tuple[float, float, float, float]]] = {"simtool": [], "bare": []}
    for round_no in range(args.rounds):
        # Interleaved, so that load on the shared machine hits both alike.
        for tag, script in (("bare", BARE), ("simtool", SIMTOOL)):
            seconds, rss, load, cpu = run(script, workdir, stock, tag)
            results[tag].append((seconds, rss, load, cpu))
            print(
                f"round {round_no + 1} {tag:8s} {seconds:8.2f} s  peak {rss:7.1f} MB  "
                f"load {load:4.1f}  process CPU {cpu:7.2f} s",
                flush=True,
            )
        ratio_now = results["simtool"][-1][0] / results["bare"][-1][0]
        print(f"round {round_no + 1} ratio {ratio_now:.2f}x", flush=True)
    median = {tag: statistics.median(run[0] for run in runs) for tag, runs in results.items()}
    peak = {tag: max(run[1] for run in runs) for tag, runs in results.items()}
    ratio = median["simtool"] / median["bare"]
    print(
        f"rows {args.rows}: simtool {median['simtool']:.2f} s, bare {median['bare']:.2f} s, "
        f"ratio {ratio:.2f}x; simtool peak {peak['simtool']:.0f} MB, "
        f"bare peak {peak['bare']:.0f} MB"
    )
    # runs: per tool, one [seconds, peak MB, load average, process CPU s] per round.
    summary = {"seconds_median": median, "peak_rss_mb": peak, "runs": results}
    out = ROOT / "bench" / "results" / "stock_scale.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rows": args.rows, "ratio": ratio, **summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
