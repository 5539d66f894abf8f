"""Stock import: a vendor data file becomes cards in stock, whole or not at all.

The file is read once, row by row: each row is checked (ICCID, IMSI, secrets,
form factor, duplicates in the file) and, while no row has failed, sealed and
written in batches inside one transaction (``executemany`` on SQLite, ``COPY``
on PostgreSQL). Any bad row stops the writing; the rest is still checked so that
every bad row is reported, then the transaction is rolled back. Cards already in
the database surface as a unique-constraint failure and are then looked up to
name their rows. A file imported before (same bytes) is recognised by its
SHA-256 and not imported again.
"""

from __future__ import annotations

import hashlib
import itertools
import queue
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from apdu.errors import UsageError
from provisioning.audit import BATCH_CHECKED_KEY, Actor, append_event
from provisioning.database import Database
from provisioning.errors import InputFileError, RowProblem
from provisioning.identifiers import parse_label
from provisioning.keys import box_for
from provisioning.lifecycle import CardState, FormFactor, NetworkType
from provisioning.models import Card, StockBatch
from provisioning.secrets import Keyring
from provisioning.stockfile import StockFileReader, StockValidator, check_quantity

#: Rows handed to the database writer at a time (one COPY write on PostgreSQL).
INSERT_BATCH = 10_000
#: Rows per INSERT statement on SQLite (fewer when the build allows fewer
#: parameters): see :func:`_sqlite_writer`.
SQLITE_ROWS_PER_INSERT = 2000
_LOOKUP_CHUNK = 5000
_COLUMNS = (
    "iccid",
    "imsi",
    "form_factor",
    "network_type",
    "batch_id",
    "state",
    "state_changed_at",
    "secrets",
)
#: The columns that differ from card to card, in the order of :data:`_COLUMNS`
#: minus the batch's values (network type, batch, state, time), which are the
#: same for every card of an import and sent once per statement.
_CARD_COLUMNS = ("iccid", "imsi", "form_factor", "secrets")
_PG_COPY = f"COPY cards ({', '.join(_COLUMNS)}) FROM STDIN"
# Plain str values for the drivers (and a cheap lookup on the per-row path).
_FORM_FACTOR_TEXT = {member: member.value for member in FormFactor}


@dataclass(frozen=True)
class StockImportResult:
    """What an import did. ``already_imported``: the same file was imported before."""

    batch: str
    cards: int
    already_imported: bool
    layout: str
    network_type: NetworkType
    form_factors: dict[str, int]
    ignored_columns: tuple[str, ...]
    file_sha256: str
    seconds: float
    audit_seq: int | None = None


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _DuplicateInDatabaseError(Exception):
    """A card of the file is already in the database (internal: ends the write phase)."""


class _BadRowsError(Exception):
    """The file has bad rows: undo everything written (internal)."""


@dataclass
class _Import:
    """State of one import in progress."""

    validator: StockValidator
    progress: Callable[[int, int], None] | None = None
    total_bytes: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    form_factors: Counter[FormFactor] = field(default_factory=Counter)
    written: int = 0
    #: Every row up to this line went into the database without a unique
    #: violation, so none of them duplicates a card already there.
    written_through_line: int = 0
    duplicate_in_database: bool = False


_Rows = list[tuple[Any, ...]]


