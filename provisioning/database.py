"""Opening the line database, its transactions, and its schema migrations.

SQLite is the embedded default (one file, WAL, foreign keys on, a busy
timeout); PostgreSQL through psycopg 3 is the database many stations share.
Writes on SQLite start with ``BEGIN IMMEDIATE``, so two stations queue for the
write lock at the start instead of one of them failing half-way.

The schema is made and upgraded by the Alembic scripts shipped in
``provisioning/migrations``, run from here; there is no alembic.ini.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session, sessionmaker

from provisioning.errors import ConcurrentChangeError, DatabaseError
from provisioning.schema import MIGRATIONS_DIR, shipped_revisions

if TYPE_CHECKING:  # Alembic is imported only by the schema commands, never on reads
    from alembic.config import Config

log = logging.getLogger(__name__)

#: Seconds a writer waits for another station's write lock before giving up.
LOCK_TIMEOUT_S = 30
#: Seconds a pooled PostgreSQL connection is reused before it is replaced.
POOL_RECYCLE_S = 600
# PostgreSQL SQLSTATEs meaning "another transaction got in the way".
_CONFLICT_SQLSTATES = {"40001", "40P01"}
_LOCK_TIMEOUT_SQLSTATE = "55P03"


def database_url(url_or_path: str) -> URL:
    """The SQLAlchemy URL for ``--db``: a URL, or a plain path meaning a SQLite file.

    ``postgresql://`` and ``postgres://`` select the psycopg 3 driver.
    """
    text = url_or_path.strip()
    if not text:
        raise DatabaseError("the database URL is empty", url="")
    if "://" not in text:
        return URL.create("sqlite", database=str(Path(text).expanduser()))
    try:
        url = make_url(text)
    except sa_exc.ArgumentError as error:
        raise DatabaseError(f"not a database URL: {error}", url=text) from error
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseError(
            f"unsupported database {url.get_backend_name()!r} (use a SQLite file or postgresql://)",
            url=_masked(url),
        )
    return url


def _masked(url: URL) -> str:
    return url.render_as_string(hide_password=True)


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema stands against the migrations shipped with simtool."""

    url: str
    dialect: str
    current: str | None
    head: str
    pending: tuple[str, ...]

    @property
    def is_current(self) -> bool:
        """True when the schema is at the newest revision."""
        return self.current == self.head


