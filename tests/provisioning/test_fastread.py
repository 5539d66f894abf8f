"""The lean ``show card --json`` path answers exactly what the ORM path does."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from provisioning.audit import Actor
from provisioning.database import Database
from provisioning.errors import DatabaseError, NotFoundError
from provisioning.fastread import show_card_json, sqlite_path
from provisioning.lifecycle import FormFactor
from provisioning.lines import LineSpec, add_line
from provisioning.records import show_card
from provisioning.secrets import Keyring
from provisioning.stock import import_stock
from provisioning.workflows import LineRef, provision, report_lost, return_card
from simtool.output import to_jsonable
from tests.provisioning.helpers import Stock, chip


def test_same_json_as_the_orm(
    tmp_path: Path, keyring: Keyring, actor: Actor, stock: Callable[..., Stock]
) -> None:
    path = tmp_path / "lines.db"
    database = Database(str(path))
    database.init()
    file = stock(3)
    import_stock(database, keyring, actor, file.path)
    add_line(
        database,
        actor,
        LineSpec.parse(
            service_code="hdd9100001",
            msisdn="07091000001",
            customer="MA91",
            network_type="D",
            function_class="data",
        ),
    )
    provision(
        database,
        actor,
        service_code="hdd9100001",
        form_factor=FormFactor.NANO,
        card=chip(file.row(0)),
        keyring=keyring,
    )
    report_lost(database, actor, LineRef(service_code="hdd9100001"))
    return_card(database, actor, iccid=file.row(0).iccid)
    for row in (file.row(0), file.row(1)):
        for kind, value in (("iccid", row.iccid), ("imsi", row.imsi)):
            fast = show_card_json(path, kind, value)
            assert fast == {"ok": True, **to_jsonable(show_card(database, value))}
    assert show_card_json(path, "iccid", file.row(0).iccid)["state"] == "lost-found"
    with pytest.raises(NotFoundError):
        show_card_json(path, "iccid", "8981100000000009999")
    database.dispose()


def test_schema_checks_and_nothing_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "lines.db"
    with pytest.raises(DatabaseError, match="no line database"):
        show_card_json(missing, "iccid", "8981100000000000010")
    assert not missing.parent.exists()
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(DatabaseError, match="not initialised"):
        show_card_json(empty, "iccid", "8981100000000000010")
    newer = tmp_path / "newer.db"
    Database(str(newer)).init()
    with sqlite3.connect(newer) as raw:
        raw.execute("UPDATE alembic_version SET version_num = '0999'")
    with pytest.raises(DatabaseError, match="newer than this simtool"):
        show_card_json(newer, "iccid", "8981100000000000010")
    assert sqlite_path("postgresql://h/db") is None and sqlite_path("x.db") == Path("x.db")


def test_show_card_json_imports_neither_sqlalchemy_nor_rich(tmp_path: Path) -> None:
    path = tmp_path / "lines.db"
    Database(str(path)).init()
    probe = (
        "import sys\n"
        "from simtool.cli import main\n"
        "try:\n"
        f"    main(['show', 'card', '8981100000000000010', '--db', {str(path)!r}, '--json'])\n"
        "except SystemExit as done:\n"
        "    loaded = [m for m in ('sqlalchemy', 'alembic', 'rich') if m in sys.modules]\n"
        "    print(done.code, loaded, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    assert done.stderr.strip().endswith("11 []"), done.stderr
