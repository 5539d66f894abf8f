"""Benchmark: ``simtool show card --json`` as a whole process against a bare lookup.

Makes a SQLite line database with ``--cards`` cards in stock (one provisioned,
with history), then runs, interleaved ``--runs`` times each:

- ``python -m simtool show card ICCID --db FILE --json``;
- the floor: ``python -c`` that opens the file with ``sqlite3`` and selects
  the card's row.

Prints the median wall time of each and the ratio (goal, issue 10: <= 3x).

Usage:
  .venv/bin/python bench/bench_show_card.py [--runs 15] [--cards 10000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provisioning.audit import Actor  # noqa: E402
from provisioning.database import Database  # noqa: E402
from provisioning.secrets import Keyring  # noqa: E402
from provisioning.stock import import_stock  # noqa: E402
from provisioning.stockfile import example_rows, write_stock_csv  # noqa: E402

BARE = (
    "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
    "print(c.execute('SELECT * FROM cards WHERE iccid = ?', (sys.argv[2],)).fetchone()[:3])"
)


def timed(command: list[str]) -> float:
    """Wall seconds of one process run (it must succeed)."""
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--cards", type=int, default=10_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="simtool-bench-show-"))
    db = workdir / "lines.db"
    database = Database(str(db))
    database.init()
    stock = workdir / "stock.csv"
    rows = list(example_rows(args.cards))
    write_stock_csv(stock, rows)
    import_stock(database, Keyring(key_file=workdir / "k.key"), Actor("b", "b"), stock)
    database.dispose()
    iccid = rows[args.cards // 2].iccid
    simtool = [sys.executable, "-m", "simtool", "show", "card", iccid, "--db", str(db), "--json"]
    bare = [sys.executable, "-c", BARE, str(db), iccid]
    times: dict[str, list[float]] = {"simtool": [], "bare": []}
    timed(simtool)  # warm the file cache and the bytecode
    for _ in range(args.runs):
        times["bare"].append(timed(bare))
        times["simtool"].append(timed(simtool))
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["simtool"] / medians["bare"]
    print(
        f"show card --json: {medians['simtool'] * 1000:.0f} ms, bare lookup "
        f"{medians['bare'] * 1000:.0f} ms, ratio {ratio:.2f}x (median of {args.runs})"
    )
    out = ROOT / "bench" / "results" / "show_card.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"medians_s": medians, "ratio": ratio, "runs": times}, indent=2))


if __name__ == "__main__":
    main()