class Database:
    """One line database: an engine, its transactions, and its schema.

    ``write()`` and ``read()`` yield a :class:`~sqlalchemy.orm.Session` inside
    one transaction: committed when the block ends, rolled back on any error.
    """

    def __init__(self, url_or_path: str | URL) -> None:
        url = url_or_path if isinstance(url_or_path, URL) else database_url(url_or_path)
        self.url = url
        self.display_url = _masked(url)
        self.dialect = url.get_backend_name()
        self._sqlite_path = self._prepare_sqlite_file(url) if self.dialect == "sqlite" else None
        self.engine = self._create_engine(url)
        self._write_engine = self.engine.execution_options(simtool_write=True)
        # Lookups run without a transaction on PostgreSQL: no BEGIN and COMMIT
        # round trips (two of a provision's few). SQLite's cost nothing.
        self._lookup_engine = self.engine.execution_options(simtool_lookup=True)
        self._sessions = sessionmaker(expire_on_commit=False)
        if self.dialect == "postgresql":
            event.listen(self._sessions, "after_begin", _postgres_session_begun)

    @staticmethod
    def _prepare_sqlite_file(url: URL) -> Path:
        if not url.database or url.database == ":memory:":
            raise DatabaseError(
                "an in-memory SQLite database cannot be shared by a station; give a file",
                url=_masked(url),
            )
        # Nothing is created here: a mistyped --db path must not silently
        # become an empty database (only 'db init' creates one, see init()).
        return Path(url.database)

    def _create_engine(self, url: URL) -> Engine:
        if self.dialect == "sqlite":
            assert self._sqlite_path is not None
            engine = create_engine(url, creator=_sqlite_opener(self._sqlite_path))
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
            return engine
        # The driver stays in autocommit and simtool begins transactions itself
        # (_begin, and its sessions' after_begin), as on SQLite: a lookup then
        # needs no BEGIN, and lookups and writes share one pool, one connection
        # per station thread (a second one per station would double the
        # server's backends). No engine event listener: any one would make
        # SQLAlchemy dispatch events around every statement.
        return create_engine(
            url,
            isolation_level="AUTOCOMMIT",
            connect_args={"options": f"-c lock_timeout={LOCK_TIMEOUT_S}s"},
            # No pre-ping: it is one more round trip at every checkout (three per
            # provision). A connection the server closed fails its transaction
            # with a DatabaseError (nothing written) and SQLAlchemy then drops
            # every pooled connection, so the next transaction connects anew;
            # recycling bounds how long an idle connection is trusted.
            pool_recycle=POOL_RECYCLE_S,
        )

    @property
    def sqlite_path(self) -> Path | None:
        """The file of a SQLite database, else None."""
        return self._sqlite_path

    def dispose(self) -> None:
        """Close every pooled connection (before a fork, or when done)."""
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that may write; on SQLite it holds the write lock from the start."""
        with (
            self.translate_errors(),
            self._sessions(bind=self._write_engine) as session,
            session.begin(),
        ):
            yield session

    @contextmanager
    def write_rows(self) -> Iterator[Connection]:
        """:meth:`write` for Core statements only: a connection, no ORM session to track."""
        with self.translate_errors(), self._write_engine.connect() as connection:
            self._begin(connection)
            yield connection
            connection.commit()

    def _begin(self, connection: Connection) -> None:
        """Open a transaction on ``connection`` (on SQLite, the begin listener's BEGIN)."""
        if self.dialect == "postgresql":
            connection.exec_driver_sql("BEGIN")
        else:
            connection.begin()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A transaction for reading (one consistent snapshot)."""
        with (
            self.translate_errors(),
            self._sessions(bind=self.engine) as session,
            session.begin(),
        ):
            yield session

    @contextmanager
    def lookup(self) -> Iterator[Connection]:
        """A connection for reads that need no snapshot spanning several statements.

        On PostgreSQL no transaction is opened: each statement sees the rows
        committed when it runs. Use it for one-statement reads, or for reads
        whose findings the later write checks again (a provision's conditional
        state moves); on SQLite it is :meth:`read`.
        """
        # Core, not a Session: these reads want rows, not objects to track.
        with self.translate_errors(), self._lookup_engine.connect() as connection:
            yield connection

    @contextmanager
    def translate_errors(self) -> Iterator[None]:
        """Turn the driver's lock, conflict and connection errors into project errors."""
        try:
            yield
        except sa_exc.IntegrityError as error:
            raise ConcurrentChangeError(
                f"the database refused the write (another station may have written the same "
                f"record first): {_first_line(error.orig)}",
                kind="record",
                key="",
            ) from error
        except sa_exc.OperationalError as error:
            sqlstate = getattr(error.orig, "sqlstate", None)
            if sqlstate in _CONFLICT_SQLSTATES:
                raise ConcurrentChangeError(
                    "another station's transaction got in the way; nothing was written, try again",
                    kind="transaction",
                    key=str(sqlstate),
                ) from error
            if sqlstate == _LOCK_TIMEOUT_SQLSTATE or "database is locked" in str(error.orig):
                raise DatabaseError(
                    f"the database stayed busy for {LOCK_TIMEOUT_S} s (another station is "
                    f"writing); nothing was written, try again",
                    url=self.display_url,
                ) from error
            raise DatabaseError(
                f"database {self.display_url}: {_first_line(error.orig)}", url=self.display_url
            ) from error
        except sa_exc.DBAPIError as error:
            # Anything else the driver says about the database itself: a file
            # that is not a database, a corrupt one, a server that went away.
            raise DatabaseError(
                f"database {self.display_url} cannot be used: {_first_line(error.orig)}",
                url=self.display_url,
            ) from error
        except sqlite3.Error as error:
            raise DatabaseError(
                f"database {self.display_url} cannot be used: {_first_line(error)}",
                url=self.display_url,
            ) from error

    def require_exists(self) -> None:
        """Refuse a SQLite path with no database file (a typo must not look like empty stock)."""
        if self._sqlite_path is not None and not self._sqlite_path.is_file():
            raise DatabaseError(
                f"no line database at {self._sqlite_path} (run simtool db init)",
                url=self.display_url,
            )

    # -- schema -----------------------------------------------------------

    def _alembic_config(self, connection: Connection) -> Config:
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        return config

    def status(self) -> SchemaStatus:
        """The schema revision of this database and what is pending."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        self.require_exists()
        with self.translate_errors(), self.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
            script = ScriptDirectory.from_config(self._alembic_config(connection))
        head = script.get_current_head()
        if head is None:
            raise DatabaseError(
                "simtool ships no migrations (broken install)", url=self.display_url
            )
        known = {rev.revision for rev in script.walk_revisions()}
        if current is not None and current not in known:
            raise DatabaseError(
                f"database {self.display_url} has schema {current}, which this simtool does "
                f"not know (it knows up to {head}): the database is newer than this simtool; "
                f"use a newer simtool",
                url=self.display_url,
            )
        pending = tuple(
            rev.revision for rev in reversed(list(script.iterate_revisions(head, current)))
        )
        return SchemaStatus(
            url=self.display_url, dialect=self.dialect, current=current, head=head, pending=pending
        )

    def init(self) -> SchemaStatus:
        """Create the schema in an empty database; a no-op on an initialised one.

        The only call that creates a SQLite file: mode 0600 (it holds customer
        data), in a directory made 0700 when missing.
        """
        from alembic.runtime.migration import MigrationContext

        if self._sqlite_path is not None:
            _create_private_file(self._sqlite_path, self.display_url)
        with self.translate_errors(), self.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
            tables = [t for t in inspect(connection).get_table_names() if t != "alembic_version"]
        if current is None and tables:
            raise DatabaseError(
                f"database {self.display_url} has tables ({', '.join(sorted(tables)[:5])}) "
                f"but no simtool schema version; refusing to touch it",
                url=self.display_url,
            )
        if current is None:
            self._upgrade_to_head()
        return self.status()

    def upgrade(self) -> SchemaStatus:
        """Apply every pending migration in one transaction."""
        if self.status().current is None:
            raise DatabaseError(
                f"database {self.display_url} is not initialised; run 'simtool db init'",
                url=self.display_url,
            )
        self._upgrade_to_head()
        return self.status()

    def _upgrade_to_head(self) -> None:
        from alembic import command

        with self.translate_errors(), self._write_engine.connect() as connection:
            # One transaction: a migration that fails leaves the schema as it was.
            self._begin(connection)
            command.upgrade(self._alembic_config(connection), "head")
            connection.commit()

    def require_current(self) -> None:
        """Refuse to work on a database whose schema is missing, out of date or newer.

        One query and no Alembic: every command pays for this check, so it
        reads ``alembic_version`` directly and compares it with the newest
        revision shipped (see :func:`shipped_revisions`).
        """
        self.require_exists()
        revisions, head = shipped_revisions()
        with self.translate_errors(), self.engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                current = None
            else:
                current = connection.execute(
                    text("SELECT version_num FROM alembic_version")
                ).scalar()
        if current is None:
            raise DatabaseError(
                f"database {self.display_url} is not initialised; run 'simtool db init'",
                url=self.display_url,
            )
        if current not in revisions:
            raise DatabaseError(
                f"database {self.display_url} has schema {current}, which this simtool does "
                f"not know (it knows up to {head}): the database is newer than this simtool; "
                f"use a newer simtool",
                url=self.display_url,
            )
        if current != head:
            raise DatabaseError(
                f"database {self.display_url} has schema {current}, simtool needs "
                f"{head}; run 'simtool db upgrade'",
                url=self.display_url,
            )


def open_station_database(url_or_path: str, *, create: bool = False) -> Database:
    """Open the database a station works on, ready for use.

    The database must exist, have been initialised (``simtool db init``) and
    be at the current schema (``simtool db upgrade``); nothing is created, so
    a mistyped path is an error, not an empty stock. ``create`` (the demo's
    own database) initialises a missing or empty one first.
    """
    database = Database(url_or_path)
    if create:
        database.init()
    database.require_current()
    return database


def _create_private_file(path: Path, display_url: str) -> None:
    """Create ``path`` (and its directory) readable by its owner only, if missing."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        raise DatabaseError(
            f"cannot create the line database {path}: {error.strerror}", url=display_url
        ) from error
    os.close(fd)


def _sqlite_opener(path: Path) -> Any:
    """A connection factory that opens an existing SQLite file and never creates one."""
    uri = "file:" + quote(str(path)) + "?mode=rw"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=LOCK_TIMEOUT_S, check_same_thread=False)

    return connect


def _first_line(error: BaseException | None) -> str:
    return str(error).strip().splitlines()[0] if error is not None and str(error) else "?"


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from the sqlite3 module, so that _sqlite_on_begin
    # decides between BEGIN and BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={LOCK_TIMEOUT_S * 1000}")
    finally:
        cursor.close()


def _postgres_session_begun(_session: Session, _transaction: Any, connection: Connection) -> None:
    # The driver is in autocommit: a session's transaction is opened here.
    # psycopg's commit and rollback then end it (they act on the server's
    # transaction status, whatever the autocommit setting).
    connection.exec_driver_sql("BEGIN")


def _sqlite_on_begin(connection: Connection) -> None:
    write = connection.get_execution_options().get("simtool_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
