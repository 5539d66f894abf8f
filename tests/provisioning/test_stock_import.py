"""Stock import into the database: whole or nothing, named bad rows, idempotent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from apdu.errors import UsageError
from provisioning.audit import Actor, verify_audit
from provisioning.database import Database
from provisioning.errors import InputFileError
from provisioning.keys import box_for
from provisioning.lifecycle import CardState, FormFactor, NetworkType
from provisioning.models import AuditEvent, Card, StockBatch
from provisioning.secrets import Keyring
from provisioning.stock import import_stock, list_batches
from provisioning.stockfile import example_rows, write_output_file
from tests.provisioning.helpers import Stock


def counts(database: Database) -> tuple[int, int, int]:
    with database.read() as session:
        return (
            session.scalar(select(func.count()).select_from(Card)) or 0,
            session.scalar(select(func.count()).select_from(StockBatch)) or 0,
            session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
        )


def test_import_then_again_is_harmless(
    database: Database, keyring: Keyring, actor: Actor, stock: Callable[..., Stock]
) -> None:
    file = stock(25, form_factor=FormFactor.MICRO)
    first = import_stock(database, keyring, actor, file.path)
    assert (first.cards, first.already_imported, first.layout) == (25, False, "csv")
    assert first.form_factors == {"micro": 25}
    again = import_stock(database, keyring, actor, file.path)
    assert again.already_imported and again.batch == first.batch and again.cards == 25
    assert counts(database) == (25, 1, 1)
    with database.read() as session:
        cards = session.execute(select(Card).order_by(Card.id)).scalars().all()
        box = box_for(session, keyring, sealing=False)
        assert [c.iccid for c in cards] == [r.iccid for r in file.rows]
        assert {c.state for c in cards} == {CardState.IN_STOCK}
        assert {c.network_type for c in cards} == {NetworkType.D}
        # The secrets are sealed: none of them is in the row, and they open.
        assert file.rows[3].secrets.puk1 is not None
        assert file.rows[3].secrets.puk1.encode() not in cards[3].secrets
        assert box.open(cards[3].iccid, cards[3].secrets) == file.rows[3].secrets
    assert verify_audit(database).ok


def test_output_file_layout_imports(
    database: Database, keyring: Keyring, actor: Actor, tmp_path: Path
) -> None:
    path = tmp_path / "vendor.out"
    write_output_file(path, list(example_rows(7, form_factor=FormFactor.MULTI)))
    result = import_stock(
        database, keyring, actor, path, network_type=NetworkType.K, batch="kddi-2026-05"
    )
    assert (result.cards, result.layout, result.batch) == (7, "output-file", "kddi-2026-05")
    [batch] = list_batches(database)
    assert (batch.name, batch.cards, batch.states, batch.network_type) == (
        "kddi-2026-05",
        7,
        {"in-stock": 7},
        NetworkType.K,
    )
    assert (batch.operator, batch.station) == (actor.operator, actor.station)


def test_bad_file_imports_nothing_and_names_rows(
    database: Database, keyring: Keyring, actor: Actor, stock: Callable[..., Stock]
) -> None:
    file = stock(30)
    lines = file.path.read_text().splitlines()
    lines[12] = lines[12].replace(",nano", ",wallet-size")
    lines[25] = lines[25].replace(file.rows[24].imsi, "44010")
    file.path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFileError) as failed:
        import_stock(database, keyring, actor, file.path)
    assert [(p.line, p.field) for p in failed.value.problems] == [(13, "FORM_FACTOR"), (26, "IMSI")]
    assert "2 bad rows" in str(failed.value) and "nothing was imported" in str(failed.value)
    assert counts(database) == (0, 0, 0)


def test_cards_already_in_the_database_are_named(
    database: Database, keyring: Keyring, actor: Actor, stock: Callable[..., Stock]
) -> None:
    first = stock(10, first_serial=1)
    import_stock(database, keyring, actor, first.path, batch="first")
    overlapping = stock(10, first_serial=8)  # serials 8..17: 8, 9, 10 are taken
    with pytest.raises(InputFileError) as failed:
        import_stock(database, keyring, actor, overlapping.path)
    named = {(p.line, p.field) for p in failed.value.problems}
    assert named == {(line, field) for line in (2, 3, 4) for field in ("ICCID", "IMSI")}
    assert all("batch first" in p.reason for p in failed.value.problems)
    assert counts(database) == (10, 1, 1)
    # Also when a bad row further down stopped the writing before the duplicates.
    lines = overlapping.path.read_text().splitlines()
    lines.append(lines[-1])
    overlapping.path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFileError) as failed:
        import_stock(database, keyring, actor, overlapping.path)
    assert (2, "ICCID") in {(p.line, p.field) for p in failed.value.problems}
    assert (12, "ICCID") in {(p.line, p.field) for p in failed.value.problems}
    assert counts(database) == (10, 1, 1)


def test_batch_names_and_empty_files(
    database: Database, keyring: Keyring, actor: Actor, stock: Callable[..., Stock], tmp_path: Path
) -> None:
    import_stock(database, keyring, actor, stock(2).path, batch="may")
    with pytest.raises(UsageError, match="batch name 'may' is taken"):
        import_stock(database, keyring, actor, stock(2, first_serial=50).path, batch="may")
    empty = tmp_path / "empty.csv"
    empty.write_text("ICCID,IMSI,PIN1,PUK1,FORM_FACTOR\n")
    with pytest.raises(InputFileError, match="no cards"):
        import_stock(database, keyring, actor, empty)
    assert counts(database) == (2, 1, 1)


def test_big_file_crosses_insert_batches(
    database: Database,
    keyring: Keyring,
    actor: Actor,
    stock: Callable[..., Stock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import provisioning.stock as stock_module

    monkeypatch.setattr(stock_module, "INSERT_BATCH", 7)
    file = stock(50)
    assert import_stock(database, keyring, actor, file.path).cards == 50
    broken = stock(50, first_serial=1000)
    lines = broken.path.read_text().splitlines()
    lines[40] = lines[40].replace(",0000,", ",00,", 1)
    broken.path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFileError) as failed:
        import_stock(database, keyring, actor, broken.path)
    assert [(p.line, p.field) for p in failed.value.problems] == [(41, "PIN1")]
    assert counts(database) == (50, 1, 1)


def test_duplicates_after_a_bad_row_are_named_with_small_batches(
    database: Database,
    keyring: Keyring,
    actor: Actor,
    stock: Callable[..., Stock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import provisioning.stock as stock_module

    monkeypatch.setattr(stock_module, "INSERT_BATCH", 3)
    import_stock(database, keyring, actor, stock(1, first_serial=9).path)
    file = stock(12, first_serial=1)  # serial 9 (line 10) is already in the database
    lines = file.path.read_text().splitlines()
    lines[7] = lines[7].replace(",0000,", ",0,", 1)  # line 8: a bad PIN1 stops the writing
    file.path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFileError) as failed:
        import_stock(database, keyring, actor, file.path)
    assert [(p.line, p.field) for p in failed.value.problems] == [
        (8, "PIN1"),
        (10, "ICCID"),
        (10, "IMSI"),
    ]
    assert counts(database) == (1, 1, 1)


def test_same_file_imported_by_another_station_meanwhile(
    database: Database,
    keyring: Keyring,
    actor: Actor,
    stock: Callable[..., Stock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import provisioning.stock as stock_module

    file = stock(4)
    import_stock(database, keyring, actor, file.path)
    real = stock_module._batch_of_file
    calls: list[int] = []

    def stale_first_look(session: object, sha: str) -> object:
        calls.append(1)
        # The first look (before the write lock) happened before the other
        # station committed: it saw nothing.
        return None if len(calls) == 1 else real(session, sha)  # type: ignore[arg-type]

    monkeypatch.setattr(stock_module, "_batch_of_file", stale_first_look)
    again = import_stock(database, keyring, Actor("ito", "bench-2"), file.path)
    assert again.already_imported and len(calls) == 2
    assert counts(database) == (4, 1, 1)


@pytest.mark.parametrize(("per_statement", "batch_rows"), [(4, 7), (7, 3), (1, 1)])
def test_rows_cross_statements_and_batches_in_order(
    database: Database,
    keyring: Keyring,
    actor: Actor,
    stock: Callable[..., Stock],
    monkeypatch: pytest.MonkeyPatch,
    per_statement: int,
    batch_rows: int,
) -> None:
    """Rows carried from one hand-over to the next statement all arrive, once, in order."""
    import provisioning.stock as stock_module

    monkeypatch.setattr(stock_module, "SQLITE_ROWS_PER_INSERT", per_statement)
    monkeypatch.setattr(stock_module, "INSERT_BATCH", batch_rows)
    file = stock(30, form_factor=FormFactor.MICRO)
    seen: list[tuple[int, int]] = []
    result = import_stock(
        database, keyring, actor, file.path, progress=lambda done, total: seen.append((done, total))
    )
    assert result.cards == 30
    with database.read() as session:
        cards = session.execute(select(Card).order_by(Card.id)).scalars().all()
        box = box_for(session, keyring, sealing=False)
        assert [c.iccid for c in cards] == [r.iccid for r in file.rows]
        assert [c.imsi for c in cards] == [r.imsi for r in file.rows]
        assert {c.form_factor for c in cards} == {FormFactor.MICRO}
        assert [box.open(c.iccid, c.secrets) for c in cards] == [r.secrets for r in file.rows]
    # Progress: bytes of the file, never backwards, never past its size.
    size = file.path.stat().st_size
    assert seen and all(total == size for _, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert all(0 < done <= size for done, _ in seen)


def test_a_card_in_the_database_is_caught_in_any_statement(
    database: Database,
    keyring: Keyring,
    actor: Actor,
    stock: Callable[..., Stock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A taken card in a full statement, or in the last (partial) one: nothing written."""
    import provisioning.stock as stock_module

    monkeypatch.setattr(stock_module, "SQLITE_ROWS_PER_INSERT", 4)
    monkeypatch.setattr(stock_module, "INSERT_BATCH", 5)
    import_stock(database, keyring, actor, stock(1, first_serial=3).path, batch="early")
    import_stock(database, keyring, actor, stock(1, first_serial=110).path, batch="late")
    file = stock(11, first_serial=100)  # serial 3 nowhere; 110 is the last row (line 12)
    with pytest.raises(InputFileError) as failed:
        import_stock(database, keyring, actor, file.path)
    assert {(p.line, p.field) for p in failed.value.problems} == {(12, "ICCID"), (12, "IMSI")}
    taken_early = stock(9, first_serial=1)  # serial 3: line 4, in the first statement
    with pytest.raises(InputFileError) as failed:
        import_stock(database, keyring, actor, taken_early.path)
    assert {(p.line, p.field) for p in failed.value.problems} == {(4, "ICCID"), (4, "IMSI")}
    assert counts(database) == (2, 2, 2)


def test_card_writer_takes_whole_rows_without_fixed_values(database: Database) -> None:
    """The writer's other shape (every column in each row), as bench_db_rows uses it."""
    from datetime import UTC, datetime

    from provisioning.stock import _card_writer

    now = datetime.now(UTC)
    stored_at: object = now.replace(tzinfo=None)
    if database.dialect == "sqlite":
        stored_at = now.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    with database.write() as session:
        batch = StockBatch(
            name="whole-rows",
            file_sha256="0" * 64,
            source_file="test",
            file_layout="csv",
            network_type=NetworkType.D,
            card_count=3,
            imported_at=now,
            operator="t",
            station="t",
        )
        session.add(batch)
        session.flush()
        rows = [
            (r.iccid, r.imsi, "nano", "D", batch.id, "in-stock", stored_at, b"\x01" * 40)
            for r in example_rows(3)
        ]
        with _card_writer(session, database.dialect) as write:
            write(rows[:2])
            write(rows[2:])
    with database.read() as session:
        cards = session.execute(select(Card).order_by(Card.id)).scalars().all()
        assert [(c.iccid, c.state, c.batch_id) for c in cards] == [
            (r[0], CardState.IN_STOCK, r[4]) for r in rows
        ]