def import_stock(
    database: Database,
    keyring: Keyring,
    actor: Actor,
    path: Path,
    *,
    network_type: NetworkType = NetworkType.D,
    form_factor: FormFactor | None = None,
    batch: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> StockImportResult:
    """Import the stock file at ``path`` as one batch of cards in stock.

    Raises :class:`InputFileError` listing every bad row (nothing imported);
    returns ``already_imported=True`` for a file imported before. The file is
    streamed: memory stays flat whatever its length (duplicates within it are
    caught by the database's unique indexes; only a failed import reads the
    file a second time, to name every bad row). ``progress(bytes_done,
    bytes_total)`` is called every few thousand rows.
    """
    started = time.perf_counter()
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    sha = file_sha256(path)
    with database.read() as session:
        earlier = _batch_of_file(session, sha)
    if earlier is not None:
        return _already_imported(earlier, sha, started)
    name = parse_label(batch, "batch name") if batch is not None else f"{path.stem[:80]}-{sha[:8]}"
    with StockFileReader(path) as reader:
        state = _Import(
            StockValidator(
                reader,
                network_type=network_type,
                form_factor=form_factor,
                track_duplicates=False,
            ),
            progress=progress,
            total_bytes=path.stat().st_size,
        )
        try:
            with database.write() as session:
                # Again under the write lock: another station may have imported
                # the same file a moment ago.
                earlier = _batch_of_file(session, sha)
                if earlier is not None:
                    return _already_imported(earlier, sha, started)
                result = _write_batch(
                    session,
                    database,
                    keyring,
                    actor,
                    reader,
                    state,
                    name=name,
                    sha=sha,
                    network_type=network_type,
                )
                if state.problems or state.duplicate_in_database:
                    raise _BadRowsError  # roll back what was written
        except _BadRowsError:
            pass
        else:
            return StockImportResult(
                batch=name,
                cards=state.written,
                already_imported=False,
                layout=reader.layout,
                network_type=network_type,
                form_factors={ff.value: n for ff, n in state.form_factors.items()},
                ignored_columns=reader.ignored_columns,
                file_sha256=sha,
                seconds=time.perf_counter() - started,
                audit_seq=result,
            )
    # Nothing was imported. Read the file again, this time remembering every
    # ICCID and IMSI, to name every bad row: duplicates within the file and
    # cards already in the database included.
    problems = _diagnose(database, path, network_type, form_factor)
    raise InputFileError(
        f"{path}: {len({p.line for p in problems})} bad rows; nothing was imported",
        path=str(path),
        problems=problems,
    )


def _diagnose(
    database: Database, path: Path, network_type: NetworkType, form_factor: FormFactor | None
) -> list[RowProblem]:
    """Every problem of a stock file that failed to import, in line order."""
    with StockFileReader(path) as reader:
        validator = StockValidator(reader, network_type=network_type, form_factor=form_factor)
        problems: list[RowProblem] = []
        for checked in validator.check_lines(reader.lines()):
            if isinstance(checked, list):
                problems.extend(checked)
        problems.extend(check_quantity(reader, validator.rows_seen))
    problems.extend(_find_duplicates_in_database(database, validator, 0))
    problems.sort(key=lambda p: (p.line, p.field))
    return problems


def _batch_of_file(session: Session, sha: str) -> StockBatch | None:
    return session.execute(
        select(StockBatch).where(StockBatch.file_sha256 == sha)
    ).scalar_one_or_none()


def _already_imported(batch: StockBatch, sha: str, started: float) -> StockImportResult:
    return StockImportResult(
        batch=batch.name,
        cards=batch.card_count,
        already_imported=True,
        layout=batch.file_layout,
        network_type=batch.network_type,
        form_factors={},
        ignored_columns=(),
        file_sha256=sha,
        seconds=time.perf_counter() - started,
    )


def _write_batch(
    session: Session,
    database: Database,
    keyring: Keyring,
    actor: Actor,
    reader: StockFileReader,
    state: _Import,
    *,
    name: str,
    sha: str,
    network_type: NetworkType,
) -> int:
    """Check every row, write while all are good; returns the audit event's seq."""
    if session.execute(select(StockBatch.id).where(StockBatch.name == name)).first():
        raise UsageError(f"batch name {name!r} is taken; give another with --batch")
    seal = box_for(session, keyring, sealing=True).bulk_sealer()
    now = datetime.now(UTC)
    record = StockBatch(
        name=name,
        file_sha256=sha,
        source_file=str(reader.path)[-500:],
        file_layout=reader.layout,
        network_type=network_type,
        card_count=0,
        imported_at=now,
        operator=actor.operator,
        station=actor.station,
    )
    session.add(record)
    session.flush()
    stored_at: Any = now.replace(tzinfo=None)
    if database.dialect == "sqlite":
        # The raw sqlite3 driver stores what SQLAlchemy's DateTime would: ISO text.
        stored_at = stored_at.isoformat(sep=" ", timespec="microseconds")
    # The same for every card: sent once per statement, not once per row.
    fixed = (network_type.value, record.id, CardState.IN_STOCK.value, stored_at)
    pending: _Rows = []
    # Per-row work is most of the import's own time: names bound once here,
    # and one local flag instead of two attribute reads per row.
    counts = state.form_factors
    form_factor_text = _FORM_FACTOR_TEXT
    batch_rows = INSERT_BATCH
    clean = True
    try:
        with _card_writer(session, database.dialect, fixed) as write:
            for checked in state.validator.check_lines(reader.lines()):
                if isinstance(checked, list):
                    state.problems.extend(checked)
                    pending = []
                    clean = False
                    continue
                if not clean:
                    continue
                line, iccid, imsi, form_factor, plaintext = checked
                pending.append((iccid, imsi, form_factor_text[form_factor], seal(iccid, plaintext)))
                counts[form_factor] += 1
                if len(pending) >= batch_rows:
                    _flush(write, pending, line, state)
                    pending = []
                    clean = not state.duplicate_in_database
                    if state.progress is not None:
                        state.progress(reader.bytes_read, state.total_bytes)
            state.problems.extend(check_quantity(reader, state.validator.rows_seen))
            if not state.problems and not state.duplicate_in_database:
                _flush(write, pending, state.validator.last_line, state)
    except _DuplicateInDatabaseError:
        state.duplicate_in_database = True
    if state.problems or state.duplicate_in_database:
        return 0
    if state.written == 0:
        raise InputFileError(
            f"{reader.path}: no cards in the file",
            path=str(reader.path),
            problems=[RowProblem(reader.header_line, "file", "no data rows")],
        )
    record.card_count = state.written
    event = append_event(
        session,
        actor,
        "stock-import",
        details={
            "batch": name,
            "cards": state.written,
            "file_sha256": sha,
            "layout": reader.layout,
            "network_type": network_type.value,
            "form_factors": {ff.value: n for ff, n in state.form_factors.items()},
            # The audit checks this batch's cards from now on (audit.verify_chain).
            BATCH_CHECKED_KEY: True,
        },
    )
    return event.seq


def _flush(write: Callable[[_Rows], None], rows: _Rows, last_line: int, state: _Import) -> None:
    if not rows:
        return
    try:
        write(rows)
    except _DuplicateInDatabaseError:
        state.duplicate_in_database = True
    else:
        state.written += len(rows)
        state.written_through_line = last_line


@contextmanager
def _card_writer(
    session: Session, dialect: str, fixed: tuple[Any, ...] | None = None
) -> Iterator[Callable[[_Rows], None]]:
    """A function that writes card rows in the session's transaction.

    With ``fixed`` (network type, batch id, state, state time: the same for
    every card of the import) a row is the values of :data:`_CARD_COLUMNS`;
    without, a row is the values of every column of :data:`_COLUMNS`.

    On PostgreSQL all rows go through one ``COPY`` that stays open for the whole
    file, so the server inserts while this process checks and seals the next
    rows; a card already in the database surfaces when the COPY ends.
    """
    connection = session.connection()
    if dialect != "postgresql":
        with _sqlite_writer(connection, fixed) as insert_rows:
            yield insert_rows
        return
    import psycopg

    raw = connection.connection.driver_connection
    if raw is None:  # pragma: no cover - a pooled connection always has one
        raise RuntimeError("no driver connection")
    try:
        with raw.cursor() as cursor, cursor.copy(_PG_COPY) as copy:

            def copy_rows(rows: _Rows) -> None:
                try:
                    if fixed is None:
                        for row in rows:
                            copy.write_row(row)
                    else:
                        network, batch_id, state, state_changed_at = fixed
                        for iccid, imsi, form_factor, secrets in rows:
                            copy.write_row(
                                (
                                    iccid,
                                    imsi,
                                    form_factor,
                                    network,
                                    batch_id,
                                    state,
                                    state_changed_at,
                                    secrets,
                                )
                            )
                except psycopg.errors.UniqueViolation as error:
                    raise _DuplicateInDatabaseError from error

            yield copy_rows
    except psycopg.errors.UniqueViolation as error:
        raise _DuplicateInDatabaseError from error


def _sqlite_insert(rows: int, with_fixed: bool) -> str:
    """One INSERT statement for ``rows`` rows (see :func:`_card_writer` for their shape).

    With the fixed values, those four are the statement's first parameters,
    used for every row: ``INSERT ... SELECT column1, column2, column3, ?, ?,
    ?, ?, column4 FROM (VALUES (?, ?, ?, ?), ...)``. SQLite reads the VALUES
    in order (a co-routine), so the cards get their ids in file order.
    """
    columns = ", ".join(_COLUMNS)
    if not with_fixed:
        row = f"({', '.join('?' for _ in _COLUMNS)})"
        return f"INSERT INTO cards ({columns}) VALUES " + ",".join([row] * rows)
    picked = [
        f"column{_CARD_COLUMNS.index(c) + 1}" if c in _CARD_COLUMNS else "?" for c in _COLUMNS
    ]
    row = f"({', '.join('?' for _ in _CARD_COLUMNS)})"
    values = ",".join([row] * rows)
    return f"INSERT INTO cards ({columns}) SELECT {', '.join(picked)} FROM (VALUES {values})"


@contextmanager
def _sqlite_writer(
    connection: Connection, fixed: tuple[Any, ...] | None
) -> Iterator[Callable[[_Rows], None]]:
    """Insert batches of rows on a second thread, while this one checks and seals.

    Each statement inserts thousands of rows (one ``INSERT`` over a ``VALUES``
    list): sqlite3 lets go of the GIL while SQLite runs a statement, so SQLite
    inserts them on the other core while this thread checks and seals the next
    rows. With ``executemany`` (one statement per row) the writer had to take
    the GIL back after every row, and got it only every few milliseconds from
    the busy importing thread: the two threads mostly took turns. The thread
    alone uses the connection until the block ends (at most two batches wait),
    and any error of the driver is raised here, at the next batch or at the end.
    """
    raw = connection.connection.driver_connection
    if raw is None:  # pragma: no cover - a pooled connection always has one
        raise RuntimeError("no driver connection")
    prefix = list(fixed or ())
    width = len(_COLUMNS) if fixed is None else len(_CARD_COLUMNS)
    limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - len(prefix)
    per_statement = max(1, min(SQLITE_ROWS_PER_INSERT, limit // width))
    batches: queue.Queue[_Rows | None] = queue.Queue(maxsize=2)
    failures: list[BaseException] = []

    def work() -> None:
        cursor = raw.cursor()
        step = per_statement * width
        full = _sqlite_insert(per_statement, fixed is not None)
        # Values carried over to the next batch: every statement but the last
        # is the same full one, prepared once.
        values: list[Any] = []
        ended = False
        try:
            while (rows := batches.get()) is not None:
                values.extend(itertools.chain.from_iterable(rows))
                if len(values) < step:
                    continue
                end = len(values) - len(values) % step
                for start in range(0, end, step):
                    cursor.execute(full, prefix + values[start : start + step])
                del values[:end]
            ended = True
            if values:
                last = _sqlite_insert(len(values) // width, fixed is not None)
                cursor.execute(last, prefix + values)
        except BaseException as error:  # handed to the importing thread
            failures.append(error)
            while not ended and batches.get() is not None:  # let the producer finish
                pass
        finally:
            cursor.close()

    def raise_failure() -> None:
        if failures:
            error = failures[0]
            if isinstance(error, sqlite3.IntegrityError):
                raise _DuplicateInDatabaseError from error
            raise error

    def insert_rows(rows: _Rows) -> None:
        raise_failure()
        batches.put(rows)

    writer = threading.Thread(target=work, name="stock-writer", daemon=True)
    writer.start()
    try:
        yield insert_rows
    finally:
        batches.put(None)
        writer.join()
    raise_failure()


def _find_duplicates_in_database(
    database: Database, validator: StockValidator, after_line: int
) -> list[RowProblem]:
    """Rows after ``after_line`` whose ICCID or IMSI is already in the database."""
    problems: list[RowProblem] = []
    with database.read() as session:
        for field_name, column, lines in (
            ("ICCID", Card.iccid, validator.iccid_lines),
            ("IMSI", Card.imsi, validator.imsi_lines),
        ):
            values = [value for value, line in lines.items() if line > after_line]
            for start in range(0, len(values), _LOOKUP_CHUNK):
                chunk = values[start : start + _LOOKUP_CHUNK]
                found = session.execute(
                    select(column, StockBatch.name).join(StockBatch).where(column.in_(chunk))
                ).all()
                problems.extend(
                    RowProblem(
                        lines[value],
                        field_name,
                        f"{value} is already in the database (batch {batch_name})",
                    )
                    for value, batch_name in found
                )
    return problems


@dataclass(frozen=True)
class BatchSummary:
    """One stock batch and how many of its cards are in each state."""

    name: str
    imported_at: datetime
    network_type: NetworkType
    cards: int
    states: dict[str, int]
    operator: str
    station: str


def list_batches(database: Database) -> list[BatchSummary]:
    """Every stock batch, oldest first, with its cards counted by state."""
    with database.read() as session:
        batches = session.execute(select(StockBatch).order_by(StockBatch.id)).scalars().all()
        counts = session.execute(
            select(Card.batch_id, Card.state, func.count()).group_by(Card.batch_id, Card.state)
        ).all()
    by_batch: dict[int, dict[str, int]] = {}
    for batch_id, card_state, count in counts:
        by_batch.setdefault(batch_id, {})[CardState(card_state).value] = count
    return [
        BatchSummary(
            name=b.name,
            imported_at=b.imported_at,
            network_type=b.network_type,
            cards=b.card_count,
            states=by_batch.get(b.id, {}),
            operator=b.operator,
            station=b.station,
        )
        for b in batches
    ]
