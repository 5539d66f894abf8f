"""The line database commands as an operator or a script runs them (no card needed)."""

from __future__ import annotations

import csv
import io
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provisioning.audit import Actor
from provisioning.database import Database
from provisioning.devices import DeviceFacts
from provisioning.lifecycle import FormFactor
from provisioning.secrets import Keyring
from provisioning.workflows import provision
from tests.provisioning.helpers import Stock, chip
from tests.support.cli import CliResult, simtool


class Station:
    """``simtool`` with this test's database, key and identity in the environment."""

    def __init__(self, tmp_path: Path, db: str) -> None:
        self.db = db
        self.key_file = tmp_path / "keys" / "station.key"
        self.env = {
            "SIMTOOL_DB": db,
            "SIMTOOL_KEY_FILE": str(self.key_file),
            "SIMTOOL_OPERATOR": "kato",
            "SIMTOOL_STATION": "cli-bench",
            "SIMTOOL_CONFIG": str(tmp_path / "no-config.toml"),
        }

    def __call__(self, *args: str) -> CliResult:
        return simtool(*args, env=self.env)

    def ok(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.code == 0, result.output
        return result.json


@pytest.fixture
def station(tmp_path: Path, db_url: str) -> Station:
    return Station(tmp_path, db_url)


def test_db_stock_keys_audit(station: Station, stock: Callable[..., Stock]) -> None:
    refused = station("stock", "list")
    assert refused.code == 13 and "simtool db init" in refused.stderr
    assert "Traceback" not in refused.stderr
    if "://" not in station.db:  # nothing created by mistake
        assert not Path(station.db).exists()
    else:
        status = station.ok("db", "status")
        assert status["current"] is None and status["pending"][-1] == status["head"]
    assert station.ok("db", "init")["is_current"]
    assert station.ok("db", "upgrade")["pending"] == []
    file = stock(6)
    imported = station.ok("stock", "import", str(file.path), "--batch", "may-1")
    assert imported["cards"] == 6 and imported["batch"] == "may-1"
    assert stat.S_IMODE(station.key_file.stat().st_mode) == 0o600
    [batch] = station.ok("stock", "list")["batches"]
    assert batch["states"] == {"in-stock": 6} and batch["operator"] == "kato"
    human = station("stock", "import", str(file.path))
    assert human.code == 0 and "imported before as batch may-1" in human.stdout
    keys = station.ok("keys", "status")
    assert keys["matches"] and keys["key_id"] == keys["database_key_id"]
    rotated = station.ok("keys", "rotate")
    assert rotated["cards"] == 6 and rotated["new_key_id"] != keys["key_id"]
    revealed = station.ok("show", "card", file.row(2).iccid, "--reveal", "puk1")
    assert revealed["puk1"] == file.row(2).secrets.puk1
    plain = station.ok("show", "card", file.row(2).iccid)
    assert "puk1" not in plain and str(file.row(2).secrets.puk1) not in str(plain)
    audit = station.ok("audit", "verify")
    assert audit["ok"] and audit["events"] == 3  # import, rotate, reveal


def test_lines_suspend_resume_export_report(
    station: Station, stock: Callable[..., Stock], tmp_path: Path
) -> None:
    station.ok("db", "init")
    file = stock(3)
    station.ok("stock", "import", str(file.path))
    lines = tmp_path / "lines.csv"
    lines.write_text(
        "SERVICE_CODE,MSISDN,CUSTOMER,TYPE,FUNCTION\n"
        "hdd4000001,070-4000-0001,MA400,D,data\n"
        "hdd4000002,070-4000-0002,MA400,D,sms\n"
    )
    assert station.ok("line", "import", str(lines))["added"] == 2
    assert station.ok("line", "import", str(lines))["unchanged"] == 2
    # The card reader's part, done through the API with a card given as data.
    database = Database(station.db)
    actor = Actor("kato", "cli-bench")
    for code, row, imei in (
        ("hdd4000001", file.row(0), "356938035643809"),
        ("hdd4000002", file.row(1), "490154203237518"),
    ):
        provision(
            database,
            actor,
            service_code=code,
            form_factor=FormFactor.NANO,
            card=chip(row),
            keyring=Keyring(station.key_file),
            device=DeviceFacts(imei=imei),
        )
    database.dispose()
    suspended = station.ok("suspend", "--msisdn", "070-4000-0001")
    assert suspended["line_state"] == "suspended"
    again = station("suspend", "--service-code", "hdd4000001")
    assert again.code == 10 and "rule line-state" in again.stderr
    assert station.ok("resume", "--iccid", file.row(0).iccid)["line_state"] == "active"
    both = station("suspend", "--service-code", "hdd4000001", "--msisdn", "070-4000-0001")
    assert both.code == 64
    listing = station.ok("export", "imei-list", "--customer", "MA400")
    assert listing == {
        "ok": True,
        "customer": "MA400",
        "service_codes": ["hdd4000001", "hdd4000002"],
        "imeis": ["356938035643809", "490154203237518"],
    }
    report = station.ok("report", "shift")
    assert report["totals"]["provision:passed"] == 2
    assert report["chain_head_hash"] == station.ok("audit", "verify")["head_hash"]
    shift_csv = station("report", "shift", "--csv")
    rows = list(csv.DictReader(io.StringIO(shift_csv.stdout)))
    assert [r["action"] for r in rows].count("provision") == 2
    assert {r["operator"] for r in rows} == {"kato"}
    cancelled = station.ok("line", "cancel", "--service-code", "hdd4000002")
    assert cancelled["card_state"] == "awaiting-return"
    returned = station.ok("return", "--iccid", file.row(1).iccid)
    assert returned["state"] == "returned" and not returned["never_reuse"]
    updated = station.ok(
        "line", "update", "--service-code", "hdd4000001", "--delivered-on", "2026-05-01"
    )
    assert updated["changed"] == {"delivered_on": "2026-05-01"}
    missing = station("show", "line", "hdd404")
    assert missing.code == 11 and "no line hdd404" in missing.stderr


def test_human_output_and_refusals(
    station: Station, stock: Callable[..., Stock], tmp_path: Path
) -> None:
    station.ok("db", "init")
    file = stock(2)
    station.ok("stock", "import", str(file.path))
    bad = tmp_path / "bad.csv"
    bad.write_text(file.path.read_text().replace(file.row(0).iccid, "8981" + "0" * 15))
    refused = station("stock", "import", str(bad))
    assert refused.code == 65 and "line 2: ICCID" in refused.stderr
    added = station(
        "line",
        "add",
        "--service-code",
        "hdd4100001",
        "--customer",
        "MA1",
        "--type",
        "K",
        "--function",
        "data",
    )
    assert added.code == 10 and "type K offers no data lines" in added.stderr
    shown = station("show", "card", file.row(1).iccid)
    assert shown.code == 0 and "in-stock" in shown.stdout and file.row(1).imsi in shown.stdout
    for secret in (file.row(1).secrets.puk1, file.row(1).secrets.adm1):
        assert secret and secret not in shown.output
