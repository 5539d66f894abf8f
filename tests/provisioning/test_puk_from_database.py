"""``simtool pin unblock`` takes the card's PUK from the line database (issue 3 + 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import simtool

pytestmark = pytest.mark.lab


def _stock_file(path: Path, profile: Any) -> None:
    path.write_text(
        "ICCID,IMSI,PIN1,PUK1,PIN2,PUK2,KI,OPC,ADM1,FORM_FACTOR\n"
        f"{profile.iccid},{profile.imsi},{profile.pin1},{profile.puk1},{profile.pin2},"
        f"{profile.puk2},{profile.ki.hex().upper()},{profile.opc.hex().upper()},"
        f"{profile.adm1},{profile.form_factor}\n"
    )


def test_unblock_uses_the_stored_puk_and_audits_it(fresh_card: Any, tmp_path: Path) -> None:
    reader, profile = fresh_card("blocked-pin")
    env = {
        "SIMTOOL_DB": str(tmp_path / "lines.sqlite"),
        "SIMTOOL_KEY_FILE": str(tmp_path / "secrets.key"),
        "SIMTOOL_OPERATOR": "tech1",
        "SIMTOOL_STATION": "bench-2",
    }
    stock = tmp_path / "stock.csv"
    _stock_file(stock, profile)
    assert simtool("db", "init", env=env).code == 0
    imported = simtool("stock", "import", str(stock), env=env)
    assert imported.code == 0, imported.stderr
    result = simtool("pin", "unblock", "--reader", reader, "--new-pin", "0000", "--json", env=env)
    assert result.code == 0, result.stderr
    assert "taken from the line database" in result.stderr
    assert profile.puk1 not in result.output
    assert result.json["retries_after"] == 3
    trail = simtool("report", "shift", "--json", env=env)
    assert trail.code == 0, trail.stderr
    assert "reveal-secret" in trail.stdout
    unblocked = [e for e in trail.json["events"] if e["action"] == "pin-unblock"]
    assert [(e["result"], e["details"]["retries_after"]) for e in unblocked] == [("done", 3)]
    assert unblocked[0]["iccid"] == profile.iccid
    assert profile.puk1 not in trail.stdout


def test_unblock_without_database_asks_for_the_puk(fresh_card: Any, tmp_path: Path) -> None:
    reader, _profile = fresh_card("blocked-pin")
    env = {"SIMTOOL_DB": str(tmp_path / "absent.sqlite")}
    result = simtool("pin", "unblock", "--reader", reader, "--new-pin", "0000", env=env)
    assert result.code == 64
    assert "no PUK1 given" in result.stderr
    assert not (tmp_path / "absent.sqlite").exists()
