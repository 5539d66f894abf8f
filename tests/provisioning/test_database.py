"""The schema: migrations from empty, the models matching them, engine settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from provisioning.database import (
    Database,
    database_url,
    open_station_database,
)
from provisioning.errors import DatabaseError
from provisioning.models import Base
from provisioning.schema import shipped_revisions


def _empty(db_url: str) -> str:
    """An existing empty database: on SQLite an empty file (what sqlite3 calls empty)."""
    if "://" not in db_url:
        Path(db_url).touch(mode=0o600)
    return db_url


def test_migrations_from_empty_match_the_models(db_url: str) -> None:
    database = Database(_empty(db_url))
    before = database.status()
    assert before.current is None and before.pending[-1] == before.head
    assert before.pending[0] == "0001"
    after = database.init()
    assert after.is_current and after.pending == ()
    assert database.init() == after  # harmless the second time
    with database.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
    database.dispose()


def test_downgrade_to_empty_and_back(db_url: str) -> None:
    from alembic import command

    database = Database(db_url)
    database.init()
    with database.engine.begin() as connection:
        command.downgrade(database._alembic_config(connection), "base")
    assert database.status().current is None
    assert database.init().is_current
    database.dispose()


def test_work_needs_an_initialised_current_schema(db_url: str) -> None:
    database = Database(_empty(db_url))
    with pytest.raises(DatabaseError, match="db init"):
        database.require_current()
    with pytest.raises(DatabaseError, match="not initialised"):
        database.upgrade()
    database.init()
    database.require_current()
    database.dispose()


def test_refuses_a_foreign_database(tmp_path: Path) -> None:
    database = Database(_empty(str(tmp_path / "other.db")))
    with database.engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE payroll (id INTEGER)")
    with pytest.raises(DatabaseError, match="refusing to touch it"):
        database.init()


def test_only_init_creates_a_database(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "station.db"
    with pytest.raises(DatabaseError, match=r"no line database at .* \(run simtool db init\)"):
        open_station_database(str(path))
    with pytest.raises(DatabaseError, match="no line database"):
        Database(str(path)).status()
    assert not (tmp_path / "deep").exists()  # a typo creates nothing


def test_new_sqlite_file_is_private_and_ready(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "station.db"
    Database(str(path)).init()
    database = open_station_database(str(path))
    assert path.exists() and database.status().is_current
    with database.write() as session:  # WAL and SHM files appear with the first write
        session.execute(text("SELECT 1"))
        for made in path.parent.iterdir():
            assert made.stat().st_mode & 0o777 == 0o600, made
    assert path.parent.stat().st_mode & 0o777 == 0o700
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_garbage_file_is_a_database_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"not a database, just some bytes\n" * 200)
    for action in (Database(str(path)).status, Database(str(path)).init):
        with pytest.raises(DatabaseError, match="not a database"):
            action()
    with pytest.raises(DatabaseError, match="not a database"):
        open_station_database(str(path))


def test_database_from_a_newer_simtool(db_url: str) -> None:
    database = Database(_empty(db_url))
    database.init()
    with database.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    for action in (database.status, database.require_current, database.upgrade, database.init):
        with pytest.raises(DatabaseError, match="the database is newer than this simtool"):
            action()
    database.dispose()


def test_sqlite_writers_take_the_lock_at_begin(tmp_path: Path) -> None:
    database = open_station_database(str(tmp_path / "lock.db"), create=True)
    statements: list[str] = []
    from sqlalchemy import event

    event.listen(
        database.engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, *rest: statements.append(statement),
    )
    with database.write() as session:
        session.execute(text("SELECT 1"))
    with database.read() as session:
        session.execute(text("SELECT 1"))
    assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE", "BEGIN"]


def test_database_urls() -> None:
    assert database_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert database_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert database_url("/var/lib/x.db").database == "/var/lib/x.db"
    assert database_url("sqlite:///rel.db").drivername == "sqlite"
    with pytest.raises(DatabaseError, match="unsupported"):
        database_url("mysql://u@h/db")
    with pytest.raises(DatabaseError):
        Database("sqlite://")


def test_password_is_masked_in_messages() -> None:
    database = Database("postgresql://simtool:s3cret@127.0.0.1:1/nowhere")
    assert "s3cret" not in database.display_url
    with pytest.raises(DatabaseError) as failed:
        database.status()
    assert "s3cret" not in str(failed.value) and failed.value.url == database.display_url


def test_shipped_revisions_agree_with_alembic(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    database = Database(_empty(str(tmp_path / "x.db")))
    with database.engine.connect() as connection:
        script = ScriptDirectory.from_config(database._alembic_config(connection))
    revisions, head = shipped_revisions()
    assert revisions == {rev.revision for rev in script.walk_revisions()}
    assert head == script.get_current_head()


def test_reads_do_not_import_alembic(tmp_path: Path) -> None:
    """The schema check every command makes is one query: Alembic is for 'db' only."""
    import subprocess
    import sys

    path = tmp_path / "lines.db"
    Database(str(path)).init()
    probe = (
        "import sys; from provisioning.database import open_station_database; "
        f"open_station_database({str(path)!r}); print('alembic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
