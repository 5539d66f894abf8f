"""Benchmark: database rows per second, the write path alone.

Writes ready-made card rows (identifiers and an already sealed secrets blob)
into the ``cards`` table in one transaction, three ways:

- ``station``: the path stock import uses (raw ``executemany`` on SQLite, one
  ``COPY`` on PostgreSQL), in batches of ``INSERT_BATCH``;
- ``core``: SQLAlchemy Core ``insert(cards)`` with a list of dicts per batch
  (what a plain SQLAlchemy bulk insert costs);
- ``orm``: one ORM object per row, flushed per batch (what naive code costs;
  on fewer rows, since it is slow).

Each run is rolled back, so every mode starts from the same empty table.
The difference to bench_stock_import.py is the parsing, checking and sealing.

Usage:
  .venv/bin/python bench/bench_db_rows.py [--rows 200000] [--backend sqlite|postgresql]
        [--pg-admin-url URL]
Results go to bench/results/db_rows-<backend>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from bench.bench_stock_import import DEFAULT_PG_ADMIN, drop_database, make_database  # noqa: E402
from provisioning.database import Database  # noqa: E402
from provisioning.lifecycle import CardState, FormFactor, NetworkType  # noqa: E402
from provisioning.models import Card, StockBatch  # noqa: E402
from provisioning.stock import INSERT_BATCH, _card_writer  # noqa: E402
from provisioning.stockfile import example_rows  # noqa: E402


def card_rows(count: int, stored_at: Any) -> list[tuple[Any, ...]]:
    """Rows as stock import hands them to the database (batch id 1)."""
    blob = os.urandom(129)
    return [
        (row.iccid, row.imsi, "nano", "D", 1, "in-stock", stored_at, blob)
        for row in example_rows(count)
    ]


def timed_rows_per_s(database: Database, mode: str, count: int) -> float:
    now = datetime.now(UTC)
    stored_at: Any = now.replace(tzinfo=None)
    if database.dialect == "sqlite":
        stored_at = stored_at.isoformat(sep=" ", timespec="microseconds")
    rows = card_rows(count, stored_at)
    with database.engine.connect() as connection:
        transaction = connection.begin()
        connection.execute(
            insert(StockBatch).values(
                id=1,
                name="bench",
                file_sha256="0" * 64,
                source_file="bench",
                file_layout="csv",
                network_type=NetworkType.D,
                card_count=0,
                imported_at=now,
                operator="bench",
                station="bench",
            )
        )
        from sqlalchemy.orm import Session

        session = Session(bind=connection)
        started = time.perf_counter()
        if mode == "station":
            with _card_writer(session, database.dialect) as write:
                for start in range(0, count, INSERT_BATCH):
                    write(rows[start : start + INSERT_BATCH])
        elif mode == "core":
            keys = (
                "iccid",
                "imsi",
                "form_factor",
                "network_type",
                "batch_id",
                "state",
                "state_changed_at",
                "secrets",
            )
            for start in range(0, count, INSERT_BATCH):
                connection.execute(
                    insert(Card),
                    [
                        {**dict(zip(keys, row, strict=True)), "state_changed_at": now}
                        for row in rows[start : start + INSERT_BATCH]
                    ],
                )
        else:
            for start in range(0, count, INSERT_BATCH):
                session.add_all(
                    Card(
                        iccid=r[0],
                        imsi=r[1],
                        form_factor=FormFactor.NANO,
                        network_type=NetworkType.D,
                        batch_id=1,
                        state=CardState.IN_STOCK,
                        state_changed_at=now,
                        secrets=r[7],
                    )
                    for r in rows[start : start + INSERT_BATCH]
                )
                session.flush()
                session.expunge_all()
        seconds = time.perf_counter() - started
        session.close()
        transaction.rollback()
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="simtool-bench-rows-"))
    database, pg_name = make_database(args.backend, workdir, args.pg_admin_url)
    try:
        results: dict[str, Any] = {"backend": args.backend, "rows": args.rows}
        for mode, count in (
            ("station", args.rows),
            ("core", args.rows),
            ("orm", max(1, args.rows // 10)),
        ):
            results[f"{mode}_rows_per_s"] = round(timed_rows_per_s(database, mode, count))
            results[f"{mode}_rows"] = count
    finally:
        database.dispose()
        if pg_name:
            drop_database(pg_name, args.pg_admin_url)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"db_rows-{args.backend}.json").write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:24s} {value}")
    for leftover in workdir.iterdir():
        leftover.unlink()
    workdir.rmdir()


if __name__ == "__main__":
    main()
