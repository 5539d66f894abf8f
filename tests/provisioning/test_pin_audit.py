"""PIN operations on a card the line database knows go on its record (issue 10).

``simtool pin verify|change|enable|disable|ensure-default|unblock`` run as
processes against lab cards (real pcscd + vpcd); the record is read back
through ``report shift --json``. A desk without a line database, a card the
database does not know, and a database that cannot be opened leave the card
operation as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import CliResult, simtool

pytestmark = pytest.mark.lab


def _stock_file(path: Path, profile: Any) -> None:
    path.write_text(
        "ICCID,IMSI,PIN1,PUK1,PIN2,PUK2,KI,OPC,ADM1,FORM_FACTOR\n"
        f"{profile.iccid},{profile.imsi},{profile.pin1},{profile.puk1},{profile.pin2},"
        f"{profile.puk2},{profile.ki.hex().upper()},{profile.opc.hex().upper()},"
        f"{profile.adm1},{profile.form_factor}\n"
    )


class Desk:
    """``simtool`` with a line database (created by ``db init`` when asked) and an identity."""

    def __init__(self, tmp_path: Path, db: str) -> None:
        self.db = db
        self.env = {
            "SIMTOOL_DB": db,
            "SIMTOOL_KEY_FILE": str(tmp_path / "keys" / "station.key"),
            "SIMTOOL_OPERATOR": "tech1",
            "SIMTOOL_STATION": "bench-3",
            "SIMTOOL_CONFIG": str(tmp_path / "no-config.toml"),
        }

    def __call__(self, *args: str) -> CliResult:
        return simtool(*args, env=self.env)

    def pin(self, operation: str, reader: str, *args: str) -> CliResult:
        return self("pin", operation, "--reader", reader, *args, "--json")

    def pin_events(self) -> list[dict[str, Any]]:
        report = self("report", "shift", "--json")
        assert report.code == 0, report.output
        return [e for e in report.json["events"] if e["action"].startswith("pin-")]


def _summary(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            e["action"],
            e["result"],
            e["details"]["which"],
            e["details"]["retries_before"],
            e["details"]["retries_after"],
        )
        for e in events
    ]


def test_every_pin_operation_on_a_known_card_is_recorded(
    fresh_card: Any, tmp_path: Path, db_url: str
) -> None:
    reader, card = fresh_card()
    desk = Desk(tmp_path, db_url)
    stock = tmp_path / "stock.csv"
    _stock_file(stock, card)
    assert desk("db", "init").code == 0
    imported = desk("stock", "import", str(stock))
    assert imported.code == 0, imported.output
    wrong = "9999" if card.pin1 != "9999" else "8888"

    runs = [
        desk.pin("verify", reader, "--pin", card.pin1),
        desk.pin("change", reader, "--pin", card.pin1, "--new-pin", "4711"),
        desk.pin("disable", reader, "--pin", "4711"),
        desk.pin("enable", reader, "--pin", "4711"),
        desk.pin("change", reader, "--pin", "4711", "--new-pin", "0000"),
        desk.pin("ensure-default", reader),
    ]
    for run in runs:
        assert run.code == 0, run.output
        assert run.json["ok"] is True and run.json["recorded"] is True
    failed = desk.pin("verify", reader, "--pin", wrong)
    assert failed.code == 5, failed.output  # the card said no: PIN_WRONG
    assert desk.pin("verify", reader, "--pin", wrong).code == 5
    # One attempt left: the policy refuses without sending anything.
    refused = desk.pin("verify", reader, "--pin", wrong)
    assert refused.code != 0 and refused.json["ok"] is False
    assert "refus" in refused.stderr.lower() or "--force" in refused.stderr
    # The stored PUK unblocks (well, resets the counter of) the PIN.
    unblocked = desk.pin("unblock", reader, "--new-pin", "0000")
    assert unblocked.code == 0, unblocked.output
    assert unblocked.json["retries_after"] == 3 and unblocked.json["recorded"] is True

    events = desk.pin_events()
    assert _summary(events) == [
        ("pin-verify", "done", "pin1", 3, 3),
        ("pin-change", "done", "pin1", 3, 3),
        ("pin-disable", "done", "pin1", 3, 3),
        ("pin-enable", "done", "pin1", 3, 3),
        ("pin-change", "done", "pin1", 3, 3),
        ("pin-ensure-default", "done", "pin1", 3, 3),
        ("pin-verify", "failed", "pin1", 3, 2),
        ("pin-verify", "failed", "pin1", 2, 1),
        ("pin-verify", "refused", "pin1", 1, 1),
        # PinPolicy.unblock's counters: the PUK's before (10), the PIN's after.
        ("pin-unblock", "done", "pin1", 10, 3),
    ]
    assert {e["iccid"] for e in events} == {card.iccid}
    assert {e["operator"] for e in events} == {"tech1"}
    assert events[5]["details"]["outcome"] == "already-default"
    assert events[6]["details"]["error"] == "PinAttemptError"
    assert events[8]["details"]["error"] == "PinPolicyError"
    trail = desk("audit", "verify", "--json")
    assert trail.code == 0 and trail.json["ok"] is True, trail.output
    report = desk("report", "shift", "--json").stdout
    for secret in (card.puk1, "4711", wrong):
        assert secret not in report


def test_no_database_and_unknown_cards_leave_no_record(fresh_card: Any, tmp_path: Path) -> None:
    reader, card = fresh_card()
    absent = tmp_path / "nowhere" / "lines.sqlite"
    desk = Desk(tmp_path, str(absent))
    verified = desk.pin("verify", reader, "--pin", card.pin1)
    assert verified.code == 0, verified.output
    assert verified.json["recorded"] is False and verified.stderr == ""
    assert not absent.parent.exists()  # only `db init` creates a database

    # A database that does not know this card: the operation is done, nothing recorded.
    desk = Desk(tmp_path, str(tmp_path / "lines.sqlite"))
    assert desk("db", "init").code == 0
    changed = desk.pin("change", reader, "--pin", card.pin1, "--new-pin", card.pin1)
    assert changed.code == 0, changed.output
    assert changed.json["recorded"] is False and "not recorded" not in changed.stderr
    assert desk.pin_events() == []


def test_a_database_that_cannot_be_opened_does_not_stop_the_pin_operation(
    fresh_card: Any, tmp_path: Path
) -> None:
    reader, card = fresh_card()
    garbage = tmp_path / "lines.sqlite"
    garbage.write_bytes(b"this is not a database\n" * 100)
    desk = Desk(tmp_path, str(garbage))
    verified = desk.pin("verify", reader, "--pin", card.pin1)
    # The card operation's exit code: the PIN was verified, a retry would be pointless.
    assert verified.code == 0, verified.output
    assert verified.json["ok"] is True and verified.json["recorded"] is False
    assert f"PIN verify done on card {card.iccid}, but not recorded" in verified.stderr
    assert "Traceback" not in verified.output
    assert garbage.read_bytes() == b"this is not a database\n" * 100
    # A failed attempt keeps its own exit code, and is not hidden by the warning.
    failed = desk.pin("verify", reader, "--pin", "9999" if card.pin1 != "9999" else "8888")
    assert failed.code == 5 and failed.json["ok"] is False, failed.output
    assert "PIN verify failed" in failed.stderr and "Traceback" not in failed.output
    status = desk.pin("status", reader)
    assert status.json["pin1"]["retries"] == 2


def test_no_database_keeps_the_pin_command_light(tmp_path: Path) -> None:
    # The record's machinery (SQLAlchemy, the provisioning package) is loaded
    # only when a line database exists: a desk without one pays nothing.
    proc = subprocess.run(
        [
            *(sys.executable, "-X", "importtime", "-m", "simtool", "pin", "verify"),
            *("--reader", "virtual:default", "--pin", "0000", "--json"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={
            **os.environ,
            "SIMTOOL_DB": str(tmp_path / "absent.sqlite"),
            "XDG_STATE_HOME": str(tmp_path / "state"),
        },
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["recorded"] is False
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "apdu.pin" in imported  # the parse found the imports
    assert not {n for n in imported if n.split(".")[0] in ("sqlalchemy", "provisioning")}
    assert not (tmp_path / "absent.sqlite").exists()
