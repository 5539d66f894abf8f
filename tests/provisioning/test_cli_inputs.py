"""Bad input on the command line: a clear error and a documented exit code, never a
traceback, and nothing created or stored by mistake.

The fuzz test drives the real entry point (``simtool.cli.main``) in this
process, so that hypothesis can try hundreds of inputs against a real SQLite
file and a real PostgreSQL database: any exception other than the exit itself
fails the test, as does an exit code missing from the README's table.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apdu.errors import ExitCode
from simtool import output
from simtool.cli import main
from tests.support.cli import simtool

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The station's settings for a test, in the environment of a ``simtool`` run."""
    return {
        "SIMTOOL_KEY_FILE": str(tmp_path / "k.key"),
        "SIMTOOL_OPERATOR": "nomura",
        "SIMTOOL_STATION": "fuzz-1",
        "SIMTOOL_CONFIG": str(tmp_path / "no-config.toml"),
    }


def run_in_process(args: list[str]) -> tuple[int, str, str]:
    """``simtool ARGS`` through the real entry point; (exit code, stdout, stderr)."""
    output._written.clear()  # one JSON document per run, as in a process of its own
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
        else:  # pragma: no cover - main() always exits
            code = 0
    # The run's engine is garbage now; collecting it closes its connections, as
    # the end of a process would (PostgreSQL counts them).
    gc.collect()
    return code, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the in-process runs, and restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- the Done-when cases, each as its own process --------------------------------


def test_garbage_database_file(env: dict[str, str], tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(4096))
    for args in (("stock", "list"), ("db", "status"), ("db", "init"), ("show", "line", "hdd1")):
        result = simtool(*args, "--db", str(garbage), "--json", env=env)
        assert result.code == ExitCode.DATABASE, result.output
        assert "Traceback" not in result.output and "not a database" in result.stderr
        assert result.json["ok"] is False


def test_mistyped_path_creates_nothing(env: dict[str, str], tmp_path: Path) -> None:
    typo = tmp_path / "statoin" / "lines.db"
    for args in (("stock", "list"), ("db", "status"), ("db", "upgrade"), ("report", "shift")):
        result = simtool(*args, "--db", str(typo), env=env)
        assert result.code == ExitCode.DATABASE, result.output
        assert f"no line database at {typo} (run simtool db init)" in result.stderr
        assert "Traceback" not in result.output
    assert not typo.parent.exists()


