"""Benchmark: importing a vendor stock file into the line database.

Generates a synthetic stock file (``example_rows``: valid ICCIDs with Luhn
digits, IMSIs, PINs, PUKs, ADM1, Ki, OPc), then times ``import_stock`` into a
fresh database: parsing and checking every row, sealing each card's secrets
with AES-GCM, writing in batches (executemany on SQLite, one COPY on
PostgreSQL), the audit event, the commit. Also times the harmless second
import of the same file and a failing import (one bad row at the very end,
so every row is checked and written before the rollback).

Usage:
  .venv/bin/python bench/bench_stock_import.py [--rows 1000000] [--backend sqlite|postgresql]
        [--layout csv|output-file] [--pg-admin-url URL]

PostgreSQL: a throw-away database is created on the server of --pg-admin-url
(a role that may create databases; the test suite makes ``simtool_test``) and
dropped afterwards. Results go to bench/results/stock_import-<backend>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provisioning.audit import Actor  # noqa: E402
from provisioning.database import Database  # noqa: E402
from provisioning.errors import InputFileError  # noqa: E402
from provisioning.secrets import Keyring  # noqa: E402
from provisioning.stock import import_stock  # noqa: E402
from provisioning.stockfile import (  # noqa: E402
    StockRow,
    example_rows,
    write_output_file,
    write_stock_csv,
)

DEFAULT_PG_ADMIN = "postgresql://simtool_test:simtool_test@127.0.0.1:5432/postgres"


def make_database(backend: str, workdir: Path, pg_admin_url: str) -> tuple[Database, str]:
    """A fresh database and a clean-up note (the PostgreSQL database name)."""
    if backend == "sqlite":
        database = Database(str(workdir / "bench.db"))
        database.init()
        return database, ""
    import psycopg

    name = f"simtool_bench_{os.getpid()}_{secrets.token_hex(2)}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = pg_admin_url.rpartition("/")
    database = Database(f"{base}/{name}")
    database.init()
    return database, name


def drop_database(name: str, pg_admin_url: str) -> None:
    """Drop the throw-away PostgreSQL database (our connections are closed by now).

    Not WITH (FORCE): that needs the right to signal autovacuum workers, which
    a plain DROP stops by itself.
    """
    import psycopg

    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        for attempt in range(20):
            try:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
                return
            except psycopg.errors.ObjectInUse:
                if attempt == 19:
                    raise
                time.sleep(0.5)


def write_file(path: Path, layout: str, rows: Iterator[StockRow]) -> None:
    """Write synthetic stock in the chosen layout."""
    if layout == "csv":
        write_stock_csv(path, rows)
    else:
        write_output_file(path, list(rows))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--layout", choices=["csv", "output-file"], default="csv")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="simtool-bench-stock-"))
    stock = workdir / ("stock.csv" if args.layout == "csv" else "stock.out")
    started = time.perf_counter()
    write_file(stock, args.layout, example_rows(args.rows))
    generate_s = time.perf_counter() - started

    database, pg_name = make_database(args.backend, workdir, args.pg_admin_url)
    keyring = Keyring(workdir / "secrets.key")
    actor = Actor(operator="bench", station="bench")
    try:
        result = import_stock(database, keyring, actor, stock)
        assert result.cards == args.rows
        again = import_stock(database, keyring, actor, stock)
        assert again.already_imported
        # A second delivery whose very last row is broken: every row is checked,
        # sealed and written, then all of it is rolled back and the file's
        # cards are looked up (none is in the database) to name every bad row.
        bad = workdir / ("bad" + stock.suffix)
        write_file(bad, args.layout, example_rows(args.rows, first_serial=args.rows + 1))
        lines = bad.read_text().rstrip("\n").splitlines()
        lines[-1] += " broken" if args.layout == "output-file" else ",broken"
        bad.write_text("\n".join(lines) + "\n")
        failed_started = time.perf_counter()
        failed_rows = 0
        try:
            import_stock(database, keyring, actor, bad)
        except InputFileError as error:
            failed_rows = len(error.problems)
        failed_s = time.perf_counter() - failed_started
    finally:
        database.dispose()
        if pg_name:
            drop_database(pg_name, args.pg_admin_url)

    results = {
        "backend": args.backend,
        "layout": args.layout,
        "rows": args.rows,
        "file_mb": round(stock.stat().st_size / 1e6, 1),
        "generate_file_s": round(generate_s, 2),
        "import_s": round(result.seconds, 2),
        "import_rows_per_s": round(args.rows / result.seconds),
        "reimport_same_file_s": round(again.seconds, 3),
        "failed_import_s": round(failed_s, 2),
        "failed_import_problems_reported": failed_rows,
        "cpus": os.cpu_count(),
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"stock_import-{args.backend}.json").write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:34s} {value}")
    for leftover in workdir.iterdir():
        leftover.unlink()
    workdir.rmdir()


if __name__ == "__main__":
    main()
