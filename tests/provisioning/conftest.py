"""Fixtures of the line database tests: SQLite and a real PostgreSQL, cards as data.

``database`` is parametrised: every test that uses it runs once on a fresh
SQLite file and once on a fresh PostgreSQL schema (marked ``postgres``).

PostgreSQL is started here when it is not running (as root on Debian:
``pg_ctlcluster --skip-systemctl-redirect <version> main start``), a test role
is created through ``su postgres -c psql``, and one throw-away database is made
for the session and dropped at its end. ``SIMTOOL_TEST_PG_URL`` (a URL of a
role allowed to create databases) uses another server instead. Nothing skips:
a missing PostgreSQL fails the postgres tests with the reason.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL, make_url

from provisioning.audit import Actor
from provisioning.database import Database
from provisioning.lifecycle import FormFactor
from provisioning.secrets import Keyring
from provisioning.stockfile import example_rows, write_stock_csv
from tests.provisioning.helpers import Stock

PG_URL_ENV = "SIMTOOL_TEST_PG_URL"
PG_ROLE = "simtool_test"
PG_HOST = "127.0.0.1"
PG_PORT = 5432


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def _start_local_postgres() -> None:
    """Start the packaged cluster (Debian) when nothing listens on 5432."""
    if _port_open(PG_HOST, PG_PORT):
        return
    if os.geteuid() != 0 or shutil.which("pg_ctlcluster") is None:
        pytest.fail(
            f"PostgreSQL is not running and cannot be started here (needs root and "
            f"pg_ctlcluster; or set {PG_URL_ENV})",
            pytrace=False,
        )
    listing = _run(["pg_lsclusters", "--no-header"])
    clusters = [line.split() for line in listing.stdout.splitlines() if line.strip()]
    if not clusters:
        pytest.fail("no PostgreSQL cluster exists (apt-get install postgresql)", pytrace=False)
    version, name = clusters[0][0], clusters[0][1]
    started = _run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "start"])
    deadline = time.monotonic() + 30
    while not _port_open(PG_HOST, PG_PORT):
        if time.monotonic() > deadline:
            pytest.fail(
                f"PostgreSQL {version}/{name} did not start: {started.stderr}", pytrace=False
            )
        time.sleep(0.2)


def _ensure_test_role(password: str) -> None:
    sql = (
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PG_ROLE}') "
        f"THEN CREATE ROLE {PG_ROLE} LOGIN CREATEDB; END IF; END $$; "
        f"ALTER ROLE {PG_ROLE} PASSWORD '{password}';"
    )
    command = ["su", "postgres", "-c", f"psql -v ON_ERROR_STOP=1 -q -c {shlex.quote(sql)}"]
    # xdist workers start together: two may create or alter the role at once, and
    # PostgreSQL then fails one of them ("tuple concurrently updated", duplicate
    # key). The role is the same for all, so trying again is correct.
    for _attempt in range(5):
        done = _run(command)
        if done.returncode == 0:
            return
        time.sleep(0.2)
    pytest.fail(f"cannot create the PostgreSQL test role: {done.stderr}", pytrace=False)


@pytest.fixture(scope="session")
def pg_admin_url() -> URL:
    """A URL of a role that may create databases (started and created when needed)."""
    given = os.environ.get(PG_URL_ENV)
    if given:
        return make_url(given).set(drivername="postgresql+psycopg")
    _start_local_postgres()
    password = os.environ.get("SIMTOOL_TEST_PG_PASSWORD", "simtool_test")
    _ensure_test_role(password)
    return URL.create(
        "postgresql+psycopg",
        username=PG_ROLE,
        password=password,
        host=PG_HOST,
        port=PG_PORT,
        database="postgres",
    )


def _libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_session_url(pg_admin_url: URL) -> Iterator[URL]:
    """A throw-away database for this test session, dropped at its end."""
    name = f"simtool_test_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(_libpq(pg_admin_url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_admin_url.set(database=name)
    finally:
        _drop_database(pg_admin_url, name)


def _drop_database(admin_url: URL, name: str) -> None:
    # Not WITH (FORCE): that needs the right to signal autovacuum workers, which
    # a plain DROP stops by itself; a child process may still be closing.
    with psycopg.connect(_libpq(admin_url), autocommit=True) as admin:
        for attempt in range(40):
            try:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
                return
            except psycopg.errors.ObjectInUse:
                if attempt == 39:
                    raise
                time.sleep(0.5)


def reset_postgres(url: URL) -> None:
    """Empty the session database: drop and re-create its public schema."""
    with psycopg.connect(_libpq(url), autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database: a new SQLite file, or the emptied PostgreSQL one."""
    if request.param == "sqlite":
        return str(tmp_path / "lines.db")
    url: URL = request.getfixturevalue("pg_session_url")
    reset_postgres(url)
    return url.render_as_string(hide_password=False)


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    """A fresh line database with the current schema, on SQLite and on PostgreSQL."""
    db = Database(db_url)
    db.init()
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    """A key file in the test's directory (created by the first import)."""
    return Keyring(key_file=tmp_path / "keys" / "secrets.key")


@pytest.fixture
def actor() -> Actor:
    """The operator and station of the tests."""
    return Actor(operator="tanaka", station="bench-1")


@pytest.fixture
def stock(tmp_path: Path) -> Callable[..., Stock]:
    """``stock(count, first_serial=1, form_factor=nano)``: a CSV stock file."""
    made = 0

    def make(
        count: int = 5, *, first_serial: int = 1, form_factor: FormFactor = FormFactor.NANO
    ) -> Stock:
        nonlocal made
        made += 1
        rows = list(example_rows(count, first_serial=first_serial, form_factor=form_factor))
        path = tmp_path / f"stock-{made}.csv"
        write_stock_csv(path, rows)
        return Stock(path=path, rows=rows)

    return make