def test_database_of_a_newer_simtool(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "lines.db"
    assert simtool("db", "init", "--db", str(path), env=env).code == 0
    assert path.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE alembic_version SET version_num = '0999'")
    for args in (("stock", "list"), ("db", "status"), ("db", "upgrade")):
        result = simtool(*args, "--db", str(path), env=env)
        assert result.code == ExitCode.DATABASE, result.output
        assert "the database is newer than this simtool" in result.stderr
        assert "Traceback" not in result.output


def test_unusable_atr_exits_65(env: dict[str, str]) -> None:
    bad_tck = simtool("atr", "3B9F95801FC38031E073FE21135786810286984418A9", "--json", env=env)
    assert bad_tck.code == ExitCode.DATA and bad_tck.json["ok"] is False
    assert "TCK" in bad_tck.stdout and "Traceback" not in bad_tck.output
    good = simtool("atr", "3B9F95801FC38031E073FE21135786810286984418A8", "--json", env=env)
    assert good.code == 0 and good.json["ok"] is True


def test_unblock_checks_its_arguments_before_any_secret(
    env: dict[str, str], tmp_path: Path
) -> None:
    db = str(tmp_path / "lines.db")
    assert simtool("db", "init", "--db", db, env=env).code == 0
    # No reader is needed: the arguments are refused before anything is opened.
    result = simtool("pin", "unblock", "--reader", "lab:0", "--db", db, env=env, input="")
    assert result.code == ExitCode.USAGE and "no new PIN1 given" in result.stderr
    trail = simtool("report", "shift", "--db", db, "--json", env=env)
    assert trail.json["events"] == []  # no PUK was revealed


def test_usage_error_with_json_prints_json(env: dict[str, str]) -> None:
    result = simtool("line", "add", "--json", "--bogus-flag", env=env)
    assert result.code == ExitCode.SYNTAX
    assert result.json == {
        "ok": False,
        "error": {
            "type": "UsageError",
            "message": "No such option '--bogus-flag'.",
            "exit_code": 2,
        },
    }


# -- the fuzz test ----------------------------------------------------------------

#: Text a person (or a scanner, or a stuck key) might type into an option.
nasty_text = st.one_of(
    st.text(max_size=30),
    st.text(alphabet="hdMA0123456789-", min_size=1, max_size=40),
    st.integers(min_value=1, max_value=6000).map(lambda n: "hdd" + "1" * n),
    st.integers(min_value=1, max_value=6000).map(lambda n: "MA" + "9" * n),
    st.sampled_from(
        ["", " ", "０７０-１２３４-５６７８", "hdd１２３", "\x00", "'; DROP TABLE lines;--"]
    ),
).filter(lambda text: "\x00" not in text)  # the OS refuses NUL in argv


def commands(text: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    """Command lines of the database commands with ``text`` in every value."""
    return st.one_of(
        st.builds(
            lambda code, customer, kind, function, msisdn: [
                "line",
                "add",
                "--service-code",
                code,
                "--customer",
                customer,
                "--type",
                kind,
                "--function",
                function,
                "--msisdn",
                msisdn,
            ],
            text,
            text,
            st.one_of(st.sampled_from(["D", "K", "I"]), text),
            st.one_of(st.sampled_from(["data", "sms", "voice"]), text),
            st.one_of(st.just("07012345678"), text),
        ),
        st.builds(lambda value: ["show", "line", value], text),
        st.builds(lambda value: ["show", "card", value], text),
        st.builds(
            lambda option, value: [option[0], option[1], value],
            st.sampled_from([("suspend", "--service-code"), ("resume", "--msisdn")]),
            text,
        ),
        st.builds(lambda value: ["lost", "--iccid", value], text),
        st.builds(lambda value: ["return", "--iccid", value], text),
        st.builds(lambda value: ["export", "imei-list", "--customer", value], text),
        st.builds(lambda value: ["report", "shift", "--since", value], text),
        st.builds(lambda value: ["stock", "import", value], text),
        st.builds(
            lambda code, day: ["line", "update", "--service-code", code, "--delivered-on", day],
            text,
            text,
        ),
    )


def documented_exit_codes() -> set[int]:
    """The codes listed in the README's exit-code table."""
    return {int(code) for code in re.findall(r"^\| (\d+) \|", README.read_text(), re.MULTILINE)}


@pytest.mark.parametrize(
    "db_kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_fuzz_database_commands_never_trace_back(
    db_kind: str, env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if db_kind == "sqlite":
        db = str(tmp_path / "fuzz.db")
    else:
        from tests.provisioning.conftest import reset_postgres

        url = request.getfixturevalue("pg_session_url")
        reset_postgres(url)
        db = url.render_as_string(hide_password=False)
    allowed = documented_exit_codes()

    @settings(
        max_examples=100,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(args=commands(nasty_text), as_json=st.booleans())
    def run(args: list[str], as_json: bool) -> None:
        code, out, err = run_in_process([*args, *(["--json"] if as_json else [])])
        assert "Traceback" not in out + err
        assert code in allowed, (args, code, err)
        if as_json and code != 0:
            assert '"ok": false' in out, (args, out, err)

    with environment({**env, "SIMTOOL_DB": db}):
        assert run_in_process(["db", "init"])[0] == 0
        run()
        # Nothing overlong or malformed reached the tables.
        code, out, _err = run_in_process(["report", "shift", "--json"])
        assert (code == 0 and '"line-add"' not in out) or all(
            len(code) <= 20 for code in re.findall(r'"service_code": "([^"]*)"', out)
        )


def test_free_text_is_bounded_before_the_database() -> None:
    from apdu.errors import ParseError
    from provisioning.devices import DeviceFacts
    from provisioning.identifiers import parse_label

    assert parse_label("  Quectel ", "maker") == "Quectel"
    for bad in ("", "x" * 101, "a\x1bb"):
        with pytest.raises(ParseError):
            parse_label(bad, "maker")
    with pytest.raises(ParseError, match="5000 characters"):
        DeviceFacts(imei="356938035643809", model="m" * 5000)


def test_overlong_batch_name_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    from provisioning.stockfile import example_rows, write_stock_csv

    db = str(tmp_path / "lines.db")
    stock = tmp_path / "stock.csv"
    write_stock_csv(stock, example_rows(2))
    assert simtool("db", "init", "--db", db, env=env).code == 0
    result = simtool("stock", "import", str(stock), "--batch", "b" * 5000, "--db", db, env=env)
    assert result.code == ExitCode.DATA and "batch name is 5000 characters" in result.stderr
    assert "Traceback" not in result.output


def test_stock_import_shows_progress_on_a_terminal(env: dict[str, str], tmp_path: Path) -> None:
    import subprocess
    import sys
    import threading

    from provisioning.stockfile import example_rows, write_stock_csv

    db = str(tmp_path / "lines.db")
    stock = tmp_path / "stock.csv"
    write_stock_csv(stock, example_rows(25_000))
    assert simtool("db", "init", "--db", db, env=env).code == 0
    controller, terminal = os.openpty()
    seen: list[bytes] = []

    def drain() -> None:  # a terminal's buffer is small: read while the import runs
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    done = subprocess.run(
        [sys.executable, "-m", "simtool", "stock", "import", str(stock), "--db", db, "--json"],
        stdout=subprocess.PIPE,
        stderr=terminal,
        env={**os.environ, **env, "COLUMNS": "100"},
        timeout=300,
        check=False,
    )
    os.close(terminal)
    reader.join(timeout=30)
    os.close(controller)
    assert done.returncode == 0
    assert b"importing stock.csv" in b"".join(seen)
    assert b'"cards": 25000' in done.stdout  # stdout (JSON) is left clean
